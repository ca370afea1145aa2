//! The recorder's one-call snapshot (`sample_threads`) against the
//! step-by-step read, on every corpus interpreter: the same threads and
//! stacks, one remote read once it has seen the process, and a fallback
//! (not a wrong stack) when the process changed under the speculation.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use pyspy_cpython::{layout_for, RawFrame, StackWalker, ThreadState};
use pyspy_process::{FakeMemory, Memory, ReadError};

use crate::snapshot::{load_corpus, Snapshot};

/// Shared fake memory that counts read calls (one per `read`, `read_many`
/// or `read_ranges`: one system call each on Linux).
#[derive(Clone)]
struct Counted {
    mem: Rc<RefCell<FakeMemory>>,
    calls: Rc<Cell<usize>>,
    /// Bytes asked for by `read_ranges` (the snapshot's calls).
    range_bytes: Rc<Cell<usize>>,
}

impl Counted {
    /// The snapshot's memory, no reads counted yet.
    fn of(s: &Snapshot) -> Counted {
        Counted {
            mem: Rc::new(RefCell::new(s.memory())),
            calls: Rc::new(Cell::new(0)),
            range_bytes: Rc::new(Cell::new(0)),
        }
    }
}

impl Memory for Counted {
    fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), ReadError> {
        self.calls.set(self.calls.get() + 1);
        self.mem.borrow().read(addr, buf)
    }
    fn read_many(&self, reads: &mut [(usize, &mut [u8])]) -> Result<(), ReadError> {
        self.calls.set(self.calls.get() + 1);
        self.mem.borrow().read_many(reads)
    }
    fn read_ranges(&self, ranges: &[(usize, usize)], buf: &mut [u8]) -> Result<(), ReadError> {
        self.calls.set(self.calls.get() + 1);
        self.range_bytes
            .set(self.range_bytes.get() + ranges.iter().map(|r| r.1).sum::<usize>());
        self.mem.borrow().read_ranges(ranges, buf)
    }
}

/// One sample: thread states and every thread's (code, line) stack.
fn sample(
    walker: &mut StackWalker<Counted>,
    s: &Snapshot,
) -> (Vec<ThreadState>, Vec<Vec<(usize, i32)>>) {
    let mut states = Vec::new();
    walker
        .sample_threads(s.runtime, s.interp, &mut states)
        .unwrap_or_else(|e| panic!("{}: sample_threads: {e}", s.name));
    walker
        .walk_threads(&states)
        .unwrap_or_else(|e| panic!("{}: walk_threads: {e}", s.name));
    assert!(
        walker.walks_unchanged().unwrap(),
        "{}: a still snapshot reads as torn",
        s.name
    );
    let stacks = (0..states.len())
        .map(|i| {
            let mut raw: Vec<RawFrame> = Vec::new();
            walker.resolve_walk(i, &mut raw).unwrap();
            raw.iter().map(|f| (f.code, f.line)).collect()
        })
        .collect();
    (states, stacks)
}

#[test]
fn speculative_snapshot_reads_once_and_agrees_with_the_step_by_step_read() {
    let corpus = load_corpus();
    assert!(!corpus.is_empty(), "no corpus");
    for s in &corpus {
        let mem = Counted::of(s);
        let layout = layout_for(&mem, s.version, s.runtime).unwrap();
        let mut walker = StackWalker::new(mem.clone(), layout);
        let (states, stacks) = sample(&mut walker, s);
        assert!(
            stacks.iter().map(Vec::len).sum::<usize>() > 100,
            "{}",
            s.name
        );
        // Seen once: the next sample's snapshot is one read (the check is
        // another); the answer is the same.
        mem.calls.set(0);
        let mut again = Vec::new();
        walker
            .sample_threads(s.runtime, s.interp, &mut again)
            .unwrap();
        assert_eq!(
            mem.calls.get(),
            1,
            "{}: reads of a speculative snapshot",
            s.name
        );
        let (states2, stacks2) = sample(&mut walker, s);
        assert_eq!(states, states2, "{}", s.name);
        assert_eq!(stacks, stacks2, "{}", s.name);

        // The thread list changed under the speculation (its head now
        // skips the first thread): the snapshot notices and reads again.
        let o = walker.layout().offsets;
        let head_at = s.interp + o.interp_threads_head;
        let second = states[1].addr;
        mem.mem
            .borrow_mut()
            .place(head_at, second.to_le_bytes().to_vec());
        let (states3, stacks3) = sample(&mut walker, s);
        assert_eq!(states3, states[1..], "{}: after the head moved", s.name);
        assert_eq!(stacks3, stacks[1..], "{}", s.name);
    }
}

