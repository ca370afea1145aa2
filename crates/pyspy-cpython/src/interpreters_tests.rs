//! Sampling every interpreter on fake memory (a 3.13 layout): the threads
//! of each, their ids and GIL holders, a list that changes between samples,
//! and the cost: one read per sample once nothing changed, with one
//! interpreter or several.

use std::cell::{Cell, RefCell};

use pyspy_process::{FakeMemory, Memory, ReadError};

use crate::{generated, Flavor, Layout, StackWalker, Version};

const RUNTIME: usize = 0x10_0000;

/// Counts the calls that reach the memory (each is one system call live).
struct Counting {
    mem: RefCell<FakeMemory>,
    calls: Cell<usize>,
}

impl Counting {
    fn new(mem: FakeMemory) -> Self {
        Counting {
            mem: RefCell::new(mem),
            calls: Cell::new(0),
        }
    }
}

impl Memory for Counting {
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
        self.mem.borrow().read_ranges(ranges, buf)
    }
}

fn layout() -> Layout {
    let version = Version {
        major: 3,
        minor: 13,
        patch: 0,
        level: 0xf,
        serial: 0,
    };
    let mut offsets = generated::OFFSETS_3_13;
    // The GIL state as the debug offsets give it (relative to the GIL).
    offsets.gil_locked = Some(0);
    offsets.gil_last_holder = Some(8);
    Layout {
        version,
        offsets,
        flavor: Flavor::for_version(version).unwrap(),
        pthread_tid: None,
        code_generation: None,
        gil_enabled: None,
        tlbc: None,
    }
}

