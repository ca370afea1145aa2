//! The interpreter's threads: the thread-state list, who holds the GIL,
//! and thread names from the `threading` module's registry.

use std::collections::HashMap;

use pyspy_process::{Memory, MemoryExt};

use crate::error::{Error, ReadContext};
use crate::gil_state::{switch_number_offset, GilRead};
use crate::objects::usize_at;
use crate::walker::StackWalker;

/// Most thread states followed in one interpreter.
pub const MAX_THREADS: usize = 4096;
/// Most attributes of a `threading.Thread` searched for its name (a real
/// one has a few dozen).
const MAX_THREAD_ATTRS: usize = 1024;

/// One `PyThreadState`, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadState {
    /// Remote address of the thread state.
    pub addr: usize,
    /// `thread_id` (pthread_t; `threading.get_ident()`).
    pub thread_id: u64,
    /// `native_thread_id` (the OS tid), 0 when unknown. Before 3.11, where
    /// the thread state has no such field, the tid the C library keeps in
    /// the thread's descriptor (`thread_id` is a `pthread_t`, a pointer to
    /// it), when [`crate::Layout::pthread_tid`] is known.
    pub native_thread_id: u64,
    /// Innermost frame, 0 for none.
    pub top_frame: usize,
    /// Where the pointer to the innermost frame lives (for re-checking).
    pub top_slot: usize,
    /// The newest data-stack chunk (where its frames live), 0 for none.
    pub datastack_chunk: usize,
    /// The top of the used part of that chunk (`datastack_top`).
    pub datastack_top: usize,
    /// Remote address of its interpreter (`PyThreadState.interp`).
    pub interp: usize,
    /// Its interpreter's id (0: the main interpreter, or not known).
    pub interpreter_id: i64,
    /// Whether its OS thread uses this thread state now (3.12+:
    /// `_status.bound_gilstate`; always true before). A thread that runs
    /// code in another interpreter keeps its old thread state, not bound.
    pub bound: bool,
    /// Whether the thread was attached to its interpreter (3.12+:
    /// `_status.active`), running Python or about to; `None` where the
    /// layout has no such bit or the status word is implausible.
    pub attached: Option<bool>,
}

/// Whether a `_status` word looks like one: a listed thread state has been
/// initialized (bit 0), and at most the 9 flag bits of 3.12–3.15 are used
/// (the rest is padding, always 0).
pub(crate) fn plausible_status(word: u32) -> bool {
    word & 1 == 1 && word >> 9 == 0
}

impl<M: Memory> StackWalker<M> {
    /// Every thread state of the interpreter at `interp`, newest first.
    pub fn thread_states(&mut self, interp: usize) -> Result<Vec<ThreadState>, Error> {
        let o = self.layout().offsets;
        let mut buf = vec![0u8; self.tstate_len()];
        let mut addr = self
            .objects
            .mem
            .read_usize(interp.wrapping_add(o.interp_threads_head))
            .what("thread list head")?;
        let mut out = Vec::new();
        while addr != 0 {
            if out.len() >= MAX_THREADS {
                return Err(Error::Corrupt {
                    what: "thread list (too long or cyclic)",
                    addr,
                });
            }
            self.objects.mem.read(addr, &mut buf).what("thread state")?;
            out.push(self.parse_tstate(addr, &buf)?);
            addr = usize_at(&buf, o.tstate_next);
        }
        if o.tstate_native_thread_id.is_none() {
            if let Some(off) = self.layout().pthread_tid {
                self.tids_from_pthreads(off, &mut out);
            }
        }
        Ok(out)
    }

