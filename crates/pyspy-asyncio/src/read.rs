//! Coroutine chains, read breadth-first: every task's current coroutine in
//! one batched read, then every awaited slot in one, then their types in
//! one, and again one level deeper. A chain costs three reads per level
//! for all tasks together, not per task.

use rustc_hash::FxHashSet;

use pyspy_cpython::{RawFrame, StackWalker};
use pyspy_process::Memory;

use crate::layout::{AsyncioLayout, AwaitSlot, OWNED_BY_GENERATOR};
use crate::reader::{ThreadInput, MAX_CHAIN};

/// Most value-stack slots a frame may hold (bounds the awaited slot).
const MAX_STACK_SLOTS: usize = 1 << 16;
/// Bytes of an object's header before its type: the reference count (and on
/// free-threaded builds the owner thread and shared count), which change
/// without the coroutine moving, so they are left out of the header kept
/// for checks.
pub(crate) fn header_skip(walker_ob_type: usize) -> usize {
    walker_ob_type
}

/// A suspended coroutine of a chain: its address and header (after
/// [`header_skip`]).
pub(crate) type Visited = (usize, Vec<u8>);

/// Bytes of a coroutine read per chain link: its header and embedded
/// frame up to the locals.
pub(crate) fn header_len(l: &AsyncioLayout) -> usize {
    l.o.gen_iframe + l.o.frame_localsplus
}

/// One chain being followed: its task's index and the coroutine at its end.
#[derive(Clone, Copy)]
struct Link {
    task: usize,
    gen: usize,
    gen_type: usize,
}

