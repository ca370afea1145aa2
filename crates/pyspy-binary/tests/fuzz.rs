//! Feeds truncated and mutated real binaries to the parser: it must return
//! an error or a binary whose every accessor works, and never panic.
//!
//! Deterministic (fixed seed). Set PYSPY_FUZZ_ROUNDS to run more mutations
//! per input than the default.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

use pyspy_binary::{Arch, Binary};

use crate::util::{fixture, fixture_names};

/// Panics caught inside goblin (turned into errors by pyspy-binary).
static GOBLIN_PANICS: AtomicUsize = AtomicUsize::new(0);
/// Outcomes, printed at the end so the mix of inputs can be judged.
static PARSED: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);

/// Silences the default hook's report for panics raised inside goblin, which
/// the crate catches on purpose, while reporting every other panic normally.
fn quiet_goblin_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let in_goblin = info.location().is_some_and(|l| l.file().contains("goblin"));
            if in_goblin {
                GOBLIN_PANICS.fetch_add(1, Ordering::Relaxed);
            } else {
                default(info);
            }
        }));
    });
}

/// xorshift64*: small, deterministic, good enough to pick bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Calls every accessor so that a bad but "successful" parse is exercised.
fn exercise(bytes: &[u8], label: &str) {
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let Ok(binary) = Binary::parse_arch(bytes, arch) else {
                FAILED.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            PARSED.fetch_add(1, Ordering::Relaxed);
            let _ = (
                binary.format(),
                binary.symbol_count(),
                binary.image_offset(),
            );
            for name in ["_PyRuntime", "Py_Version", ""] {
                let _ = binary.symbol(name);
            }
            for section in binary.sections() {
                let _ = binary.section_data(bytes, &section.name);
                let _ = binary.load_bias(section.addr, section.file_offset.unwrap_or(0));
            }
            for name in [".bss", "__DATA,__bss", "PyRuntim", ",", ""] {
                let _ = binary.section(name);
            }
            let _ = binary.bss();
            let _ = binary.load_bias(u64::MAX, u64::MAX);
            let _ = binary.load_bias(0, 0);
        }
    }));
    if result.is_err() {
        panic!("pyspy-binary panicked on {label}");
    }
}

fn fuzz_one(name: &str, bytes: &[u8], rounds: usize, rng: &mut Rng) {
    let len = bytes.len();
    // Every short prefix (headers), then prefixes spread over the file.
    for cut in (0..len.min(600)).chain((0..200).map(|i| len * i / 200)) {
        exercise(&bytes[..cut], &format!("{name} cut to {cut} bytes"));
    }
    let mut copy = bytes.to_vec();
    for round in 0..rounds {
        copy.copy_from_slice(bytes);
        // Half the time, overwrite a header-area word (a count, offset or
        // size, most likely) with a value that tends to break arithmetic.
        if rng.next() & 1 == 0 && len >= 4 {
            let at = rng.below(len.min(4096) - 3) & !3;
            let words = [
                0,
                u32::MAX,
                0x7fff_ffff,
                0x8000_0000,
                len as u32,
                len as u32 + 1,
            ];
            let word = match rng.below(words.len() + 1) {
                i if i < words.len() => words[i],
                _ => rng.next() as u32,
            };
            copy[at..at + 4].copy_from_slice(&word.to_le_bytes());
        }
        let edits = rng.below(8);
        for _ in 0..edits {
            // Headers and tables are near the start; hit them half the time.
            let limit = if rng.next() & 1 == 0 {
                len.min(4096)
            } else {
                len
            };
            let at = rng.below(limit);
            copy[at] = match rng.below(4) {
                0 => 0,
                1 => 0xff,
                2 => copy[at] ^ (1 << rng.below(8)),
                _ => rng.next() as u8,
            };
        }
        exercise(
            &copy,
            &format!("{name} mutation round {round} ({edits} edits)"),
        );
    }
}

#[test]
fn fixtures_never_panic() {
    quiet_goblin_panics();
    let rounds = std::env::var("PYSPY_FUZZ_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok());
    let rounds = rounds.unwrap_or(400);
    let mut rng = Rng(0x5eed_0fb1_4a12);
    for name in fixture_names() {
        fuzz_one(&name, &fixture(&name), rounds, &mut rng);
    }
    eprintln!(
        "fuzz: {rounds} mutation rounds per fixture; so far {} parsed, {} errors, \
         {} goblin panics caught",
        PARSED.load(Ordering::Relaxed),
        FAILED.load(Ordering::Relaxed),
        GOBLIN_PANICS.load(Ordering::Relaxed)
    );
}

#[test]
fn large_binary_never_panics() {
    quiet_goblin_panics();
    // Fewer rounds: each one parses a 7 MB executable.
    let bytes = std::fs::read("/usr/bin/python3.11").unwrap();
    let mut rng = Rng(0xc0ff_ee00_1234);
    fuzz_one("python3.11", &bytes, 40, &mut rng);
}
