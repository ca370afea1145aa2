//! What every format shares: names, extensions, refusing empty profiles,
//! reporting writer failures.

use std::io;

use super::*;
use crate::{encode as encode_into, Error};

#[test]
fn formats_parse_case_insensitively_and_round_trip() {
    for f in Format::ALL {
        assert_eq!(f.to_string().parse::<Format>().unwrap(), f);
        assert_eq!(f.to_string().to_uppercase().parse::<Format>().unwrap(), f);
    }
    assert_eq!("SpeedScope".parse::<Format>().unwrap(), Format::Speedscope);
    let err = "svg".parse::<Format>().unwrap_err();
    assert_eq!(err.code(), "EFORMAT");
    assert!(err.to_string().contains("\"svg\""), "{err}");
    assert_eq!(Format::default(), Format::Flamegraph);
}

#[test]
fn extensions() {
    let ext: Vec<&str> = Format::ALL.iter().map(|f| f.extension()).collect();
    assert_eq!(ext, ["svg", "json", "txt", "json", "pb.gz"]);
}

#[test]
fn zero_samples_are_refused_by_every_format() {
    let mut zero_counts = two_threads();
    zero_counts.stacks.iter_mut().for_each(|s| s.count = 0);
    let mut only_empty_stacks = two_threads();
    only_empty_stacks
        .stacks
        .iter_mut()
        .for_each(|s| s.frames.clear());
    for p in [
        Profile::default(),
        no_samples(),
        zero_counts,
        only_empty_stacks,
    ] {
        for f in Format::ALL {
            let mut out = Vec::new();
            let err = encode_into(&p, f, &OutputOptions::default(), &mut out).unwrap_err();
            assert!(matches!(err, Error::Empty), "{f}: {err:?}");
            assert!(err.is_empty());
            assert_eq!(err.code(), "EEMPTY");
            assert!(out.is_empty(), "{f} wrote {} bytes", out.len());
        }
    }
}

struct Broken;

impl io::Write for Broken {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::BrokenPipe, "pipe closed"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn writer_failures_are_io_errors_naming_the_format() {
    for f in Format::ALL {
        let err =
            encode_into(&two_threads(), f, &OutputOptions::default(), &mut Broken).unwrap_err();
        match &err {
            Error::Io { format, source } => {
                assert_eq!(*format, f);
                assert_eq!(source.kind(), io::ErrorKind::BrokenPipe);
            }
            other => panic!("{f}: {other:?}"),
        }
        assert_eq!(err.code(), "EIO");
        assert!(err.to_string().contains(f.name()), "{err}");
    }
}

#[test]
fn output_is_deterministic() {
    for f in Format::ALL {
        assert_eq!(encode(&two_threads(), f), encode(&two_threads(), f), "{f}");
    }
}

#[test]
fn profiles_without_rate_use_100_hz() {
    let mut p = two_threads();
    p.rate_hz = 0.0;
    for f in Format::ALL {
        encode(&p, f);
    }
    let doc: serde_json::Value = serde_json::from_slice(&encode(&p, Format::Speedscope)).unwrap();
    assert_eq!(doc["profiles"][0]["endValue"], 0.08);
}
