//! Every interpreter of the process (3.12+): `_PyRuntime.interpreters.head`
//! → `next`, newest first (CPython prepends; the main interpreter, id 0, is
//! last). The list is walked step by step once and cached; each sample's
//! snapshot (`snapshot.rs`) re-reads the head and each `next`/`id` pair in
//! its one system call, so a list that changed is noticed at no extra read.

use rustc_hash::{FxHashMap, FxHashSet};

use pyspy_process::{Memory, MemoryExt};

use crate::error::{Error, ReadContext};
use crate::objects::usize_at;
use crate::walker::StackWalker;
use crate::Offsets;

/// Most interpreters followed; a longer list is taken as corrupt (a pool of
/// sub-interpreters has a few dozen).
pub const MAX_INTERPRETERS: usize = 1024;

/// One `PyInterpreterState` of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterpreterRef {
    /// Remote address of the interpreter state.
    pub addr: usize,
    /// `PyInterpreterState.id` (0: the main interpreter).
    pub id: i64,
}

/// Where `next` and `id` of an interpreter are read together: the offset
/// of the first and the length of the range covering both (`id` follows
/// `next` in 3.12–3.15).
pub(crate) fn link_range(o: &Offsets) -> Option<(usize, usize)> {
    let id = o.interp_id?;
    let lo = o.interp_next.min(id);
    let len = o.interp_next.max(id) + 8 - lo;
    // Far apart (no known layout): not one small range.
    (len <= 64).then_some((lo, len))
}

/// `next` and `id` from the bytes of [`link_range`].
pub(crate) fn parse_link(o: &Offsets, lo: usize, bytes: &[u8]) -> (usize, i64) {
    let next = usize_at(bytes, o.interp_next - lo);
    let id = o.interp_id.map_or(0, |id| usize_at(bytes, id - lo) as i64);
    (next, id)
}

/// Walks the list whose head pointer is at `head_slot`: bounded by
/// [`MAX_INTERPRETERS`], refusing a cycle, failing on the first unreadable
/// link (the caller retries or reports; a partial list would hide threads).
pub fn read_interpreter_list<M: Memory>(
    mem: &M,
    o: &Offsets,
    head_slot: usize,
) -> Result<Vec<InterpreterRef>, Error> {
    let (lo, len) = link_range(o).ok_or(Error::Corrupt {
        what: "interpreter layout (no id)",
        addr: head_slot,
    })?;
    let mut addr = mem.read_usize(head_slot).what("interpreter list head")?;
    let mut out = Vec::new();
    let mut seen = FxHashSet::default();
    let mut buf = [0u8; 64];
    while addr != 0 {
        if out.len() >= MAX_INTERPRETERS {
            return Err(Error::Corrupt {
                what: "interpreter list (too long)",
                addr,
            });
        }
        if !seen.insert(addr) {
            return Err(Error::Corrupt {
                what: "interpreter list (cyclic)",
                addr,
            });
        }
        let bytes = &mut buf[..len];
        mem.read(addr.wrapping_add(lo), bytes)
            .what("interpreter state")?;
        let (next, id) = parse_link(o, lo, bytes);
        if id < 0 {
            return Err(Error::Corrupt {
                what: "interpreter id",
                addr,
            });
        }
        out.push(InterpreterRef { addr, id });
        addr = next;
    }
    Ok(out)
}

/// The walker's view of the interpreter list, once watched.
#[derive(Debug, Default)]
pub(crate) struct InterpreterWatch {
    /// `&_PyRuntime.interpreters.head`.
    pub(crate) head_slot: usize,
    /// The list as last read (newest first).
    pub(crate) list: Vec<InterpreterRef>,
}

/// Per-read GIL facts of every interpreter sampled.
#[derive(Debug, Default)]
pub(crate) struct GilHolders {
    /// The thread state holding each interpreter's GIL (0: none), in the
    /// order of the interpreters sampled.
    pub(crate) holders: Vec<usize>,
    /// Free-threaded builds: whether each interpreter's GIL was enabled
    /// (`None`: a build that always has one, or unread), in the same order.
    pub(crate) enabled: Vec<Option<bool>>,
    /// 3.12+: each interpreter's `ceval.gil` pointer (its own GIL, or the
    /// main one's), set once when it starts; by interpreter address.
    pub(crate) pointers: FxHashMap<usize, usize>,
}

impl<M: Memory> StackWalker<M> {
    /// Samples every interpreter of the process from now on (the list at
    /// `runtime`), not only the one passed to
    /// [`StackWalker::sample_threads`]. False (nothing changes) where the
    /// layout does not know interpreter ids (before 3.12).
    pub fn watch_interpreters(&mut self, runtime: usize) -> bool {
        let o = self.layout().offsets;
        let (Some(head), Some(_)) = (o.runtime_interpreters_head, link_range(&o)) else {
            return false;
        };
        self.interps = Some(InterpreterWatch {
            head_slot: runtime.wrapping_add(head),
            list: Vec::new(),
        });
        true
    }

    /// The interpreters of the last read, newest first: the watched list,
    /// or the one interpreter sampled (id 0) when not watching.
    pub fn interpreters(&self) -> &[InterpreterRef] {
        &self.sampled
    }

    /// Whether the thread state at `tstate` held its interpreter's GIL in
    /// the last read.
    pub fn holds_gil(&self, tstate: usize) -> bool {
        tstate != 0 && self.gils.holders.contains(&tstate)
    }

