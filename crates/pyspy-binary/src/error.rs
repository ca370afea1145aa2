//! The one error type of this crate.

use crate::Format;

/// Why a binary could not be parsed.
///
/// Every variant names the format (when known) and the part of the file
/// that was being read, so a message like "truncated ELF file: symbol
/// table .symtab ..." tells the user which file structure is broken.
/// Use [`Error::code`] for a stable, machine-readable classification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes start with no magic number of a format this crate reads.
    #[error("not an ELF, Mach-O or PE file (first bytes: {magic})")]
    UnknownFormat {
        /// The first bytes of the input in hex (at most eight), or a note
        /// that the input is empty.
        magic: String,
    },
    /// A structure the header points at runs past the end of the input,
    /// usually because the file was cut short (or the wrong length was read).
    #[error(
        "truncated {format} file: {what} needs bytes {offset:#x}..{end:#x} but the file has {len:#x}"
    )]
    Truncated {
        /// The format of the file.
        format: Format,
        /// The structure being read, e.g. `section header table`.
        what: String,
        /// Where the structure starts in the input.
        offset: u64,
        /// Where the structure ends in the input (exclusive).
        end: u64,
        /// The length of the input.
        len: u64,
    },
    /// The file has the right magic number but its contents make no sense.
    #[error("malformed {format} file: {what}: {detail}")]
    Malformed {
        /// The format of the file.
        format: Format,
        /// The structure being read, e.g. `Mach-O load commands`.
        what: String,
        /// What is wrong with it (often goblin's message).
        detail: String,
    },
    /// A well-formed binary this crate does not handle, e.g. a 32-bit
    /// file, an `ar` archive or a fat Mach-O without the wanted slice.
    #[error("unsupported binary: {what}")]
    Unsupported {
        /// What kind of binary it is.
        what: String,
    },
}

impl Error {
    /// A machine-readable code for the kind of error. Never renamed.
    pub fn code(&self) -> &'static str {
        match self {
            Error::UnknownFormat { .. } => "EBINFORMAT",
            Error::Truncated { .. } => "EBINTRUNCATED",
            Error::Malformed { .. } => "EBINMALFORMED",
            Error::Unsupported { .. } => "EBINUNSUPPORTED",
        }
    }

    /// True for [`Error::Unsupported`]: the file is fine, this crate just
    /// does not read that kind of binary.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Error::Unsupported { .. })
    }

    pub(crate) fn malformed(
        format: Format,
        what: impl Into<String>,
        detail: impl ToString,
    ) -> Self {
        Error::Malformed {
            format,
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    pub(crate) fn unsupported(what: impl Into<String>) -> Self {
        Error::Unsupported { what: what.into() }
    }

    /// Checks that `offset..offset + size` lies within an input of `len`
    /// bytes; on failure the error says which structure did not fit.
    pub(crate) fn check_range(
        format: Format,
        what: impl FnOnce() -> String,
        offset: u64,
        size: u64,
        len: usize,
    ) -> Result<(), Error> {
        let len = len as u64;
        match offset.checked_add(size) {
            Some(end) if end <= len => Ok(()),
            end => Err(Error::Truncated {
                format,
                what: what(),
                offset,
                end: end.unwrap_or(u64::MAX),
                len,
            }),
        }
    }
}
