//! `dump --core --native`: native stacks out of a core file, merged with
//! the Python frames as a live `dump --native` merges them.
//!
//! The unwinder reads the core through the same [`pyspy_process::Target`]
//! seam as the stack reader; each thread's registers are the ones its
//! `NT_PRSTATUS` note recorded. A core can lack what an unwind needs (a
//! thread's stack not dumped, gdb's zeros for a stack it could not read, a
//! binary that is not here), so instead of failing the dump a thread's
//! stack then says where and why its native part ends, with a marker frame.

use std::collections::HashMap;
use std::sync::Arc;

use pyspy_core::CoreFile;
use pyspy_cpython::{Frame, Interpreter, RawFrame, ThreadState};
use pyspy_native::{End, Merged, MergedFrame, NativeStacks, Registers};
use pyspy_process::{Memory, Pid};

use crate::native_frame::{marker_frame, native_frame};

/// Bytes above a thread's stack pointer checked for gdb's zero fill: a
/// live stack is never zero for this long right where the thread stopped.
const ZERO_CHECK: usize = 512;

/// One frame of a thread's stack as a core dump shows it.
pub(crate) enum Shown {
    /// The thread's Python frame at this index.
    Python(usize),
    /// A native frame, or a marker.
    Native(Frame),
}

/// Native unwinding for the threads of one core.
pub(crate) struct CoreNative {
    core: Arc<CoreFile>,
    native: NativeStacks,
    /// Each recorded thread's registers, by tid.
    registers: HashMap<u64, Registers>,
    merged: Vec<MergedFrame>,
}

impl CoreNative {
    pub(crate) fn new(core: Arc<CoreFile>, interpreter: &Interpreter) -> CoreNative {
        let registers = core
            .threads()
            .iter()
            .map(|t| (t.tid as u64, Registers::from_user_regs(&t.regs)))
            .collect();
        let mut native = NativeStacks::new(core.clone(), interpreter);
        native.begin_sample();
        CoreNative {
            core,
            native,
            registers,
            merged: Vec::new(),
        }
    }

    /// Thread `ts`'s merged stack, innermost first; `python` are its
    /// Python frames as the walker read them.
    pub(crate) fn stack(&mut self, ts: &ThreadState, python: &[RawFrame]) -> Vec<Shown> {
        let all_python = || (0..python.len()).map(Shown::Python);
        let Some(regs) = self.registers.get(&ts.native_thread_id).copied() else {
            let text = format!(
                "<native stack unknown: no registers for thread {} in the core>",
                ts.native_thread_id
            );
            return std::iter::once(Shown::Native(marker_frame(text)))
                .chain(all_python())
                .collect();
        };
        let tid = ts.native_thread_id as Pid;
        let merged = match self.native.merge(tid, regs, ts, python, &mut self.merged) {
            Ok(m) => m,
            Err(e) => {
                let text = format!("<native stack left out: {e}>");
                return std::iter::once(Shown::Native(marker_frame(text)))
                    .chain(all_python())
                    .collect();
            }
        };
        // Frames past one in an unreadable binary come from frame pointers
        // alone, if at all: that binary is why the stack ends (or may be wrong).
        let ips: Vec<u64> = self.native.unwound().iter().map(|&(ip, _)| ip).collect();
        let unreadable = ips.iter().find_map(|&ip| self.native.unreadable_binary(ip));
        let marker = why_it_ends(&*self.core, regs, merged, unreadable).map(marker_frame);
        let mut out = Vec::with_capacity(self.merged.len() + 1);
        for (i, m) in self.merged.iter().enumerate() {
            if i == merged.cut {
                if let Some(f) = &marker {
                    out.push(Shown::Native(f.clone()));
                }
            }
            out.push(match *m {
                MergedFrame::Python(k) => Shown::Python(k),
                MergedFrame::Native(id) => {
                    Shown::Native(native_frame(Some(self.native.symbol(id))))
                }
            });
        }
        if merged.cut >= self.merged.len() {
            out.extend(marker.map(Shown::Native));
        }
        out
    }
}

/// Why a thread's native frames end early, when they do: the core has no
/// stack memory there, or only zeros, or `unreadable`, a binary the unwind
/// went through, could not be read.
fn why_it_ends<M: Memory + ?Sized>(
    core: &M,
    regs: Registers,
    merged: Merged,
    unreadable: Option<Arc<str>>,
) -> Option<String> {
    let sp = regs.sp().and_then(|sp| usize::try_from(sp).ok())?;
    let mut word = [0u8; 8];
    if core.read(sp, &mut word).is_err() {
        return Some(format!(
            "<native stack not in the core: nothing dumped at {sp:#x}>"
        ));
    }
    if stack_is_zeros(core, sp) {
        return Some(
            "<native stack is all zeros in the core (gdb could not read it; a kernel core has \
             it)>"
                .to_owned(),
        );
    }
    if let Some(path) = unreadable {
        return Some(format!(
            "<native stack ends: {path} could not be read (pass --executable or --sysroot to \
             find it)>"
        ));
    }
    (merged.end == End::Truncated)
        .then(|| "<native stack ends: no unwind information or stack memory past here>".to_owned())
}

/// Whether the stack at `sp` reads as zeros for [`ZERO_CHECK`] bytes (or to
/// the end of what the core holds, if shorter but at least a word).
fn stack_is_zeros<M: Memory + ?Sized>(mem: &M, sp: usize) -> bool {
    let mut buf = [0u8; ZERO_CHECK];
    let mut len = ZERO_CHECK;
    while len >= 8 {
        if mem.read(sp, &mut buf[..len]).is_ok() {
            return buf[..len].iter().all(|b| *b == 0);
        }
        len /= 2;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyspy_process::FakeMemory;

    fn merged(end: End) -> Merged {
        Merged { end, cut: 1 }
    }

    #[test]
    fn says_why_native_frames_end() {
        let mut mem = FakeMemory::new();
        mem.place(0x1000, vec![0u8; 0x1000]);
        mem.place(0x4000, vec![7u8; 0x1000]);
        let at = |sp| Registers::from_ip_sp(0x7000, sp, None);
        let missing = || Some(Arc::from("/opt/lib/libgone.so"));
        let why = |sp, end, unreadable| why_it_ends(&mem, at(sp), merged(end), unreadable);
        let text = why(0x9000, End::Truncated, None).unwrap();
        assert!(text.contains("not in the core"), "{text}");
        let text = why(0x1000, End::Complete, None).unwrap();
        assert!(text.contains("all zeros"), "{text}");
        assert_eq!(why(0x4000, End::Complete, None), None);
        for end in [End::Truncated, End::Complete] {
            let text = why(0x4000, end, missing()).unwrap();
            assert!(
                text.contains("/opt/lib/libgone.so could not be read"),
                "{text}"
            );
        }
        let text = why(0x4000, End::Truncated, None).unwrap();
        assert!(text.contains("no unwind information"), "{text}");
    }

    #[test]
    fn zero_filled_stacks_are_told_apart() {
        let mut mem = FakeMemory::new();
        mem.place(0x1000, vec![0u8; 0x1000]);
        let mut live = vec![0u8; 0x1000];
        live[0x10] = 0x42;
        mem.place(0x4000, live);
        assert!(stack_is_zeros(&mem, 0x1000));
        // Only 64 bytes left before the end: still checked.
        assert!(stack_is_zeros(&mem, 0x1fc0));
        assert!(!stack_is_zeros(&mem, 0x4000));
        assert!(!stack_is_zeros(&mem, 0x9000), "unreadable is not zeros");
    }
}
