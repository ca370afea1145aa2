//! Fuzzing the stack reader with fake process memory: (a) random memory
//! (words biased towards pointers into the placed ranges, so that reads go
//! somewhere) and (b) mutated snapshots of live interpreters
//! (`tests/corpus/*.snap`, captured by `capture.rs`). Every input goes
//! through one full read (`exercise.rs`): thread states, GIL holder, thread
//! names, data-stack chunks, frames, the torn-read check, code objects,
//! locals, twice with memory changed in between (cached code objects).
//!
//! It must never panic, never take long (a watchdog aborts after
//! [`HANG_SECS`]), and never allocate more than [`ALLOC_LIMIT`] at once (a
//! size read from the target used before it was checked). Inputs that give
//! new step outcomes join the pool of inputs to mutate further.
//!
//! Deterministic: input `i` depends only on the seed and `i`. The default
//! run is bounded for CI (`PYSPY_FUZZ_ITERS`, default [`CI_ITERS`]); run
//! longer locally with, e.g.,
//!
//! ```text
//! PYSPY_FUZZ_SECS=600 cargo test --release -p pyspy-cpython --test walker_fuzz -- --nocapture
//! ```
//!
//! (`PYSPY_FUZZ_SEED` picks another sequence.) A failing input is written
//! to `target/walker-fuzz-crashes/` as a snapshot file, which
//! `PYSPY_FUZZ_REPLAY=path` reads back alone.

mod bounds;
mod capture;
mod exercise;
mod mutate;
mod snapshot;
mod speculation;

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use pyspy_cpython::line_for_offset;
use pyspy_process::{FakeMemory, Memory, ReadError};

use exercise::{read_all, Trace};
use mutate::Rng;
use snapshot::{load_corpus, Snapshot};

/// Inputs of a default (CI) run: about 30 s in a debug build on a loaded
/// 2-core machine.
const CI_ITERS: u64 = 5_000;
/// One input taking longer than this is a hang.
const HANG_SECS: u64 = 20;
/// Largest single allocation allowed while reading one input. The reader's
/// own largest is a 4 MiB data-stack chunk.
const ALLOC_LIMIT: usize = 32 << 20;
/// Most memory held at once while reading one input (its two fake address
/// spaces, of well under 1 MiB each, included).
const PEAK_LIMIT: usize = 64 << 20;
/// Most inputs kept in the pool (each is a whole snapshot).
const POOL: usize = 48;

// --- allocation watch --------------------------------------------------------

/// Forwards to the system allocator. On a thread that [`watch`]es, it
/// remembers the largest single request and the peak of bytes live since
/// the watch began, and refuses absurd requests (which would abort anyway)
/// with a message naming the input first.
struct Watch;

/// Per-thread watch state (const-initialised: no allocation on access).
struct WatchState {
    on: Cell<bool>,
    largest: Cell<usize>,
    live: Cell<isize>,
    peak: Cell<isize>,
}

thread_local! {
    static W: WatchState = const {
        WatchState {
            on: Cell::new(false),
            largest: Cell::new(0),
            live: Cell::new(0),
            peak: Cell::new(0),
        }
    };
}

/// Input being run (for the abort message), `u64::MAX` when none.
static CURRENT: AtomicU64 = AtomicU64::new(u64::MAX);
static STARTED_MS: AtomicU64 = AtomicU64::new(0);

fn note_alloc(size: usize) {
    let _ = W.try_with(|w| {
        if !w.on.get() {
            return;
        }
        if size > 1 << 32 {
            abort_with("allocation over 4 GiB (a size from the target used unchecked)");
        }
        w.largest.set(w.largest.get().max(size));
        let live = w.live.get() + size as isize;
        w.live.set(live);
        w.peak.set(w.peak.get().max(live));
    });
}

fn note_free(size: usize) {
    let _ = W.try_with(|w| {
        if w.on.get() {
            w.live.set(w.live.get() - size as isize);
        }
    });
}

/// Starts (or stops, returning the largest request and the peak of live
/// bytes) watching this thread's allocations.
fn watch(on: bool) -> (usize, usize) {
    W.with(|w| {
        let out = (w.largest.get(), w.peak.get().max(0) as usize);
        w.on.set(on);
        w.largest.set(0);
        w.live.set(0);
        w.peak.set(0);
        out
    })
}