fn put(buf: &mut [u8], off: usize, v: u64) {
    buf[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Interpreter `k` (id `k`) at a fixed address, with one thread state
/// (tid 100 + k, holding its own GIL) and `next` as given.
fn place_interp(mem: &mut FakeMemory, k: usize, next: usize) -> usize {
    let o = layout().offsets;
    let addr = interp_addr(k);
    let tstate = addr + 0x10_0000;
    let gil = addr + 0x20_0000;
    let mut i = vec![0u8; o.interp_size];
    put(&mut i, o.interp_next, next as u64);
    put(&mut i, o.interp_id.unwrap(), k as u64);
    put(&mut i, o.interp_threads_head, tstate as u64);
    put(&mut i, o.interp_ceval_gil.unwrap(), gil as u64);
    mem.place(addr, i);
    let mut t = vec![0u8; o.tstate_size];
    put(&mut t, o.tstate_interp, addr as u64);
    put(&mut t, o.tstate_thread_id, 0x7000 + k as u64);
    put(&mut t, o.tstate_native_thread_id.unwrap(), 100 + k as u64);
    put(&mut t, o.tstate_status.unwrap(), 1 << 3);
    mem.place(tstate, t);
    let mut g = vec![0u8; 16];
    put(&mut g, 0, 1);
    put(&mut g, 8, tstate as u64);
    mem.place(gil, g);
    addr
}

fn interp_addr(k: usize) -> usize {
    0x100_0000 * (k + 1)
}

fn set_head(mem: &mut FakeMemory, first: usize) {
    let o = layout().offsets;
    let mut r = vec![0u8; o.runtime_interpreters_head.unwrap() + 8];
    put(&mut r, o.runtime_interpreters_head.unwrap(), first as u64);
    mem.place(RUNTIME, r);
}

/// (interpreter id, tid, holds its GIL) of each thread sampled.
fn sample(w: &mut StackWalker<&Counting>) -> Vec<(i64, u64, bool)> {
    let mut states = Vec::new();
    w.sample_threads(RUNTIME, interp_addr(0), &mut states)
        .unwrap();
    states
        .iter()
        .map(|s| (s.interpreter_id, s.native_thread_id, w.holds_gil(s.addr)))
        .collect()
}

/// Calls one sample makes.
fn calls_of(mem: &Counting, w: &mut StackWalker<&Counting>) -> usize {
    let before = mem.calls.get();
    sample(w);
    mem.calls.get() - before
}

#[test]
fn every_interpreter_is_sampled_in_one_read_and_changes_are_noticed() {
    let mut fake = FakeMemory::new();
    let main = place_interp(&mut fake, 0, 0);
    let sub1 = place_interp(&mut fake, 1, main);
    set_head(&mut fake, sub1);
    let mem = Counting::new(fake);
    let mut w = StackWalker::new(&mem, layout());
    assert!(w.watch_interpreters(RUNTIME));
    assert_eq!(sample(&mut w), [(1, 101, true), (0, 100, true)]);
    let ids: Vec<i64> = w.interpreters().iter().map(|i| i.id).collect();
    assert_eq!(ids, [1, 0]);
    // Nothing changed: the list, both GILs and both threads in one read.
    assert_eq!(calls_of(&mem, &mut w), 1);
    assert_eq!(sample(&mut w), [(1, 101, true), (0, 100, true)]);

    // A third interpreter starts (prepended, as CPython does): the next
    // sample sees it, and the one after reads once again.
    let sub2 = place_interp(&mut mem.mem.borrow_mut(), 2, sub1);
    set_head(&mut mem.mem.borrow_mut(), sub2);
    assert_eq!(
        sample(&mut w),
        [(2, 102, true), (1, 101, true), (0, 100, true)]
    );
    assert_eq!(calls_of(&mem, &mut w), 1);

    // The first sub-interpreter ends: unlinked.
    place_interp(&mut mem.mem.borrow_mut(), 2, main);
    assert_eq!(sample(&mut w), [(2, 102, true), (0, 100, true)]);
    assert_eq!(calls_of(&mem, &mut w), 1);

    // An interpreter freed and another made at its address (same links,
    // new id) is noticed too: the ids ride along with the links.
    let o = layout().offsets;
    let mut i = vec![0u8; o.interp_size];
    put(&mut i, o.interp_next, main as u64);
    put(&mut i, o.interp_id.unwrap(), 7);
    put(&mut i, o.interp_threads_head, (sub2 + 0x10_0000) as u64);
    put(
        &mut i,
        o.interp_ceval_gil.unwrap(),
        (sub2 + 0x20_0000) as u64,
    );
    mem.mem.borrow_mut().place(sub2, i);
    assert_eq!(sample(&mut w), [(7, 102, true), (0, 100, true)]);

    // A list that turns cyclic is an error, never a loop.
    place_interp(&mut mem.mem.borrow_mut(), 0, sub2);
    let mut states = Vec::new();
    let err = w.sample_threads(RUNTIME, main, &mut states).unwrap_err();
    assert!(err.to_string().contains("cyclic"), "{err}");
}

#[test]
fn one_interpreter_costs_one_read_per_sample_watched_or_not() {
    let mut fake = FakeMemory::new();
    let main = place_interp(&mut fake, 0, 0);
    set_head(&mut fake, main);
    let mem = Counting::new(fake);
    for watch in [false, true] {
        let mut w = StackWalker::new(&mem, layout());
        if watch {
            w.watch_interpreters(RUNTIME);
        }
        assert_eq!(sample(&mut w), [(0, 100, true)]);
        for _ in 0..3 {
            assert_eq!(calls_of(&mem, &mut w), 1, "watch {watch}");
        }
    }
}

#[test]
fn a_thread_state_left_for_another_interpreter_is_not_bound() {
    let mut fake = FakeMemory::new();
    let main = place_interp(&mut fake, 0, 0);
    set_head(&mut fake, main);
    // Clear bound_gilstate on the main interpreter's thread state.
    let o = layout().offsets;
    let tstate = main + 0x10_0000;
    let mut t = vec![0u8; o.tstate_size];
    put(&mut t, o.tstate_interp, main as u64);
    put(&mut t, o.tstate_status.unwrap(), 1 << 4); // active only
    fake.place(tstate, t);
    let mem = Counting::new(fake);
    let mut w = StackWalker::new(&mem, layout());
    w.watch_interpreters(RUNTIME);
    let mut states = Vec::new();
    w.sample_threads(RUNTIME, main, &mut states).unwrap();
    assert_eq!(states.len(), 1);
    assert!(!states[0].bound);
    assert_eq!(states[0].interp, main);
}

#[test]
fn a_free_threaded_gil_turned_off_has_no_holder_and_threads_say_if_attached() {
    let mut fake = FakeMemory::new();
    let main = place_interp(&mut fake, 0, 0);
    set_head(&mut fake, main);
    let o = layout().offsets;
    let (tstate, gil) = (main + 0x10_0000, main + 0x20_0000);
    // Initialized, bound_gilstate and active: attached.
    let mut t = vec![0u8; o.tstate_size];
    put(&mut t, o.tstate_interp, main as u64);
    put(&mut t, o.tstate_status.unwrap(), 1 | 1 << 3 | 1 << 4);
    fake.place(tstate, t);
    // `locked` and `last_holder` stale from before the GIL was turned off;
    // `enabled` (here at 16) is 0.
    let mut g = vec![0u8; 24];
    put(&mut g, 0, 1);
    put(&mut g, 8, tstate as u64);
    fake.place(gil, g);
    let mem = Counting::new(fake);
    let ft = Layout {
        gil_enabled: Some(16),
        ..layout()
    };
    let mut w = StackWalker::new(&mem, ft);
    w.watch_interpreters(RUNTIME);
    for _ in 0..3 {
        let mut states = Vec::new();
        w.sample_threads(RUNTIME, main, &mut states).unwrap();
        assert!(!w.holds_gil(tstate));
        assert_eq!(w.gil_enabled(main), Some(false));
        assert_eq!(states[0].attached, Some(true));
    }
    // The flag rides in the snapshot: still one read per sample.
    assert_eq!(calls_of(&mem, &mut w), 1);

    // PYTHON_GIL=1 (or a module that needs the GIL): enabled, held.
    let mut g = vec![0u8; 24];
    put(&mut g, 0, 1);
    put(&mut g, 8, tstate as u64);
    put(&mut g, 16, 1);
    mem.mem.borrow_mut().place(gil, g);
    assert_eq!(sample(&mut w), [(0, 0, true)]);
    assert_eq!(w.gil_enabled(main), Some(true));

    // Detached (active clear); a word without `initialized` is not trusted.
    for (word, attached) in [
        (1 | 1 << 3, Some(false)),
        (1 << 4, None),
        (1 << 12 | 1, None),
    ] {
        let mut t = vec![0u8; o.tstate_size];
        put(&mut t, o.tstate_interp, main as u64);
        put(&mut t, o.tstate_status.unwrap(), word);
        mem.mem.borrow_mut().place(tstate, t);
        let mut states = Vec::new();
        w.sample_threads(RUNTIME, main, &mut states).unwrap();
        assert_eq!(states[0].attached, attached, "status {word:#x}");
    }

    // A GIL build's layout reads no flag.
    let mut w = StackWalker::new(&mem, layout());
    sample(&mut w);
    assert_eq!(w.gil_enabled(main), None);
}