    /// Where the GIL of the interpreter at `interp` lies (3.12+: behind its
    /// `ceval.gil`, its own when isolated), once a read has found it: a
    /// thread blocked inside it waits for that GIL.
    pub fn gil_range(&self, interp: usize) -> Option<std::ops::Range<u64>> {
        let len = self.layout().offsets.gil_size? as u64;
        let gil = *self.gils.pointers.get(&interp)? as u64;
        Some(gil..gil.saturating_add(len))
    }

    /// The interpreters to sample now: the watched list read again step by
    /// step, or `interp` alone.
    pub(crate) fn refresh_interpreters(&mut self, interp: usize) -> Result<(), Error> {
        self.sampled.clear();
        match self.interps.as_mut() {
            Some(watch) => {
                let o = self.objects.layout.offsets;
                watch.list = read_interpreter_list(&self.objects.mem, &o, watch.head_slot)?;
                self.sampled.extend_from_slice(&watch.list);
            }
            None => self.sampled.push(InterpreterRef {
                addr: interp,
                id: 0,
            }),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyspy_process::FakeMemory;

    fn offsets() -> Offsets {
        Offsets {
            interp_next: 0,
            interp_id: Some(8),
            ..Offsets::default()
        }
    }

    /// Places an interpreter at `addr` with `next` and `id`.
    fn interp(mem: &mut FakeMemory, addr: usize, next: usize, id: i64) {
        let mut b = (next as u64).to_le_bytes().to_vec();
        b.extend_from_slice(&id.to_le_bytes());
        mem.place(addr, b);
    }

    fn head(mem: &mut FakeMemory, first: usize) -> usize {
        mem.place(0x1000, (first as u64).to_le_bytes().to_vec());
        0x1000
    }

    #[test]
    fn walks_newest_first_to_the_main_interpreter() {
        let mut mem = FakeMemory::new();
        let slot = head(&mut mem, 0x3000);
        interp(&mut mem, 0x3000, 0x2100, 2);
        interp(&mut mem, 0x2100, 0x2000, 1);
        interp(&mut mem, 0x2000, 0, 0);
        let list = read_interpreter_list(&mem, &offsets(), slot).unwrap();
        let got: Vec<(usize, i64)> = list.iter().map(|i| (i.addr, i.id)).collect();
        assert_eq!(got, [(0x3000, 2), (0x2100, 1), (0x2000, 0)]);
    }

    #[test]
    fn an_empty_list_is_empty() {
        let mut mem = FakeMemory::new();
        let slot = head(&mut mem, 0);
        assert!(read_interpreter_list(&mem, &offsets(), slot)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn refuses_a_cycle() {
        let mut mem = FakeMemory::new();
        let slot = head(&mut mem, 0x2000);
        interp(&mut mem, 0x2000, 0x2100, 0);
        interp(&mut mem, 0x2100, 0x2000, 1);
        let err = read_interpreter_list(&mem, &offsets(), slot).unwrap_err();
        assert!(err.to_string().contains("cyclic"), "{err}");
        // A self-loop too.
        interp(&mut mem, 0x2000, 0x2000, 0);
        let err = read_interpreter_list(&mem, &offsets(), slot).unwrap_err();
        assert!(err.to_string().contains("cyclic"), "{err}");
    }

    #[test]
    fn stops_at_the_bound() {
        let mut mem = FakeMemory::new();
        let n = MAX_INTERPRETERS + 1;
        let slot = head(&mut mem, 0x10_0000);
        for i in 0..n {
            let addr = 0x10_0000 + i * 0x100;
            let next = if i + 1 < n { addr + 0x100 } else { 0 };
            interp(&mut mem, addr, next, i as i64);
        }
        let err = read_interpreter_list(&mem, &offsets(), slot).unwrap_err();
        assert!(err.to_string().contains("too long"), "{err}");
        // One fewer fits.
        let last = 0x10_0000 + (n - 2) * 0x100;
        interp(&mut mem, last, 0, 7);
        let list = read_interpreter_list(&mem, &offsets(), slot).unwrap();
        assert_eq!(list.len(), MAX_INTERPRETERS);
        assert_eq!(list.last().unwrap().id, 7);
    }

    #[test]
    fn fails_on_an_unreadable_link_or_head() {
        let mut mem = FakeMemory::new();
        let slot = head(&mut mem, 0x2000);
        interp(&mut mem, 0x2000, 0x9000, 1); // 0x9000 is not mapped
        let err = read_interpreter_list(&mem, &offsets(), slot).unwrap_err();
        assert!(matches!(err, Error::Read { .. }), "{err}");
        let err = read_interpreter_list(&mem, &offsets(), 0x8000).unwrap_err();
        assert!(matches!(err, Error::Read { .. }), "{err}");
    }

    #[test]
    fn refuses_a_negative_id() {
        let mut mem = FakeMemory::new();
        let slot = head(&mut mem, 0x2000);
        interp(&mut mem, 0x2000, 0, -5);
        assert!(read_interpreter_list(&mem, &offsets(), slot).is_err());
    }

    #[test]
    fn no_list_without_ids() {
        let o = Offsets {
            interp_id: None,
            ..offsets()
        };
        assert!(link_range(&o).is_none());
        assert!(read_interpreter_list(&FakeMemory::new(), &o, 0x1000).is_err());
    }
}