    /// Bytes of a thread state read: up to its last field used.
    pub(crate) fn tstate_len(&self) -> usize {
        let o = self.layout().offsets;
        [
            o.tstate_next,
            o.tstate_interp,
            o.tstate_status.unwrap_or(0),
            o.tstate_thread_id,
            o.tstate_native_thread_id.unwrap_or(0),
            o.tstate_frame.unwrap_or(0),
            o.tstate_current_frame.unwrap_or(0),
            o.tstate_cframe.unwrap_or(0),
            // `datastack_top` follows `datastack_chunk` in 3.11–3.15.
            o.tstate_datastack_chunk.map_or(0, |c| c + 8),
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
            + 8
    }

    /// A thread state from its bytes (`tstate_len` of them, read at `addr`).
    pub(crate) fn parse_tstate(&mut self, addr: usize, buf: &[u8]) -> Result<ThreadState, Error> {
        let o = self.layout().offsets;
        let (top_frame, top_slot) = self.top_frame(addr, buf)?;
        let chunk = o.tstate_datastack_chunk;
        let status = o
            .tstate_status
            .map(|off| u32::from_le_bytes(buf[off..off + 4].try_into().unwrap()));
        Ok(ThreadState {
            addr,
            thread_id: c_ulong_at(buf, o.tstate_thread_id),
            native_thread_id: o
                .tstate_native_thread_id
                .map_or(0, |off| c_ulong_at(buf, off)),
            top_frame,
            top_slot,
            datastack_chunk: chunk.map_or(0, |off| usize_at(buf, off)),
            datastack_top: chunk.map_or(0, |off| usize_at(buf, off + 8)),
            interp: usize_at(buf, o.tstate_interp),
            interpreter_id: 0,
            bound: match (status, self.layout().flavor.bound_gilstate_bit) {
                (Some(word), Some(bit)) => word >> bit & 1 == 1,
                _ => true,
            },
            attached: match (status, self.layout().flavor.active_bit) {
                (Some(word), Some(bit)) => plausible_status(word).then_some(word >> bit & 1 == 1),
                _ => None,
            },
        })
    }

    /// Fills `native_thread_id` from the tid the C library stores at `off`
    /// in each thread's descriptor (one batched read; an unreadable or
    /// implausible one stays 0).
    pub(crate) fn tids_from_pthreads(&self, off: usize, states: &mut [ThreadState]) {
        let mut tids = vec![[0u8; 4]; states.len()];
        let mut reads: Vec<(usize, &mut [u8])> = states
            .iter()
            .zip(tids.iter_mut())
            .map(|(t, buf)| ((t.thread_id as usize).wrapping_add(off), &mut buf[..]))
            .collect();
        if self.objects.mem.read_many(&mut reads).is_err() {
            // One thread ended and freed its descriptor: read one by one.
            for (t, buf) in reads.iter_mut() {
                if self.objects.mem.read(*t, buf).is_err() {
                    buf.fill(0);
                }
            }
        }
        drop(reads);
        for (t, raw) in states.iter_mut().zip(tids) {
            let tid = i32::from_le_bytes(raw);
            t.native_thread_id = if tid > 0 { tid as u64 } else { 0 };
        }
    }

    /// The thread state that holds the GIL, or 0 when none does.
    pub fn gil_holder(&mut self, runtime: usize, interp: usize) -> Result<usize, Error> {
        Ok(self.read_gil_step(runtime, interp)?.holder)
    }

    /// The GIL read step by step: its holder and, 3.12+, its last holder
    /// and switch count (see `quiet.rs`).
    pub(crate) fn read_gil_step(
        &mut self,
        runtime: usize,
        interp: usize,
    ) -> Result<GilRead, Error> {
        let o = self.layout().offsets;
        if let Some(off) = o.runtime_tstate_current {
            let holder = self
                .objects
                .mem
                .read_usize(runtime.wrapping_add(off))
                .what("GIL holder")?;
            return Ok(GilRead {
                holder,
                ..GilRead::default()
            });
        }
        let (Some(gil_ptr), Some(locked), Some(holder)) =
            (o.interp_ceval_gil, o.gil_locked, o.gil_last_holder)
        else {
            return Ok(GilRead::default());
        };
        // `interp->ceval.gil` is set once when the interpreter starts.
        let gil = match self.gils.pointers.get(&interp) {
            Some(&gil) => gil,
            None => {
                let gil = self
                    .objects
                    .mem
                    .read_usize(interp.wrapping_add(gil_ptr))
                    .what("GIL pointer")?;
                if gil == 0 {
                    return Ok(GilRead::default());
                }
                self.gils.pointers.insert(interp, gil);
                gil
            }
        };
        let (mut state, mut last, mut switches) = ([0u8; 4], [0u8; 8], [0u8; 8]);
        let switch_at = switch_number_offset(locked, holder);
        let mut reads = [
            (gil.wrapping_add(locked), &mut state[..]),
            (gil.wrapping_add(holder), &mut last[..]),
            (gil.wrapping_add(switch_at.unwrap_or(0)), &mut switches[..]),
        ];
        let n = if switch_at.is_some() { 3 } else { 2 };
        self.objects
            .mem
            .read_many(&mut reads[..n])
            .what("GIL state")?;
        let last_holder = u64::from_le_bytes(last) as usize;
        Ok(GilRead {
            holder: if i32::from_le_bytes(state) == 0 {
                0
            } else {
                last_holder
            },
            enabled: None,
            last_holder,
            switches: switch_at.map(|_| u64::from_le_bytes(switches)),
        })
    }

    /// Names of threads started through `threading`, by `thread_id`:
    /// `sys.modules["threading"]._active[ident]._name`. Empty when the
    /// module was never imported.
    pub fn thread_names(&self, interp: usize) -> Result<HashMap<u64, String>, Error> {
        let o = self.layout().offsets;
        let r = &self.objects;
        let modules = r
            .mem
            .read_usize(interp.wrapping_add(o.interp_modules))
            .what("sys.modules")?;
        let mut names = HashMap::new();
        if modules == 0 {
            return Ok(names);
        }
        let Some(threading) = r.lookup_str_key(&r.dict_items(modules)?, "threading") else {
            return Ok(names);
        };
        let md_dict = r
            .mem
            .read_usize(threading.wrapping_add(o.module_md_dict))
            .what("threading.__dict__")?;
        if md_dict == 0 {
            return Ok(names);
        }
        let Some(active) = r.lookup_str_key(&r.dict_items(md_dict)?, "_active") else {
            return Ok(names);
        };
        // Bounded like the thread list: at most MAX_THREADS entries, each
        // thread object once, and only attribute dicts of a sane size.
        let mut seen = std::collections::HashSet::new();
        for (ident, thread) in r.dict_items(active)?.into_iter().take(MAX_THREADS) {
            if !seen.insert(thread) {
                continue;
            }
            let Ok(Some(ident)) = r.read_int(ident) else {
                continue;
            };
            let Ok(attrs) = r.instance_dict_items(thread) else {
                continue;
            };
            if attrs.len() > MAX_THREAD_ATTRS {
                continue;
            }
            if let Some(name) = r.lookup_str_key(&attrs, self.layout().flavor.thread_name_attr) {
                if let Ok(name) = r.read_str(name, 1024) {
                    names.insert(ident as u64, name);
                }
            }
        }
        Ok(names)
    }
}

/// A C `unsigned long` of the target (`thread_id`, `native_thread_id`):
/// 8 bytes on Unix, 4 on Windows (LLP64), where the next 4 bytes belong
/// to the following field. The target runs on this OS.
fn c_ulong_at(bytes: &[u8], off: usize) -> u64 {
    let word = usize_at(bytes, off) as u64;
    if cfg!(windows) {
        word & 0xffff_ffff
    } else {
        word
    }
}