#[test]
fn still_threads_are_read_without_slack_and_a_deeper_one_is_read_again() {
    let corpus = load_corpus();
    let mut checked = 0;
    for s in &corpus {
        let mem = Counted::of(s);
        let layout = layout_for(&mem, s.version, s.runtime).unwrap();
        let Some(chunk_off) = layout.offsets.tstate_datastack_chunk else {
            continue; // before 3.11: no data-stack chunks
        };
        let mut walker = StackWalker::new(mem.clone(), layout);
        let (states, stacks) = sample(&mut walker, s);
        // The snapshot's reads and bytes (the walk's own reads aside).
        let snapshot_bytes = |walker: &mut StackWalker<Counted>| {
            mem.calls.set(0);
            mem.range_bytes.set(0);
            let mut st = Vec::new();
            walker.sample_threads(s.runtime, s.interp, &mut st).unwrap();
            let (calls, bytes) = (mem.calls.get(), mem.range_bytes.get());
            walker.walk_threads(&st).unwrap();
            let stacks: Vec<Vec<(usize, i32)>> = (0..st.len())
                .map(|i| {
                    let mut raw: Vec<RawFrame> = Vec::new();
                    walker.resolve_walk(i, &mut raw).unwrap();
                    raw.iter().map(|f| (f.code, f.line)).collect()
                })
                .collect();
            (calls, bytes, (st, stacks))
        };
        let (_, fresh, _) = snapshot_bytes(&mut walker);
        // Still for long enough: the chunks are read as used, no slack.
        let mut still = (0, 0, (Vec::new(), Vec::new()));
        for _ in 0..12 {
            still = snapshot_bytes(&mut walker);
        }
        assert_eq!(still.0, 1, "{}", s.name);
        assert!(
            still.1 < fresh,
            "{}: {} bytes still against {fresh} fresh",
            s.name,
            still.1
        );
        assert_eq!(still.2, (states.clone(), stacks.clone()), "{}", s.name);
        // A thread's stack top moves deeper (its frames as they were): the
        // copy without slack is refused and the chunk read again, once;
        // the stacks are the same, and the slack comes back.
        let Some(t) = states.iter().find(|t| {
            t.top_frame != 0 && t.datastack_top != 0 && t.datastack_top > t.datastack_chunk
        }) else {
            continue;
        };
        let deeper = t.datastack_top + 64;
        let mut size = [0u8; 8];
        mem.mem
            .borrow()
            .read(t.datastack_chunk + 8, &mut size)
            .unwrap();
        if deeper > t.datastack_chunk + usize::from_le_bytes(size) {
            continue; // no room in the chunk
        }
        // The capture holds the chunk up to its slack: it grows by a page
        // (as a live chunk is mapped whole); the thread state gets the new top.
        let mut chunk = readable_from(&mem, t.datastack_chunk);
        chunk.resize(chunk.len() + 4096, 0);
        mem.mem.borrow_mut().place(t.datastack_chunk, chunk);
        let at = chunk_off + 8;
        let mut copy = readable_from(&mem, t.addr);
        copy[at..at + 8].copy_from_slice(&deeper.to_le_bytes());
        mem.mem.borrow_mut().place(t.addr, copy);
        let (calls, _, (_, stacks2)) = snapshot_bytes(&mut walker);
        assert!(
            calls >= 2,
            "{}: the deeper chunk was not read again",
            s.name
        );
        assert_eq!(stacks2, stacks, "{}", s.name);
        let (calls, again, _) = snapshot_bytes(&mut walker);
        assert_eq!(calls, 1, "{}", s.name);
        assert!(again > still.1, "{}: no slack after a change", s.name);
        checked += 1;
    }
    assert!(checked > 0, "no corpus interpreter with data-stack chunks");
}

