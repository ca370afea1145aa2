//! Recognises the format from the magic number and hands the bytes to the
//! format's module, turning any panic inside goblin into an [`Error`].

use std::panic::{self, AssertUnwindSafe};

use crate::{elf, macho, pe, Arch, Binary, Error, Format};

/// What the first bytes say the input is.
enum Kind {
    Elf,
    /// A single-architecture 64-bit Mach-O image.
    MachO,
    /// A fat (universal) Mach-O container.
    Fat,
    Pe,
}

pub(crate) fn parse(bytes: &[u8], arch: Arch) -> Result<Binary, Error> {
    let kind = sniff(bytes)?;
    let format = match kind {
        Kind::Elf => Format::Elf,
        Kind::MachO | Kind::Fat => Format::MachO,
        Kind::Pe => Format::Pe,
    };
    catch_panics(format, || match kind {
        Kind::Elf => elf::parse(bytes),
        Kind::MachO => macho::parse(bytes, 0),
        Kind::Fat => macho::parse_fat(bytes, arch),
        Kind::Pe => pe::parse(bytes),
    })
}

/// Runs a format parser, turning a panic into a `Malformed` error.
///
/// goblin's parsers are meant to return errors on bad input, but it has had
/// panics on crafted files (unchecked slicing, arithmetic overflow in debug
/// builds). A profiler should not crash because a file on disk is odd. The
/// default panic hook still prints the message to stderr; we don't replace
/// the hook because it is process-wide state that belongs to the
/// application. Needs `panic = "unwind"`, which the workspace's release
/// profile sets.
fn catch_panics(
    format: Format,
    parse: impl FnOnce() -> Result<Binary, Error>,
) -> Result<Binary, Error> {
    panic::catch_unwind(AssertUnwindSafe(parse)).unwrap_or_else(|payload| {
        let message = (payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        Err(Error::malformed(format, "goblin panicked", message))
    })
}

fn sniff(bytes: &[u8]) -> Result<Kind, Error> {
    let magic4 = bytes.get(..4).map(|m| [m[0], m[1], m[2], m[3]]);
    match magic4 {
        Some([0x7f, b'E', b'L', b'F']) => return Ok(Kind::Elf),
        // MH_MAGIC_64 in either byte order.
        Some([0xcf, 0xfa, 0xed, 0xfe] | [0xfe, 0xed, 0xfa, 0xcf]) => return Ok(Kind::MachO),
        Some([0xce, 0xfa, 0xed, 0xfe] | [0xfe, 0xed, 0xfa, 0xce]) => {
            return Err(Error::unsupported("32-bit Mach-O file"))
        }
        Some([0xca, 0xfe, 0xba, 0xbe]) => return Ok(Kind::Fat),
        Some([0xca, 0xfe, 0xba, 0xbf]) => {
            return Err(Error::unsupported("fat Mach-O file with 64-bit offsets"))
        }
        _ => {}
    }
    if bytes.starts_with(b"MZ") {
        return Ok(Kind::Pe);
    }
    if bytes.starts_with(b"!<arch>\n") {
        return Err(Error::unsupported(
            "ar archive (static library); pass the shared library or executable instead",
        ));
    }
    let magic = bytes.iter().take(8).map(|b| format!("{b:02x}"));
    let magic = magic.collect::<Vec<_>>().join(" ");
    Err(Error::UnknownFormat {
        magic: if magic.is_empty() {
            "none, the input is empty".to_owned()
        } else {
            magic
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_becomes_malformed_error() {
        let err = catch_panics(Format::Pe, || panic!("expected panic from a unit test"));
        let err = err.unwrap_err();
        assert_eq!(err.code(), "EBINMALFORMED");
        assert_eq!(
            err.to_string(),
            "malformed PE file: goblin panicked: expected panic from a unit test"
        );
    }
}
