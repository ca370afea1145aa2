//! `cargo run --release -p pyspy-sampler --example read_floor -- PID [--idle] [--samples N]`:
//! the work of one sample against the cost of the one read it cannot avoid.
//! Used by `npm run bench` (issue 22); a development tool, not the product.
//!
//! It attaches like the recorder, takes N nonblocking samples (`--idle`: no
//! `/proc` read of thread states, as `record --idle`) and counts per sample
//! the remote reads, bytes and allocations and the CPU time. It then records
//! the exact ranges one sample reads (through a second walker over a
//! recording memory) and times a tight loop of one `process_vm_readv` of
//! those ranges (the same bytes and iovecs; through `/proc/PID/mem` when the
//! process is read that way): the floor. One JSON line on stdout
//! (`PYSPY_FLOOR_RANGES=1`: the ranges of that sample on stderr).
use std::cell::RefCell;
use std::sync::Arc;

use pyspy_cpython::{find_interpreter, StackWalker, ThreadState};
use pyspy_process::{Memory, Process, ReadError};
use pyspy_sampler::{RawSample, ReadMode, Session};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

/// Memory that notes every range read.
struct Recording {
    inner: Arc<Process>,
    ranges: RefCell<Vec<(usize, usize)>>,
}

impl Memory for Recording {
    fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), ReadError> {
        self.ranges.borrow_mut().push((addr, buf.len()));
        self.inner.read(addr, buf)
    }
    fn read_many(&self, reads: &mut [(usize, &mut [u8])]) -> Result<(), ReadError> {
        let mut r = self.ranges.borrow_mut();
        r.extend(reads.iter().map(|(a, b)| (*a, b.len())));
        drop(r);
        self.inner.read_many(reads)
    }
    fn read_ranges(&self, ranges: &[(usize, usize)], buf: &mut [u8]) -> Result<(), ReadError> {
        self.ranges.borrow_mut().extend_from_slice(ranges);
        self.inner.read_ranges(ranges, buf)
    }
}

/// This thread's CPU time in nanoseconds.
fn thread_cpu_ns() -> u64 {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: a valid out-pointer to a timespec-shaped struct.
    unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.sec as u64 * 1_000_000_000 + ts.nsec as u64
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    println!(
        "{{\"error\":{:?}}}",
        format!("{what}: {e}").replace('\\', "/")
    );
    std::process::exit(1);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pid: i32 = args
        .first()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| fail("usage", "read_floor PID [--idle] [--samples N]"));
    let idle = args.iter().any(|a| a == "--idle");
    let n: u64 = args
        .iter()
        .position(|a| a == "--samples")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(5000);

    let mut session = Session::attach(pid).unwrap_or_else(|e| fail("attach", e));
    let mut raw = RawSample::default();
    let os_state = !idle;
    let sample = |session: &mut Session, raw: &mut RawSample| {
        session
            .sample_raw(ReadMode::Nonblocking, os_state, raw)
            .unwrap_or_else(|e| fail("sample", e));
    };
    for _ in 0..n.min(500) {
        sample(&mut session, &mut raw);
    }
    let counter = session.process().read_counter();
    let (calls0, bytes0, allocs0) = (counter.calls(), counter.bytes(), allocations());
    let cpu0 = thread_cpu_ns();
    for _ in 0..n {
        sample(&mut session, &mut raw);
    }
    let sample_ns = (thread_cpu_ns() - cpu0) as f64 / n as f64;
    let counter = session.process().read_counter();
    let per = |x: u64| x as f64 / n as f64;
    let reads = per(counter.calls() - calls0);
    let bytes = per(counter.bytes() - bytes0);
    let allocs = per(allocations() - allocs0);
    let threads = raw.threads().len();

    // The ranges of one sample, read as the session reads them.
    let process = Arc::new(Process::open(pid).unwrap_or_else(|e| fail("open", e)));
    let interpreter = find_interpreter(&*process).unwrap_or_else(|e| fail("interpreter", e));
    let mem = Recording {
        inner: process.clone(),
        ranges: RefCell::new(Vec::new()),
    };
    let mut walker = StackWalker::new(&mem, interpreter.layout);
    walker.watch_gc(interpreter.gc_collecting);
    walker.watch_interpreters(interpreter.runtime);
    // As the session reads: threads the GIL proves quiet are not read.
    walker.reuse_quiet_threads(true);
    let mut states: Vec<ThreadState> = Vec::new();
    let mut frames = Vec::new();
    let mut walk = |walker: &mut StackWalker<&Recording>, states: &mut Vec<ThreadState>| {
        walker
            .sample_threads(interpreter.runtime, interpreter.interp, states)
            .and_then(|_| walker.walk_threads(states))
            .and_then(|_| (0..states.len()).try_for_each(|i| walker.resolve_walk(i, &mut frames)))
            .unwrap_or_else(|e| fail("walk", e));
    };
    // Warm: code objects cached, the speculation settled.
    for _ in 0..50 {
        walk(&mut walker, &mut states);
    }
    let (ranges, recorded_calls) = {
        let calls = process.read_counter().calls();
        mem.ranges.borrow_mut().clear();
        walk(&mut walker, &mut states);
        (mem.ranges.take(), process.read_counter().calls() - calls)
    };
    let total: usize = ranges.iter().map(|r| r.1).sum();
    if std::env::var_os("PYSPY_FLOOR_RANGES").is_some() {
        // Which ranges (and pages) one sample reads, to see what costs.
        for &(addr, len) in &ranges {
            eprintln!("{addr:#x} {len} page {:#x}", addr >> 12);
        }
    }
    // As the read joins them: sorted, nearby ranges one remote iovec.
    let iovecs = pyspy_process::joined_spans(&ranges);
    let mut buf = vec![0u8; total];
    let floor_calls0 = process.read_counter().calls();
    let floor_n = n.max(1000);
    let cpu0 = thread_cpu_ns();
    for _ in 0..floor_n {
        process
            .read_ranges(&ranges, &mut buf)
            .unwrap_or_else(|e| fail("floor read", e));
    }
    let floor_ns = (thread_cpu_ns() - cpu0) as f64 / floor_n as f64;
    let floor_calls = (process.read_counter().calls() - floor_calls0) as f64 / floor_n as f64;
    println!(
        "{{\"pid\":{pid},\"idle\":{idle},\"samples\":{n},\"threads\":{threads},\
\"readsPerSample\":{reads:.3},\"bytesPerSample\":{bytes:.0},\"allocsPerSample\":{allocs:.3},\
\"sampleNs\":{sample_ns:.0},\"floorBytes\":{total},\"floorRanges\":{},\"floorIovecs\":{iovecs},\
\"floorCalls\":{floor_calls:.3},\"walkerCalls\":{recorded_calls},\"floorNs\":{floor_ns:.0}}}",
        ranges.len()
    );
}