unsafe impl GlobalAlloc for Watch {
    unsafe fn alloc(&self, layout: AllocLayout) -> *mut u8 {
        note_alloc(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: AllocLayout) {
        note_free(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: AllocLayout) -> *mut u8 {
        note_alloc(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: AllocLayout, new_size: usize) -> *mut u8 {
        note_free(layout.size());
        note_alloc(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Watch = Watch;

/// Writes `why` and the input number to stderr without allocating, then
/// aborts.
fn abort_with(why: &str) -> ! {
    let mut buf = [0u8; 160];
    let mut n = 0;
    for part in ["walker_fuzz: ".as_bytes(), why.as_bytes(), b" at input "] {
        let k = part.len().min(buf.len() - n);
        buf[n..n + k].copy_from_slice(&part[..k]);
        n += k;
    }
    let mut digits = [0u8; 20];
    let mut v = CURRENT.load(Ordering::Relaxed);
    let mut d = 0;
    loop {
        digits[d] = b'0' + (v % 10) as u8;
        d += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for i in (0..d).rev() {
        if n < buf.len() - 1 {
            buf[n] = digits[i];
            n += 1;
        }
    }
    buf[n] = b'\n';
    n += 1;
    // SAFETY: writing a valid buffer to stderr, then aborting.
    unsafe {
        libc_write(2, buf.as_ptr(), n);
    }
    std::process::abort();
}

extern "C" {
    #[link_name = "write"]
    fn libc_write(fd: i32, buf: *const u8, count: usize) -> isize;
}

fn now_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// Aborts the test binary when one input runs longer than [`HANG_SECS`].
fn start_watchdog() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        now_ms();
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_millis(500));
            let started = STARTED_MS.load(Ordering::Relaxed);
            if started != 0 && now_ms().saturating_sub(started) > HANG_SECS * 1000 {
                abort_with("hang: one input ran longer than the limit");
            }
        });
    });
}

/// Keeps panics of the reader quiet (they are collected and reported).
fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !W.with(|w| w.on.get()) {
                return default(info);
            }
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let text = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{text}{at}")));
        }));
    });
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

// --- memory shared with the test, so it can change between passes -------------

#[derive(Clone)]
struct Shared(Rc<RefCell<FakeMemory>>);

impl Memory for Shared {
    fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), ReadError> {
        self.0.borrow().read(addr, buf)
    }
}

// --- one input -----------------------------------------------------------------

/// What went wrong with an input.
#[derive(Debug)]
struct Finding {
    input: u64,
    what: String,
    /// Memory of the first pass, and of the second.
    snapshots: [Snapshot; 2],
}

#[derive(Default)]
struct Stats {
    executions: u64,
    from_random: u64,
    from_corpus: u64,
    steps_ok: u64,
    steps_err: u64,
    frames: u64,
    locals: u64,
    largest_alloc: usize,
    peak_live: usize,
    slowest: Duration,
    pool_added: u64,
    /// How often each step gave each answer.
    outcomes: std::collections::BTreeMap<(&'static str, String), u64>,
}

/// Runs one input: reads it twice (memory changed a little in between),
/// under the panic, time and allocation watch. Returns the trace, or the
/// finding.
fn run_input(
    input: u64,
    snap: &Snapshot,
    second: &Snapshot,
    stats: &mut Stats,
) -> Result<Trace, String> {
    let mem = Shared(Rc::new(RefCell::new(snap.memory())));
    let changer = mem.clone();
    CURRENT.store(input, Ordering::Relaxed);
    STARTED_MS.store(now_ms(), Ordering::Relaxed);
    watch(true);
    let t = Instant::now();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        read_all(mem, snap.version, snap.runtime, snap.interp, 2, |_| {
            *changer.0.borrow_mut() = second.memory();
        })
    }));
    let (largest, peak) = watch(false);
    STARTED_MS.store(0, Ordering::Relaxed);
    let elapsed = t.elapsed();
    stats.slowest = stats.slowest.max(elapsed);
    stats.largest_alloc = stats.largest_alloc.max(largest);
    stats.peak_live = stats.peak_live.max(peak);
    stats.executions += 1;
    let trace = match result {
        Ok(trace) => trace,
        Err(_) => {
            let why = LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_default();
            return Err(format!("panic: {why}"));
        }
    };
    if largest > ALLOC_LIMIT {
        return Err(format!(
            "allocated {largest} bytes at once (limit {ALLOC_LIMIT})"
        ));
    }
    if peak > PEAK_LIMIT {
        return Err(format!("held {peak} bytes at once (limit {PEAK_LIMIT})"));
    }
    if elapsed > Duration::from_secs(HANG_SECS / 4) {
        return Err(format!("took {elapsed:?}"));
    }
    for (step, o) in &trace.steps {
        *stats.outcomes.entry((step, o.clone())).or_default() += 1;
        if o == "ok" {
            stats.steps_ok += 1;
        } else {
            stats.steps_err += 1;
        }
    }
    stats.frames += trace.frames as u64;
    stats.locals += trace.locals as u64;
    Ok(trace)
}

