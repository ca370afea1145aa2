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

/// `threading._active` grown to the most entries a dict may have (65536,
/// every one a real thread): thread names are looked up for at most
/// `MAX_THREADS` of them, as thread states are, so a read stays short.
#[test]
fn a_huge_threading_registry_is_read_in_bounded_time() {
    use pyspy_process::MemoryExt;
    let mut s = snapshot(11);
    let layout = layout_for(&s.memory(), s.version, s.runtime).unwrap();
    let o = layout.offsets;
    let walker = StackWalker::new(s.memory(), layout);
    let r = &walker.objects;
    let modules = r.mem.read_usize(s.interp + o.interp_modules).unwrap();
    let threading = r
        .lookup_str_key(&r.dict_items(modules).unwrap(), "threading")
        .unwrap();
    let md_dict = r.mem.read_usize(threading + o.module_md_dict).unwrap();
    let active = r
        .lookup_str_key(&r.dict_items(md_dict).unwrap(), "_active")
        .unwrap();
    // 3.11 PyDictObject.ma_keys; PyDictKeysObject: dk_log2_size at 8,
    // dk_log2_index_bytes at 9, dk_kind at 10, dk_nentries at 24, then the
    // index array and the 24-byte (hash, key, value) entries.
    let keys = r.mem.read_usize(active + 32).unwrap();
    let mut head = r.mem.read_vec(keys, 32).unwrap();
    assert_eq!(head[10], 0, "general (non-unicode) keys");
    let index = 1usize << head[9];
    let first = r.mem.read_vec(keys + 32 + index, 24).unwrap();
    // A new keys object elsewhere, with 65536 copies of the first entry.
    let n = 1usize << 16;
    head[8] = 17;
    head[24..32].copy_from_slice(&(n as u64).to_le_bytes());
    let mut object = head;
    object.resize(32 + index, 0);
    for _ in 0..n {
        object.extend_from_slice(&first);
    }
    let new_keys = 0x6100_0000_0000;
    s.ranges.push((new_keys, object));
    // And the thread's own attributes: a dict of 65536 five-letter keys,
    // none of them `_name` (3.11: the managed dict pointer at obj - 24).
    let thread = u64::from_le_bytes(first[16..24].try_into().unwrap()) as usize;
    let (dict, attr_keys, key) = (
        0x6200_0000_0000usize,
        0x6200_0000_1000usize,
        0x6200_0000_0100usize,
    );
    let mut d = vec![0u8; 48];
    d[32..40].copy_from_slice(&(attr_keys as u64).to_le_bytes());
    s.ranges.push((dict, d));
    // PyASCIIObject: length at 16, state at 32 (compact, ascii, kind 1), text at 48.
    let mut k = vec![0u8; 56];
    k[16..24].copy_from_slice(&5u64.to_le_bytes());
    k[32..36].copy_from_slice(&((1u32 << 2) | (1 << 5) | (1 << 6)).to_le_bytes());
    k[48..53].copy_from_slice(b"xname");
    s.ranges.push((key, k));
    let mut ak = vec![0u8; 32];
    ak[8] = 17;
    ak[9] = 3;
    ak[10] = 1; // unicode keys: 16-byte (key, value) entries
    ak[24..32].copy_from_slice(&(n as u64).to_le_bytes());
    ak.resize(32 + 8, 0);
    for _ in 0..n {
        ak.extend_from_slice(&(key as u64).to_le_bytes());
        ak.extend_from_slice(&(key as u64).to_le_bytes());
    }
    s.ranges.push((attr_keys, ak));
    s.normalize();
    set_word(&mut s, thread - 24, dict);
    set_word(&mut s, active + 32, new_keys);
    let names = StackWalker::new(s.memory(), layout)
        .thread_names(s.interp)
        .unwrap();
    assert_eq!(names.len(), 0, "no thread has a _name any more");
    let t = std::time::Instant::now();
    assert_bounded(&s, "3.11 with 65536 threading._active entries");
    // Debug build on a loaded machine: generous (all 65536 took far longer).
    assert!(t.elapsed().as_secs() < 20, "took {:?}", t.elapsed());
}