/// The bytes readable from `addr` to the end of the placed range holding
/// it (a range placed inside another is seen only by reads that start in
/// it, so changes are placed as whole tails; readable lengths from one
/// address are a prefix: found by bisection).
fn readable_from(mem: &Counted, addr: usize) -> Vec<u8> {
    let readable = |n: usize| mem.mem.borrow().read(addr, &mut vec![0u8; n]).is_ok();
    let (mut lo, mut hi) = (1, 1usize << 26);
    assert!(readable(lo), "nothing at {addr:#x}");
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if readable(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let mut copy = vec![0u8; lo];
    mem.mem.borrow().read(addr, &mut copy).unwrap();
    copy
}

/// Where the GIL's `switch_number` and `last_holder` lie (3.12+, a GIL
/// build): `None` before 3.12 or on a free-threaded build.
fn gil_words(
    walker: &StackWalker<Counted>,
    mem: &Counted,
    interp: usize,
) -> Option<(usize, usize)> {
    let o = walker.layout().offsets;
    if walker.layout().gil_enabled.is_some() {
        return None;
    }
    let (Some(ptr), Some(locked), Some(holder)) =
        (o.interp_ceval_gil, o.gil_locked, o.gil_last_holder)
    else {
        return None;
    };
    let mut word = [0u8; 8];
    mem.mem.borrow().read(interp + ptr, &mut word).unwrap();
    let gil = usize::from_le_bytes(word);
    Some((gil + locked + 8, gil + holder))
}

/// Overwrites 8 bytes at `base + off`, placing the whole readable tail
/// from `base`, where the reads that should see it start (see
/// `readable_from`).
fn poke(mem: &Counted, base: usize, off: usize, value: u64) {
    let mut copy = readable_from(mem, base);
    copy[off..off + 8].copy_from_slice(&value.to_le_bytes());
    mem.mem.borrow_mut().place(base, copy);
}

#[test]
fn quiet_threads_are_not_read_again_until_the_gil_switches() {
    let corpus = load_corpus();
    let mut checked = 0;
    for s in &corpus {
        let mem = Counted::of(s);
        let layout = layout_for(&mem, s.version, s.runtime).unwrap();
        let mut walker = StackWalker::new(mem.clone(), layout);
        let Some((switch_at, holder_at)) = gil_words(&walker, &mem, s.interp) else {
            continue; // before 3.12, or free-threaded: every thread is read
        };
        let (states, stacks) = sample(&mut walker, s);
        assert!(states.len() >= 3, "{}: {} threads", s.name, states.len());
        let bytes_of = |walker: &mut StackWalker<Counted>| {
            mem.range_bytes.set(0);
            let got = sample(walker, s);
            (mem.range_bytes.get(), got)
        };
        // Every thread read (the snapshot and the walk's check).
        let (full, _) = bytes_of(&mut walker);
        walker.reuse_quiet_threads(true);
        // The GIL has not switched: only its last holder is read again, and
        // every thread's state and stack are what a full read gives.
        let (first_quiet, _) = bytes_of(&mut walker);
        assert!(
            first_quiet < full,
            "{}: {first_quiet} bytes quiet, {full} in full",
            s.name
        );
        let (quiet, got) = bytes_of(&mut walker);
        assert!(
            quiet < full,
            "{}: {quiet} bytes quiet, {full} in full",
            s.name
        );
        assert_eq!(got, (states.clone(), stacks.clone()), "{}", s.name);
        let quiet_threads = (0..states.len()).filter(|&i| walker.was_quiet(i)).count();
        assert!(
            quiet_threads + 1 >= states.len(),
            "{}: {quiet_threads} quiet",
            s.name
        );
        assert_eq!(
            walker.gil_switches(),
            Some(read_u64(&mem, switch_at)),
            "{}",
            s.name
        );

        // A quiet thread's state changes in memory (its tid, say). While
        // the GIL has not switched that cannot be Python's doing, and the
        // thread is not read; once the switch count moves, it is.
        let holder = read_u64(&mem, holder_at) as usize;
        let t = states.iter().find(|t| t.addr != holder).unwrap();
        let tid_off = walker.layout().offsets.tstate_native_thread_id.unwrap();
        poke(&mem, t.addr, tid_off, 4242);
        let (_, (kept, _)) = bytes_of(&mut walker);
        assert_eq!(kept, states, "{}: read although quiet", s.name);
        // The snapshot reads the GIL from its holder field on.
        poke(
            &mem,
            holder_at,
            switch_at - holder_at,
            read_u64(&mem, switch_at) + 1,
        );
        mem.calls.set(0);
        let (_, (seen, seen_stacks)) = bytes_of(&mut walker);
        // The skipped read, the full one (what the quiet reads left out of
        // the speculation is read along: no frame or code read on its
        // own), and the torn-read check.
        assert_eq!(mem.calls.get(), 3, "{}: reads after a switch", s.name);
        let none_quiet = |w: &StackWalker<Counted>| (0..states.len()).all(|i| !w.was_quiet(i));
        assert!(none_quiet(&walker), "{}: quiet after a switch", s.name);
        let changed = seen.iter().find(|x| x.addr == t.addr).unwrap();
        assert_eq!(changed.native_thread_id, 4242, "{}", s.name);
        assert_eq!(seen_stacks, stacks, "{}", s.name);
        // Quiet again, with the new state; then another thread takes the
        // GIL (its last holder changes, as with a switch): read in full.
        let (quiet2, (kept2, _)) = bytes_of(&mut walker);
        assert!(quiet2 < full, "{}", s.name);
        assert_eq!(kept2, seen, "{}", s.name);
        poke(&mem, holder_at, 0, t.addr as u64);
        bytes_of(&mut walker);
        assert!(
            none_quiet(&walker),
            "{}: a new last holder read quietly",
            s.name
        );
        // However long the GIL stays put, every thread is read in full now
        // and then.
        let mut fulls = 0;
        for _ in 0..300 {
            bytes_of(&mut walker);
            fulls += usize::from(none_quiet(&walker));
        }
        assert!(
            (2..=4).contains(&fulls),
            "{}: {fulls} full reads in 300",
            s.name
        );
        checked += 1;
    }
    assert!(
        checked >= 3,
        "only {checked} corpus interpreters with a GIL switch count"
    );
}

fn read_u64(mem: &Counted, addr: usize) -> u64 {
    let mut word = [0u8; 8];
    mem.mem.borrow().read(addr, &mut word).unwrap();
    u64::from_le_bytes(word)
}

#[test]
fn code_checks_ride_along_only_when_the_code_generation_moved() {
    let corpus = load_corpus();
    let mut checked = 0;
    for s in &corpus {
        let mem = Counted::of(s);
        let layout = layout_for(&mem, s.version, s.runtime).unwrap();
        let Some(gen_off) = layout.code_generation else {
            continue; // before 3.14: the code objects' bytes are checked every time
        };
        let mut walker = StackWalker::new(mem.clone(), layout);
        let (states, stacks) = sample(&mut walker, s);
        let reads_of = |walker: &mut StackWalker<Counted>| {
            mem.calls.set(0);
            mem.range_bytes.set(0);
            let got = sample(walker, s);
            (mem.calls.get(), mem.range_bytes.get(), got)
        };
        // Settled (the code objects compared in one snapshot count as checked
        // at the generation of the one before): the snapshot and the
        // torn-read check, no code bytes.
        reads_of(&mut walker);
        reads_of(&mut walker);
        let (calls, settled, got) = reads_of(&mut walker);
        assert_eq!(calls, 2, "{}", s.name);
        assert_eq!(got, (states.clone(), stacks.clone()), "{}", s.name);
        // A code object was freed somewhere (the generation moved): the
        // walked ones are checked by their bytes once, in one more read.
        let generation = s.interp + gen_off;
        let mut word = [0u8; 8];
        mem.mem.borrow().read(generation, &mut word).unwrap();
        let mut tail = readable_from(&mem, generation);
        tail[..8].copy_from_slice(&(u64::from_le_bytes(word) + 1).to_le_bytes());
        mem.mem.borrow_mut().place(generation, tail);
        let (calls, _, got) = reads_of(&mut walker);
        assert_eq!(calls, 3, "{}: reads after the generation moved", s.name);
        assert_eq!(got, (states.clone(), stacks.clone()), "{}", s.name);
        // Checked at the new generation: no code bytes again.
        let (calls, bytes, _) = reads_of(&mut walker);
        assert_eq!((calls, bytes), (2, settled), "{}", s.name);
        checked += 1;
    }
    assert!(
        checked >= 2,
        "only {checked} corpus interpreters with a code generation"
    );
}