/// Features of a trace: each (step, outcome) pair, and each step's outcome
/// next to the one before it (so that reaching a step differently counts).
fn features(trace: &Trace) -> Vec<u64> {
    let mut out = Vec::with_capacity(trace.steps.len() * 2 + 3);
    let h = |x: &dyn Fn(&mut std::collections::hash_map::DefaultHasher)| {
        let mut s = std::collections::hash_map::DefaultHasher::new();
        x(&mut s);
        s.finish()
    };
    let mut prev: Option<&(&str, String)> = None;
    for step in &trace.steps {
        out.push(h(&|s| step.hash(s)));
        out.push(h(&|s| (prev, step).hash(s)));
        prev = Some(step);
    }
    let bucket = |n: usize| usize::BITS - n.leading_zeros();
    out.push(h(&|s| ("threads", bucket(trace.threads)).hash(s)));
    out.push(h(&|s| ("frames", bucket(trace.frames)).hash(s)));
    out.push(h(&|s| ("locals", bucket(trace.locals)).hash(s)));
    out
}

struct Budget {
    iters: u64,
    deadline: Option<Instant>,
}

impl Budget {
    fn from_env() -> Budget {
        let secs = std::env::var("PYSPY_FUZZ_SECS")
            .ok()
            .and_then(|s| s.parse::<u64>().ok());
        let iters = std::env::var("PYSPY_FUZZ_ITERS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(if secs.is_some() { u64::MAX } else { CI_ITERS });
        Budget {
            iters,
            deadline: secs.map(|s| Instant::now() + Duration::from_secs(s)),
        }
    }
    fn more(&self, i: u64) -> bool {
        i < self.iters && self.deadline.is_none_or(|d| Instant::now() < d)
    }
}

fn save_finding(f: &Finding) -> String {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/walker-fuzz-crashes");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("input-{}.snap", f.input));
    let _ = std::fs::write(&path, f.snapshots[0].encode());
    let _ = std::fs::write(path.with_extension("second.snap"), f.snapshots[1].encode());
    path.display().to_string()
}

#[test]
fn corpus_replays_cleanly() {
    let corpus = load_corpus();
    assert!(!corpus.is_empty(), "no snapshots in tests/corpus");
    for snap in &corpus {
        let trace = read_all(
            snap.memory(),
            snap.version,
            snap.runtime,
            snap.interp,
            2,
            |_| {},
        );
        let failed: Vec<_> = trace.steps.iter().filter(|s| s.1 != "ok").collect();
        assert!(failed.is_empty(), "{}: {failed:?}", snap.name);
        // Four threads (main, deep, gen-runner, the non-ASCII one), the
        // deep one over 300 frames, locals of the many-locals frame.
        assert_eq!(trace.threads, 8, "{}: two passes of 4 threads", snap.name);
        assert!(
            trace.frames > 2 * 300,
            "{}: {} frames",
            snap.name,
            trace.frames
        );
        assert!(
            trace.locals > 2 * 15,
            "{}: {} locals",
            snap.name,
            trace.locals
        );
    }
}

/// Inputs that once broke the reader (`tests/regressions/NAME.snap`, with
/// `NAME.second.snap` as the memory of the second pass), replayed whole.
#[test]
fn regressions_replay_cleanly() {
    quiet_panics();
    start_watchdog();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let read = |p: &std::path::Path| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        Snapshot::decode(&name, &std::fs::read(p).unwrap()).unwrap()
    };
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".snap") || name.ends_with(".second.snap") {
            continue;
        }
        let second = path.with_extension("second.snap");
        let (snap, second) = (read(&path), read(&second));
        let mut stats = Stats::default();
        let result = run_input(count, &snap, &second, &mut stats);
        CURRENT.store(u64::MAX, Ordering::Relaxed);
        assert!(result.is_ok(), "{name}: {:?}", result.err());
        count += 1;
    }
    assert!(count >= 2, "regression inputs in {}", dir.display());
}

