//! Which Python frames each C-level call of the evaluation loop runs, and
//! where on the native stack that call is.
//!
//! Since 3.11 one `_PyEval_EvalFrameDefault` call runs a Python function
//! and every pure-Python function it calls, so one native evaluation frame
//! stands for several Python frames. The frame chain marks where each C
//! call began: 3.11 sets `is_entry` on the first frame a call ran; 3.12+
//! link an entry frame owned by the C stack (`FRAME_OWNED_BY_CSTACK`, or
//! `FRAME_OWNED_BY_INTERPRETER` on 3.14+) below it. Before 3.11 every
//! Python frame had its own C call.
//!
//! Each group also gets an *anchor* when one is known: an address inside
//! the native stack frame of the C call that runs it. On 3.12+ that is the
//! entry frame itself, a local variable of `_PyEval_EvalFrameDefault`; on
//! 3.11 the call's `_PyCFrame`, also a local, found through
//! `tstate->cframe` and each `cframe->previous`. The merge matches anchors
//! against the unwound stack, which needs no symbol for the evaluation
//! loop (stripped builds split it into pieces with no exported name).

use pyspy_cpython::{Layout, RawFrame, ThreadState};
use pyspy_process::Memory;

use crate::blocks::Blocks;

/// Longest frame chain followed.
const MAX_CHAIN: usize = pyspy_cpython::MAX_FRAMES * 2;

/// The Python frames one C-level evaluation call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Group {
    /// How many of the thread's raw frames (consecutive, innermost first).
    pub(crate) len: usize,
    /// An address inside that call's native stack frame, when known.
    pub(crate) anchor: Option<u64>,
}

/// How to find the C-call boundaries in one interpreter's frame chain.
#[derive(Debug, Clone)]
pub(crate) struct FrameGroups {
    previous: usize,
    /// Offset and values of the owner byte that mark entry frames (3.12+).
    owner: Option<(usize, [Option<u8>; 2])>,
    /// Offset of `is_entry` (3.11).
    is_entry: Option<usize>,
    /// 3.11: `tstate->cframe`, `cframe->previous`, and the thread state's
    /// size (its root cframe lies inside it).
    cframes: Option<(usize, usize, usize)>,
    /// Bytes read per frame.
    span: usize,
    /// One Python frame per C call (before 3.11).
    one_per_call: bool,
    scratch: Vec<u8>,
}

impl FrameGroups {
    pub(crate) fn new(layout: &Layout) -> FrameGroups {
        let o = &layout.offsets;
        let v = layout.version;
        let markers = [layout.flavor.owner_cstack, layout.flavor.owner_interpreter];
        let owner = o
            .frame_owner
            .filter(|_| markers.iter().any(Option::is_some))
            .map(|off| (off, markers));
        let is_entry = o.frame_is_entry;
        let cframes = match (is_entry, o.tstate_cframe, o.cframe_current_frame) {
            // `_PyCFrame { ...; current_frame; previous; }` (3.11).
            (Some(_), Some(c), Some(cur)) => Some((c, cur + 8, o.tstate_size)),
            _ => None,
        };
        let span = [
            Some(o.frame_previous + 8),
            owner.map(|(off, _)| off + 1),
            is_entry.map(|off| off + 1),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(8);
        FrameGroups {
            previous: o.frame_previous,
            owner,
            is_entry,
            cframes,
            span,
            one_per_call: (v.major, v.minor) < (3, 11),
            scratch: vec![0u8; span],
        }
    }

    /// Splits `raw` (a thread's Python frames, innermost first, as the
    /// walker read them from the chain at `thread.top_frame`) into the
    /// groups each C-level evaluation call runs, innermost first. A group
    /// can be empty (a call caught before its first frame or after its
    /// last; 3.14's base frame closes an empty last group). `Err(addr)`
    /// when the chain cannot be read or does not hold `raw`.
    pub(crate) fn split<M: Memory + ?Sized>(
        &mut self,
        mem: &M,
        blocks: &mut Blocks,
        thread: &ThreadState,
        raw: &[RawFrame],
        out: &mut Vec<Group>,
    ) -> Result<(), usize> {
        out.clear();
        let group = |len, anchor| Group { len, anchor };
        if self.one_per_call || (self.owner.is_none() && self.is_entry.is_none()) {
            out.extend(std::iter::repeat_n(group(1, None), raw.len()));
            return Ok(());
        }
        let buf = &mut self.scratch[..self.span];
        let (mut addr, mut next, mut current) = (thread.top_frame, 0usize, 0usize);
        for _ in 0..MAX_CHAIN {
            if addr == 0 {
                break;
            }
            if !blocks.read(mem, addr, buf) {
                return Err(addr);
            }
            let marker = self
                .owner
                .is_some_and(|(off, values)| values.contains(&Some(buf[off])));
            if marker {
                out.push(group(current, Some(addr as u64)));
                current = 0;
            } else {
                if raw.get(next).is_some_and(|f| f.addr == addr) {
                    current += 1;
                    next += 1;
                }
                if self.is_entry.is_some_and(|off| buf[off] != 0) {
                    out.push(group(current, None));
                    current = 0;
                }
            }
            let p = self.previous;
            addr = usize::from_le_bytes(buf[p..p + 8].try_into().expect("8 bytes"));
        }
        if current > 0 {
            out.push(group(current, None));
        }
        if next != raw.len() {
            return Err(raw.get(next).map_or(addr, |f| f.addr));
        }
        if let Some((tstate_cframe, cframe_previous, tstate_size)) = self.cframes {
            anchor_cframes(
                mem,
                blocks,
                thread,
                tstate_cframe,
                cframe_previous,
                tstate_size,
                out,
            );
        }
        Ok(())
    }
}

/// 3.11: gives each group the address of its call's `_PyCFrame`, when the
/// cframe chain has exactly one cframe per group (it does not while a call
/// is being set up or torn down; then the merge goes by symbol names).
fn anchor_cframes<M: Memory + ?Sized>(
    mem: &M,
    blocks: &mut Blocks,
    thread: &ThreadState,
    tstate_cframe: usize,
    cframe_previous: usize,
    tstate_size: usize,
    groups: &mut [Group],
) {
    let root = thread.addr as u64..(thread.addr as u64).saturating_add(tstate_size as u64);
    let Some(mut cframe) = blocks.read_u64(mem, (thread.addr + tstate_cframe) as u64) else {
        return;
    };
    let mut anchors = Vec::with_capacity(groups.len());
    while cframe != 0 && !root.contains(&cframe) {
        if anchors.len() > groups.len() {
            return;
        }
        anchors.push(cframe);
        match blocks.read_u64(mem, cframe.wrapping_add(cframe_previous as u64)) {
            Some(p) => cframe = p,
            None => return,
        }
    }
    if anchors.len() == groups.len() {
        for (g, a) in groups.iter_mut().zip(anchors) {
            g.anchor = Some(a);
        }
    }
}