/// Reads the chains of `coros` (one coroutine per task, 0 for none) into
/// `frames` (outermost first, as read; the caller reverses). Returns the
/// number of chains cut short (unreadable or too deep). With `visited`,
/// each suspended coroutine read is added to its task's entry with its
/// header (all but the reference count), so a caller can later check in
/// one read that the chain is still where it was.
pub(crate) fn chains<M: Memory>(
    walker: &mut StackWalker<M>,
    l: &AsyncioLayout,
    coros: &[usize],
    threads: &[ThreadInput<'_>],
    frames: &mut [Vec<RawFrame>],
    mut visited: Option<&mut [Vec<Visited>]>,
) -> usize {
    let o = &l.o;
    let head_len = header_len(l);
    let skip = header_skip(walker.objects.layout.offsets.ob_type);
    let mut coro_types: FxHashSet<usize> = FxHashSet::default();
    let mut other_types: FxHashSet<usize> = FxHashSet::default();
    let mut cut = 0;
    let mut frontier: Vec<Link> = coros
        .iter()
        .enumerate()
        .filter(|(_, &c)| c != 0)
        .map(|(task, &gen)| Link {
            task,
            gen,
            gen_type: 0,
        })
        .collect();
    let mut buf = Vec::new();
    let mut ranges = Vec::new();
    for _ in 0..MAX_CHAIN {
        if frontier.is_empty() {
            return cut;
        }
        // 1. Every coroutine header and embedded frame.
        ranges.clear();
        ranges.extend(frontier.iter().map(|k| (k.gen, head_len)));
        buf.resize(ranges.len() * head_len, 0);
        if walker.objects.mem.read_ranges(&ranges, &mut buf).is_err() {
            // One unreadable: read them one by one and drop the bad ones.
            let before = frontier.len();
            let mut kept = Vec::with_capacity(before);
            let mut kept_buf = Vec::with_capacity(buf.len());
            let mut one = vec![0u8; head_len];
            for k in &frontier {
                if walker.objects.mem.read(k.gen, &mut one).is_ok() {
                    kept.push(*k);
                    kept_buf.extend_from_slice(&one);
                }
            }
            cut += before - kept.len();
            frontier = kept;
            buf = kept_buf;
        }
        // 2. Which are coroutines, their frames, and where they await.
        let mut slots: Vec<(Link, usize, Option<usize>)> = Vec::new();
        for (i, k) in frontier.iter().enumerate() {
            let h = &buf[i * head_len..(i + 1) * head_len];
            let ty = word(h, walker.objects.layout.offsets.ob_type);
            let is_coro = if k.gen_type != 0 {
                ty == k.gen_type
            } else if coro_types.contains(&ty) {
                true
            } else if other_types.contains(&ty) {
                false
            } else {
                let name = walker.objects.type_name(ty).ok();
                let ok = name.is_some_and(|n| &*n == "coroutine");
                if ok {
                    coro_types.insert(ty);
                } else {
                    other_types.insert(ty);
                }
                ok
            };
            if !is_coro {
                if k.gen_type == 0 {
                    cut += 1;
                }
                continue;
            }
            let state = h[o.gen_frame_state] as i8;
            let f = &h[o.gen_iframe..];
            let frame_addr = k.gen.wrapping_add(o.gen_iframe);
            let lo = &walker.objects.layout.offsets;
            let code = word(f, lo.frame_executable) & !7;
            let instr = word(f, lo.frame_instr_ptr);
            let owner = f.get(o.frame_owner).copied().unwrap_or(0);
            if state == l.states.executing {
                // Running: its frames are its thread's, down to this one.
                for t in threads {
                    if let Some(idx) = t.frames.iter().position(|fr| fr.addr == frame_addr) {
                        frames[k.task].extend(t.frames[..=idx].iter().rev().copied());
                        break;
                    }
                }
                continue;
            }
            let suspended = state == l.states.suspended
                || Some(state) == l.states.yield_from
                || Some(state) == l.states.yield_from_locked;
            if !(suspended || state == l.states.created) || owner != OWNED_BY_GENERATOR {
                continue; // finished or cleared: nothing left to show
            }
            if let Some(v) = visited.as_deref_mut() {
                v[k.task].push((k.gen, h[skip..].to_vec()));
            }
            match walker.line_of(code, instr) {
                Ok(Some(line)) => frames[k.task].push(RawFrame {
                    addr: frame_addr,
                    code,
                    line,
                }),
                _ => {
                    cut += 1;
                    continue;
                }
            }
            if !suspended {
                continue;
            }
            let base = frame_addr.wrapping_add(o.frame_localsplus);
            let slot = match l.await_slot {
                AwaitSlot::ResumeCheck(_) | AwaitSlot::Stacktop => {
                    if matches!(l.await_slot, AwaitSlot::Stacktop)
                        && Some(state) != l.states.yield_from
                    {
                        continue;
                    }
                    let top = i32_at(f, o.frame_stacktop.unwrap_or(0));
                    if top < 1 || top as usize > MAX_STACK_SLOTS {
                        continue;
                    }
                    base.wrapping_add((top as usize - 1) * 8)
                }
                AwaitSlot::StackPointer(k) => {
                    if state == l.states.suspended {
                        continue;
                    }
                    let sp = word(f, o.frame_stackpointer.unwrap_or(0));
                    let slot = sp.wrapping_sub(8 * k);
                    if slot < base || slot >= base.wrapping_add(8 * MAX_STACK_SLOTS) {
                        cut += 1;
                        continue;
                    }
                    slot
                }
            };
            let resume =
                matches!(l.await_slot, AwaitSlot::ResumeCheck(_)).then(|| instr.wrapping_add(2));
            slots.push((Link { gen_type: ty, ..*k }, slot, resume));
        }
        // 3. The awaited objects (and, 3.11/3.12, the next code unit).
        ranges.clear();
        for (_, slot, resume) in &slots {
            ranges.push((*slot, 8));
            ranges.push((resume.unwrap_or(*slot), 8));
        }
        buf.resize(ranges.len() * 8, 0);
        if walker.objects.mem.read_ranges(&ranges, &mut buf).is_err() {
            cut += slots.len();
            return cut;
        }
        let mut next = Vec::with_capacity(slots.len());
        for (i, (k, _, resume)) in slots.iter().enumerate() {
            let obj = word(&buf[i * 16..], 0) & !3;
            if let (Some(_), AwaitSlot::ResumeCheck(ops)) = (resume, l.await_slot) {
                let (op, arg) = (buf[i * 16 + 8], buf[i * 16 + 9]);
                if !ops.contains(&op) || arg < 2 {
                    continue;
                }
            }
            if obj != 0 {
                next.push(Link { gen: obj, ..*k });
            }
        }
        frontier = next;
    }
    cut + frontier.len()
}

fn word(b: &[u8], off: usize) -> usize {
    b.get(off..off + 8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap()) as usize)
        .unwrap_or(0)
}

fn i32_at(b: &[u8], off: usize) -> i32 {
    b.get(off..off + 4)
        .map(|w| i32::from_le_bytes(w.try_into().unwrap()))
        .unwrap_or(0)
}
