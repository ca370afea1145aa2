//! Where a sample reads each interpreter's GIL: which thread state holds it
//! and, on a free-threaded build, whether it is enabled at all (`PYTHON_GIL=1`,
//! or an extension module that needs it, turns it on at run time). Both ride
//! in the snapshot's one system call (`snapshot.rs`).

use pyspy_process::Memory;

use crate::objects::{i32_at, usize_at};
use crate::walker::StackWalker;

/// Most bytes between the first and the last GIL field read as one range
/// (3.12–3.15 keep them within 32).
const MAX_GIL_SPAN: usize = 64;

/// Where a sample reads one interpreter's GIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gil {
    /// 3.7–3.11: `_PyRuntime.gilstate.tstate_current`.
    Current(usize),
    /// 3.12+: the GIL state's `locked` (an int) and `last_holder`, its
    /// `switch_number` (an unsigned long, right after `locked` in every
    /// version) and, on a free-threaded build, its `enabled` counter (an
    /// int), read as one range.
    State {
        locked: usize,
        holder: usize,
        enabled: Option<usize>,
        switches: Option<usize>,
    },
    /// Not known.
    None,
}

impl Gil {
    /// The range the snapshot reads for it: start and length.
    pub(crate) fn range(self) -> Option<(usize, usize)> {
        match self {
            Gil::Current(at) => Some((at, 8)),
            Gil::State {
                locked,
                holder,
                enabled,
                switches,
            } => {
                let start = locked.min(holder).min(enabled.unwrap_or(usize::MAX));
                let end = (locked.saturating_add(4))
                    .max(holder.saturating_add(8))
                    .max(enabled.map_or(0, |e| e.saturating_add(4)))
                    .max(switches.map_or(0, |s| s.saturating_add(8)));
                Some((start, end - start))
            }
            Gil::None => None,
        }
    }

    /// Bytes the snapshot reads for it.
    pub(crate) fn len(self) -> usize {
        self.range().map_or(0, |r| r.1)
    }

    /// What [`Gil::range`]'s bytes say. A disabled GIL has no holder,
    /// whatever its stale fields say.
    pub(crate) fn parse(self, bytes: &[u8]) -> GilRead {
        match self {
            Gil::Current(_) => GilRead {
                holder: usize_at(bytes, 0),
                ..GilRead::default()
            },
            Gil::State {
                locked,
                holder,
                enabled,
                switches,
            } => {
                let Some((base, _)) = self.range() else {
                    return GilRead::default();
                };
                let enabled = enabled.map(|e| i32_at(bytes, e - base) != 0);
                let held = i32_at(bytes, locked - base) != 0 && enabled != Some(false);
                let last_holder = usize_at(bytes, holder - base);
                GilRead {
                    holder: if held { last_holder } else { 0 },
                    enabled,
                    last_holder,
                    switches: switches.map(|s| usize_at(bytes, s - base) as u64),
                }
            }
            Gil::None => GilRead::default(),
        }
    }
}

/// One interpreter's GIL as a snapshot read it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GilRead {
    /// The thread state holding it (0: none).
    pub(crate) holder: usize,
    /// Whether it is enabled (`None`: a build that always has one).
    pub(crate) enabled: Option<bool>,
    /// The thread state that took it last, held or not (3.12+; 0 unknown).
    pub(crate) last_holder: usize,
    /// How many times a thread took it from another thread (3.12+
    /// `switch_number`): while it stays put, no other thread ran Python.
    pub(crate) switches: Option<u64>,
}

/// Where `switch_number` lies in the GIL state, from where `locked` and
/// `last_holder` do: the word after `locked` (`PyThreadState *last_holder;
/// int locked; unsigned long switch_number;` in 3.12–3.15, so `locked` is
/// 8-aligned and follows the holder). `None` when the fields are not laid
/// out that way.
pub(crate) fn switch_number_offset(locked: usize, holder: usize) -> Option<usize> {
    (locked.is_multiple_of(8) && holder + 8 == locked).then_some(locked + 8)
}

