//! Finds symbols, sections and the load bias in ELF, Mach-O and PE files.
//!
//! [`Binary::parse`] reads an executable's or shared library's bytes and
//! answers where things are: the link-time address of a symbol such as
//! `_PyRuntime` ([`Binary::symbol`]), a section such as `.PyRuntime` or
//! `.bss` ([`Binary::section`], [`Binary::bss`]), and, given where the file
//! is mapped in a process, the offset between link-time and runtime
//! addresses ([`Binary::load_bias`]). It never touches another process (that
//! is `pyspy-process`) and knows no CPython struct layouts (that is
//! `pyspy-cpython`). Parsing is built on goblin, reads 64-bit binaries only,
//! and never panics on malformed input; errors are an [`Error`].
//!
//! ```no_run
//! let bytes = std::fs::read("/usr/bin/python3.11")?;
//! let binary = pyspy_binary::Binary::parse(&bytes)?;
//! let runtime = binary.symbol("_PyRuntime").expect("a CPython binary");
//! // From a /proc/PID/maps line such as
//! // "55d0c8a00000-55d0c8a6d000 r--p 00000000 fe:01 123 /usr/bin/python3.11":
//! let bias = binary.load_bias(0x55d0_c8a0_0000, 0).expect("offset 0 is mapped");
//! println!("_PyRuntime is at {:#x} in the process", runtime.wrapping_add(bias));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub use crate::binary::{Arch, Binary, Format, Section};
pub use crate::error::Error;

mod binary;
mod elf;
mod error;
mod macho;
mod parse;
mod pe;
