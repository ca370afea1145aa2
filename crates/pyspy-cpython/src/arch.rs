//! Where the generated tables (probes compiled for Linux x86-64) differ on
//! other 64-bit Linux architectures. CPython's structs are laid out the same
//! on every LP64 Linux except where they embed glibc's `pthread_mutex_t`:
//! 40 bytes on x86-64, 48 on aarch64. The GIL state holds two (`mutex`,
//! `switch_mutex`), so on aarch64 it is 16 bytes larger, and so is whatever
//! holds it: `_PyRuntimeState` up to `gilstate.tstate_current` (3.7-3.11,
//! which lies after `ceval.gil`) and the interpreter state (3.12, which
//! embeds `_gil`). Checked by compiling scripts/offsets-probe.c and
//! offsets-probe-legacy.c for aarch64 (against 2.7, 3.6-3.13 headers and
//! bookworm's arm64 3.11 headers; and Debian sid's 3.13-3.15 headers with
//! their arm64 `pyconfig.h`, GIL and free-threaded: scripts/aarch64-check.sh)
//! and running them under qemu-user: these three fields are the only ones
//! that differ. 3.13+ read
//! the rest, the interpreter's size included, from the target's own
//! `_Py_DebugOffsets`; the GIL's size still comes from here (+16 on
//! 3.13t-3.15t too, whose GIL state also holds `enabled`).

use crate::offsets::Offsets;

/// How much larger the GIL state is here than on x86-64.
const GIL_GROWTH: usize = if cfg!(all(target_os = "linux", target_arch = "aarch64")) {
    16
} else {
    0
};

/// The x86-64 table `o` of CPython 3.`minor`, as laid out on this machine.
pub(crate) fn for_this_arch(o: Offsets, minor: u8) -> Offsets {
    adjust(o, minor, GIL_GROWTH)
}

fn adjust(mut o: Offsets, minor: u8, growth: usize) -> Offsets {
    o.gil_size = o.gil_size.map(|s| s + growth);
    o.runtime_tstate_current = o.runtime_tstate_current.map(|s| s + growth);
    if minor == 12 {
        o.interp_size += growth;
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated;

    #[test]
    fn aarch64_tables_match_the_probes_compiled_for_it() {
        // What the probes printed under qemu-aarch64 (see the module doc).
        let a = adjust(generated::OFFSETS_3_11, 11, 16);
        assert_eq!(a.runtime_tstate_current, Some(592));
        assert_eq!(a.gil_size, Some(224));
        assert_eq!(a.interp_size, generated::OFFSETS_3_11.interp_size);
        let a = adjust(generated::OFFSETS_3_9, 9, 16);
        assert_eq!(a.runtime_tstate_current, Some(584));
        let a = adjust(generated::OFFSETS_3_12, 12, 16);
        assert_eq!(a.runtime_tstate_current, None);
        assert_eq!(a.interp_size, generated::OFFSETS_3_12.interp_size + 16);
        // 3.13-3.15: the GIL's size, which the debug offsets table lacks.
        for (o, minor) in [
            (generated::OFFSETS_3_13, 13),
            (generated::OFFSETS_3_14, 14),
            (generated::OFFSETS_3_15, 15),
        ] {
            assert_eq!(adjust(o, minor, 16).gil_size, Some(224), "3.{minor}");
        }
        for (o, minor) in [
            (generated::OFFSETS_3_13T, 13),
            (generated::OFFSETS_3_14T, 14),
            (generated::OFFSETS_3_15T, 15),
        ] {
            assert_eq!(adjust(o, minor, 16).gil_size, Some(232), "3.{minor}t");
        }
        let a = adjust(generated::OFFSETS_2_7, 2, 16);
        assert_eq!(a.gil_size, None);
        assert_eq!(a.runtime_tstate_current, None);
        // Everything else is the same.
        let same = |o: Offsets| Offsets {
            gil_size: None,
            runtime_tstate_current: None,
            interp_size: 0,
            ..o
        };
        assert_eq!(
            same(adjust(generated::OFFSETS_3_11, 11, 16)),
            same(generated::OFFSETS_3_11)
        );
        // x86-64 is the tables' own layout.
        assert_eq!(
            adjust(generated::OFFSETS_3_11, 11, 0),
            generated::OFFSETS_3_11
        );
    }
}
