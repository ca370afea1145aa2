//! Fuzzing the task and coroutine reader with garbage task graphs: random
//! words, pointers into the same pages (cycles and self-references come
//! for free), dangling pointers. Nothing may panic, and every read ends.

use rustc_hash::FxHashMap;

use pyspy_cpython::{layout_for, RawFrame, StackWalker, Version};
use pyspy_process::FakeMemory;

use crate::graph;
use crate::layout::AsyncioLayout;
use crate::reader::{AsyncioSnapshot, ThreadInput};

const BASE: usize = 0x10_0000;
const SIZE: usize = 1 << 16;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn addr(&mut self) -> usize {
        (BASE + (self.next() as usize % SIZE)) & !7
    }
}

fn version(minor: u8) -> Version {
    Version {
        major: 3,
        minor,
        patch: 0,
        level: 0xf,
        serial: 0,
    }
}

fn put(mem: &mut [u8], at: usize, v: usize) {
    let off = at - BASE;
    if off + 8 <= mem.len() {
        mem[off..off + 8].copy_from_slice(&(v as u64).to_le_bytes());
    }
}

/// A garbage process and what the reader needs to read it.
pub(crate) struct Garbage {
    pub(crate) walker: StackWalker<FakeMemory>,
    pub(crate) layout: AsyncioLayout,
    pub(crate) task_type: usize,
    /// Task objects (typed `Task`, coroutine typed `coroutine`).
    pub(crate) tasks: Vec<usize>,
    /// Frames whose addresses are some of the tasks' coroutine frames.
    pub(crate) frames: Vec<RawFrame>,
}

/// One garbage process: tasks whose fields point anywhere in the page,
/// coroutines of a real "coroutine" type whose frames and stacks are noise.
pub(crate) fn garbage(minor: u8, seed: u64, tasks: usize) -> Garbage {
    let mut rng = Rng(seed | 1);
    let mut bytes = vec![0u8; SIZE + 4096];
    for w in bytes.chunks_exact_mut(8) {
        let v = if rng.next().is_multiple_of(2) {
            rng.addr() as u64
        } else {
            rng.next()
        };
        w.copy_from_slice(&v.to_le_bytes());
    }
    let mut mem = FakeMemory::new();
    // 3.13+ take their offsets from the target's own table; 3.12's stand in
    // for the object reader, with the frame fields the asyncio layout checks.
    let mut layout = layout_for(&mem, version(minor.min(12)), 0).expect("generated layout");
    let gen = match minor {
        11 => crate::generated::ASYNCIO_3_11,
        12 => crate::generated::ASYNCIO_3_12,
        13 => crate::generated::ASYNCIO_3_13,
        14 => crate::generated::ASYNCIO_3_14,
        _ => crate::generated::ASYNCIO_3_15,
    };
    layout.version = version(minor);
    layout.offsets.frame_localsplus = gen.frame_localsplus;
    layout.offsets.frame_owner = Some(gen.frame_owner);
    let mut l = AsyncioLayout::for_interpreter(&layout).expect("asyncio layout");
    l.lists = None;
    let o = &layout.offsets;
    // Two type objects: Task and coroutine, named by C strings.
    let (task_type, coro_type, name) = (BASE + 0x100, BASE + 0x400, BASE + 0x800);
    bytes[0x800..0x80a].copy_from_slice(b"coroutine\0");
    put(&mut bytes, coro_type + o.type_tp_name, name);
    put(&mut bytes, task_type + o.type_tp_name, name + 4);
    put(&mut bytes, task_type + l.o.type_base, 0);
    put(&mut bytes, coro_type + l.o.type_base, 0);
    let mut candidates = Vec::new();
    let mut frames = Vec::new();
    for _ in 0..tasks {
        let t = rng.addr();
        if t < BASE + 0x1000 {
            continue;
        }
        put(&mut bytes, t + o.ob_type, task_type);
        let coro = rng.addr();
        if coro >= BASE + 0x1000 {
            put(&mut bytes, coro + o.ob_type, coro_type);
            put(&mut bytes, t + l.o.task_coro, coro);
            if rng.next().is_multiple_of(4) {
                frames.push(RawFrame {
                    addr: coro + l.o.gen_iframe,
                    code: rng.addr(),
                    line: 1,
                });
            }
        }
        candidates.push(t);
    }
    mem.place(BASE, bytes);
    Garbage {
        walker: StackWalker::new(mem, layout),
        layout: l,
        task_type,
        tasks: candidates,
        frames,
    }
}

fn round(minor: u8, seed: u64, tasks: usize) -> AsyncioSnapshot {
    let Garbage {
        mut walker,
        layout: l,
        task_type,
        tasks: candidates,
        ..
    } = garbage(minor, seed, tasks);
    let candidates: Vec<(usize, Option<u64>)> = candidates.into_iter().map(|t| (t, None)).collect();
    let frames = Vec::new();
    let threads = [ThreadInput {
        tstate: BASE + 0x40,
        thread_id: 1,
        frames: &frames,
    }];
    let mut snap = AsyncioSnapshot::default();
    let loops = FxHashMap::default();
    let current = FxHashMap::default();
    graph::build(
        &mut graph::GraphCache::default(),
        &mut walker,
        &l,
        task_type,
        &candidates,
        &loops,
        &current,
        &threads,
        &mut snap,
    );
    snap
}

#[test]
fn garbage_task_graphs_never_panic() {
    for minor in [11, 12, 13, 14, 15] {
        for seed in 1..40u64 {
            let snap = round(minor, seed * 7919 + minor as u64, 200);
            assert!(snap.tasks.len() <= 200);
            for t in &snap.tasks {
                assert!(t.frames.len() <= crate::reader::MAX_CHAIN * 4096);
                assert!(t.awaiting.iter().all(|&a| a < snap.tasks.len()));
            }
        }
    }
}

#[test]
fn many_tasks_stay_bounded() {
    let started = std::time::Instant::now();
    let snap = round(12, 42, 20_000);
    assert!(snap.tasks.len() <= 20_000);
    assert!(started.elapsed().as_secs() < 60);
}

#[test]
fn old_versions_are_refused_with_a_reason() {
    let mem = FakeMemory::new();
    let layout = layout_for(&mem, version(10), 0).unwrap();
    let err = AsyncioLayout::for_interpreter(&layout).unwrap_err();
    assert_eq!(err.code(), "EUNSUPPORTED");
    assert!(err.to_string().contains("3.11 to 3.15"), "{err}");
}

#[test]
fn free_threaded_layouts_exist_for_3_13t_only() {
    let mem = FakeMemory::new();
    for (minor, readable) in [(13, true), (14, false), (15, false)] {
        // Only the version and the flavor are looked at before the refusal.
        let mut layout = layout_for(&mem, version(12), 0).unwrap();
        layout.version = version(minor);
        layout.flavor.free_threaded = true;
        match AsyncioLayout::for_interpreter(&layout) {
            Ok(l) => {
                assert!(readable, "3.{minor}t");
                // Every object field sits 16 bytes further than on the GIL build.
                let gil = crate::generated::ASYNCIO_3_13;
                assert_eq!(l.o.task_size, gil.task_size + 16);
                assert_eq!(l.o.task_coro, gil.task_coro + 16);
            }
            Err(e) => {
                assert!(!readable, "3.{minor}t: {e}");
                assert_eq!(e.code(), "EUNSUPPORTED");
                assert!(e.to_string().contains("free-threaded"), "{e}");
            }
        }
    }
}