#[test]
fn fuzz_stack_reader() {
    quiet_panics();
    start_watchdog();
    let corpus = load_corpus();
    assert!(!corpus.is_empty(), "no snapshots in tests/corpus");
    let seed: u64 = std::env::var("PYSPY_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0ff0_22aa);

    if let Ok(path) = std::env::var("PYSPY_FUZZ_REPLAY") {
        let read = |p: &str| Snapshot::decode(p, &std::fs::read(p).unwrap()).unwrap();
        let snap = read(&path);
        let second_path = std::path::Path::new(&path).with_extension("second.snap");
        let second = match second_path.exists() {
            true => read(&second_path.display().to_string()),
            false => snap.clone(),
        };
        let mut stats = Stats::default();
        let r = run_input(0, &snap, &second, &mut stats);
        CURRENT.store(u64::MAX, Ordering::Relaxed);
        println!("{path}: {:?}", r.map(|t| t.steps));
        return;
    }

    let budget = Budget::from_env();
    let mut stats = Stats::default();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut pool: Vec<Snapshot> = corpus.clone();
    let mut findings: Vec<Finding> = Vec::new();
    let started = Instant::now();
    let mut i = 0u64;
    while budget.more(i) {
        let mut rng = Rng::new(seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        // Every tenth input is random memory; the rest mutate the pool.
        let input = if i % 10 == 9 {
            stats.from_random += 1;
            let template = &corpus[rng.below(corpus.len())];
            mutate::random_memory(template, &mut rng)
        } else {
            stats.from_corpus += 1;
            let mut s = pool[rng.below(pool.len())].clone();
            let n = 1 + rng.below(8);
            mutate::mutate(&mut s, &mut rng, n);
            s
        };
        // Line tables alone, too: cheap, and every branch of the decoder.
        let table = mutate::random_bytes(&mut rng, 64);
        let _ = line_for_offset(
            &table,
            rng.next() as i32,
            rng.next() as i64 >> rng.below(64),
        );

        // The second pass sees a little of memory changed.
        let mut second = input.clone();
        let n = 1 + rng.below(2);
        mutate::mutate(&mut second, &mut rng, n);

        match run_input(i, &input, &second, &mut stats) {
            Ok(trace) => {
                let new = features(&trace)
                    .into_iter()
                    .filter(|f| seen.insert(*f))
                    .count();
                if new > 0 && i >= corpus.len() as u64 {
                    stats.pool_added += 1;
                    if pool.len() < POOL {
                        pool.push(input);
                    } else {
                        // Keep the captured seeds; replace a mutant.
                        let k = corpus.len() + rng.below(POOL - corpus.len());
                        pool[k] = input;
                    }
                }
            }
            Err(what) => {
                findings.push(Finding {
                    input: i,
                    what,
                    snapshots: [input, second],
                });
                if findings.len() >= 20 {
                    break;
                }
            }
        }
        i += 1;
    }
    CURRENT.store(u64::MAX, Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "walker_fuzz: {} executions ({} mutated snapshots, {} random memory) in {:.1}s ({:.0}/s); \
         {} step outcomes ok, {} errors; {} frames, {} locals read; {} distinct features, {} inputs \
         added to the pool; largest allocation {} bytes, peak held {} bytes; slowest input {:?}; {} findings",
        stats.executions,
        stats.from_corpus,
        stats.from_random,
        secs,
        stats.executions as f64 / secs.max(1e-9),
        stats.steps_ok,
        stats.steps_err,
        stats.frames,
        stats.locals,
        seen.len(),
        stats.pool_added,
        stats.largest_alloc,
        stats.peak_live,
        stats.slowest,
        findings.len()
    );
    if std::env::var_os("PYSPY_FUZZ_VERBOSE").is_some() {
        for ((step, o), n) in &stats.outcomes {
            println!("  {step:16} {o:50} {n}");
        }
    }
    let report: Vec<String> = findings
        .iter()
        .map(|f| {
            format!(
                "input {}: {} (saved as {})",
                f.input,
                f.what,
                save_finding(f)
            )
        })
        .collect();
    assert!(
        report.is_empty(),
        "the reader failed on fuzzed memory:\n{}",
        report.join("\n")
    );
}