impl<M: Memory> StackWalker<M> {
    /// Where a sample reads `interp`'s GIL; `None` when it must be looked
    /// for step by step first.
    pub(crate) fn gil_spec(&self, runtime: usize, interp: usize) -> Option<Gil> {
        let o = self.layout().offsets;
        Some(if let Some(off) = o.runtime_tstate_current {
            Gil::Current(runtime.wrapping_add(off))
        } else if let (Some(locked), Some(holder)) = (o.gil_locked, o.gil_last_holder) {
            if locked.abs_diff(holder) > MAX_GIL_SPAN {
                // Not one small range (no layout has them apart).
                return None;
            }
            // The enabled flag rides along only when it lies close by.
            let enabled = self.layout().gil_enabled.filter(|&e| {
                let lo = e.min(locked).min(holder);
                let hi = e
                    .saturating_add(4)
                    .max(locked.saturating_add(4))
                    .max(holder.saturating_add(8));
                hi - lo <= MAX_GIL_SPAN
            });
            match self.gils.pointers.get(&interp) {
                // A GIL pointer so high that the fields wrap apart is garbage.
                Some(g) if g.checked_add(MAX_GIL_SPAN * 2).is_none() => return None,
                Some(g) => Gil::State {
                    locked: g.wrapping_add(locked),
                    holder: g.wrapping_add(holder),
                    enabled: enabled.map(|e| g.wrapping_add(e)),
                    switches: switch_number_offset(locked, holder).map(|s| g.wrapping_add(s)),
                },
                // Not found yet: the step-by-step read looks for it.
                None if o.interp_ceval_gil.is_some() => return None,
                None => Gil::None,
            }
        } else {
            Gil::None
        })
    }

    /// Step by step (once the GIL pointer is known): whether `interp`'s
    /// GIL is enabled; `None` for builds that always have one, or unread.
    pub(crate) fn read_gil_enabled(&self, interp: usize) -> Option<bool> {
        let off = self.layout().gil_enabled?;
        let gil = *self.gils.pointers.get(&interp)?;
        let mut word = [0u8; 4];
        self.objects
            .mem
            .read(gil.wrapping_add(off), &mut word)
            .ok()?;
        Some(i32::from_le_bytes(word) != 0)
    }

    /// Free-threaded builds: whether the GIL of the interpreter at `interp`
    /// was enabled at the last read (`PYTHON_GIL=1`, or an extension module
    /// that needs it). `None` for builds that always have a GIL, or when it
    /// could not be read.
    pub fn gil_enabled(&self, interp: usize) -> Option<bool> {
        let k = self.sampled.iter().position(|i| i.addr == interp)?;
        self.gils.enabled.get(k).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(fields: &[(usize, u64)], len: usize) -> Vec<u8> {
        // Room for 8-byte writes; the range's own length is what is parsed.
        let mut b = vec![0u8; len + 8];
        for &(at, v) in fields {
            b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        b.truncate(len);
        b
    }

    fn held(holder: usize, enabled: Option<bool>) -> (usize, Option<bool>) {
        (holder, enabled)
    }

    #[test]
    fn the_enabled_flag_is_read_in_the_same_range() {
        // 3.13t: `enabled` at 0, `last_holder` at 16, `locked` at 24,
        // `switch_number` at 32.
        let g = Gil::State {
            locked: 0x1018,
            holder: 0x1010,
            enabled: Some(0x1000),
            switches: Some(0x1020),
        };
        assert_eq!(g.range(), Some((0x1000, 40)));
        let on = g.parse(&bytes(&[(0, 1), (16, 0xbeef), (24, 1), (32, 7)], 40));
        assert_eq!(held(on.holder, on.enabled), (0xbeef, Some(true)));
        assert_eq!(on.switches, Some(7));
        let free = g.parse(&bytes(&[(0, 0), (16, 0xbeef), (24, 0)], 40));
        assert_eq!(held(free.holder, free.enabled), (0, Some(false)));
        // Disabled but with stale `locked`: still nobody holds it.
        let stale = g.parse(&bytes(&[(0, 0), (16, 0xbeef), (24, 1)], 40));
        assert_eq!(held(stale.holder, stale.enabled), (0, Some(false)));
        assert_eq!(stale.last_holder, 0xbeef);
    }

    #[test]
    fn a_gil_build_reads_no_enabled_flag() {
        // 3.12-3.15: `last_holder` at 8, `locked` at 16, `switch_number` at 24.
        let g = Gil::State {
            locked: 0x2010,
            holder: 0x2008,
            enabled: None,
            switches: switch_number_offset(0x10, 0x8).map(|s| 0x2000 + s),
        };
        assert_eq!(g.range(), Some((0x2008, 24)));
        let taken = g.parse(&bytes(&[(0, 0x77), (8, 1), (16, 42)], 24));
        assert_eq!(held(taken.holder, taken.enabled), (0x77, None));
        assert_eq!((taken.last_holder, taken.switches), (0x77, Some(42)));
        let dropped = g.parse(&bytes(&[(0, 0x77), (8, 0), (16, 42)], 24));
        assert_eq!((dropped.holder, dropped.last_holder), (0, 0x77));
        assert_eq!(
            Gil::Current(0x40).parse(&bytes(&[(0, 0x55)], 8)).holder,
            0x55
        );
        assert_eq!(Gil::None.len(), 0);
        assert_eq!(switch_number_offset(20, 12), None, "locked not 8-aligned");
        assert_eq!(switch_number_offset(0, 8), None, "locked before the holder");
    }
}
