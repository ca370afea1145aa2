//! The formats: one file each, all implementing [`Encoder`].

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use crate::{Error, OutputOptions, Profile};

mod chrometrace;
pub(crate) mod flamegraph;
mod pprof;
mod proto;
mod raw;
mod speedscope;

/// One output file format. Parses from py-spy's names, case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Interactive SVG flame graph, icicle style (root at top).
    #[default]
    Flamegraph,
    /// speedscope JSON (`https://www.speedscope.app/file-format-schema.json`).
    Speedscope,
    /// Folded stacks, one `root;…;leaf COUNT` line per unique stack.
    Raw,
    /// Chrome Trace Event JSON array, for Perfetto and chrome://tracing.
    Chrometrace,
    /// Gzipped pprof `profile.proto`.
    Pprof,
}

impl Format {
    /// Every format, in the order above.
    pub const ALL: [Format; 5] = [
        Format::Flamegraph,
        Format::Speedscope,
        Format::Raw,
        Format::Chrometrace,
        Format::Pprof,
    ];

    /// The name py-spy's `--format` takes (pprof is ours).
    pub fn name(&self) -> &'static str {
        match self {
            Format::Flamegraph => "flamegraph",
            Format::Speedscope => "speedscope",
            Format::Raw => "raw",
            Format::Chrometrace => "chrometrace",
            Format::Pprof => "pprof",
        }
    }

    /// File extension, without the dot: `svg`, `json`, `txt`, `json`, `pb.gz`.
    pub fn extension(&self) -> &'static str {
        match self {
            Format::Flamegraph => "svg",
            Format::Speedscope | Format::Chrometrace => "json",
            Format::Raw => "txt",
            Format::Pprof => "pb.gz",
        }
    }

    pub(crate) fn encoder(&self) -> &'static dyn Encoder {
        match self {
            Format::Flamegraph => &flamegraph::Flamegraph,
            Format::Speedscope => &speedscope::Speedscope,
            Format::Raw => &raw::Raw,
            Format::Chrometrace => &chrometrace::Chrometrace,
            Format::Pprof => &pprof::Pprof,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::UnknownFormat(s.to_owned()))
    }
}

/// Writes a whole profile in one format. [`crate::encode`] has already
/// refused empty profiles and flushes `out` afterwards.
pub(crate) trait Encoder {
    fn encode(
        &self,
        profile: &Profile,
        options: &OutputOptions,
        out: &mut dyn Write,
    ) -> io::Result<()>;
}
