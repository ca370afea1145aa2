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
        let mem = Counted {
            mem: Rc::new(RefCell::new(s.memory())),
            calls: Rc::new(Cell::new(0)),
        };
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
