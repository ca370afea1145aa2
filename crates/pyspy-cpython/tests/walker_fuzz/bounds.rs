//! Hand-made worst cases the random mutations are unlikely to reach: each
//! takes a captured snapshot, rewrites a few fields into a legal-looking but
//! hostile shape, and checks that one read stays within the same bounds as
//! the fuzzer's inputs (no panic, bounded memory and time).

use pyspy_cpython::{layout_for, StackWalker};

use crate::snapshot::{load_corpus, Snapshot};
use crate::{run_input, Stats};

fn snapshot(minor: u8) -> Snapshot {
    load_corpus()
        .into_iter()
        .find(|s| s.version.minor == minor)
        .unwrap_or_else(|| panic!("no 3.{minor} snapshot in tests/corpus"))
}

fn word_at(s: &Snapshot, addr: usize) -> usize {
    let (start, bytes) = s
        .ranges
        .iter()
        .find(|(a, b)| *a <= addr && addr - a + 8 <= b.len())
        .unwrap_or_else(|| panic!("{addr:#x} is not in the snapshot"));
    let off = addr - start;
    u64::from_le_bytes(bytes[off..off + 8].try_into().unwrap()) as usize
}

fn set_word(s: &mut Snapshot, addr: usize, value: usize) {
    let (start, bytes) = s
        .ranges
        .iter_mut()
        .find(|(a, b)| *a <= addr && addr - *a + 8 <= b.len())
        .unwrap_or_else(|| panic!("{addr:#x} is not in the snapshot"));
    let off = addr - *start;
    bytes[off..off + 8].copy_from_slice(&(value as u64).to_le_bytes());
}

/// Makes `len` bytes from `addr` readable (zeros where nothing was).
fn extend(s: &mut Snapshot, addr: usize, len: usize) {
    s.ranges.push((addr, vec![0u8; len]));
    // Existing bytes win: place the zeros first.
    let zeros = s.ranges.pop().unwrap();
    s.ranges.insert(0, zeros);
    s.ranges.sort_by_key(|r| r.0);
    let mut merged: Vec<(usize, Vec<u8>)> = Vec::new();
    for (a, b) in std::mem::take(&mut s.ranges) {
        match merged.last_mut() {
            Some((start, prev)) if a <= *start + prev.len() => {
                let off = a - *start;
                if off + b.len() > prev.len() {
                    prev.resize(off + b.len(), 0);
                }
                // Keep what was captured over the zeros.
                if b.iter().any(|&x| x != 0) {
                    prev[off..off + b.len()].copy_from_slice(&b);
                }
            }
            _ => merged.push((a, b)),
        }
    }
    s.ranges = merged;
}

fn assert_bounded(s: &Snapshot, what: &str) {
    let mut stats = Stats::default();
    match run_input(0, s, s, &mut stats) {
        Ok(_) => {}
        Err(e) => panic!("{what}: {e}"),
    }
}

/// A data-stack chunk whose `previous` is itself, with the largest size the
/// reader accepts: each thread's chunk walk must stop (a cycle, a budget),
/// not copy the same 4 MiB chunk over and over.
#[test]
fn a_cyclic_data_stack_chunk_is_copied_once() {
    for minor in [11, 13, 14] {
        let mut s = snapshot(minor);
        let layout = layout_for(&s.memory(), s.version, s.runtime).unwrap();
        let states = StackWalker::new(s.memory(), layout)
            .thread_states(s.interp)
            .unwrap();
        for ts in states.iter().filter(|t| t.datastack_chunk != 0) {
            let chunk = ts.datastack_chunk;
            let big = 4 << 20;
            extend(&mut s, chunk, big);
            set_word(&mut s, chunk, chunk);
            set_word(&mut s, chunk + 8, big);
            set_word(&mut s, chunk + 16, (big - 24) / 8);
            assert_eq!(word_at(&s, chunk), chunk);
        }
        assert_bounded(
            &s,
            &format!("3.{minor} with cyclic 4 MiB data-stack chunks"),
        );
    }
}
