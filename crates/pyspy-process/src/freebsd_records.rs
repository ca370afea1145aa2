//! FreeBSD: the records the kernel's `kern.proc` sysctls answer with, parsed
//! from bytes (`kinfo_vmentry` for `KERN_PROC_VMMAP`, `kinfo_proc` for
//! `KERN_PROC_PID | KERN_PROC_INC_THREAD` and `KERN_PROC_PROC`, the
//! NUL-separated `KERN_PROC_ARGS`), and what a thread's state means for its
//! status. No system calls here (that is `freebsd_sysctl.rs`): this file is
//! compiled into the Linux unit tests too, which feed it buffers built byte
//! by byte, and the field offsets below are checked against `libc`'s
//! structures when building for FreeBSD.
#![cfg_attr(not(target_os = "freebsd"), allow(dead_code))]

use crate::{Activity, MapRange, Pid};

/// `kinfo_vmentry` (x86-64 and every 64-bit FreeBSD): the fields read.
/// Records are variable-sized: the kernel cuts each after its path's NUL,
/// rounded up to 8 bytes, and says how long it is in `kve_structsize`.
pub(crate) mod kve {
    pub const STRUCTSIZE: usize = 0;
    pub const START: usize = 8;
    pub const END: usize = 16;
    pub const OFFSET: usize = 24;
    pub const FILEID: usize = 32;
    pub const PROTECTION: usize = 56;
    pub const PATH: usize = 136;
    /// The full record (a path of `PATH_MAX` bytes).
    pub const SIZE: usize = 1160;
    pub const PROT_READ: i32 = 1;
    pub const PROT_WRITE: i32 = 2;
    pub const PROT_EXEC: i32 = 4;
}

/// `kinfo_proc` (64-bit FreeBSD, `KINFO_PROC_SIZE` 1088): the fields read.
/// With `KERN_PROC_INC_THREAD` there is one record per thread.
pub(crate) mod kip {
    pub const STRUCTSIZE: usize = 0;
    pub const PID: usize = 72;
    pub const PPID: usize = 76;
    pub const FLAG: usize = 368;
    pub const STAT: usize = 388;
    /// What a sleeping thread sleeps on (`WMESGLEN + 1` bytes).
    pub const WMESG: usize = 411;
    pub const WMESG_LEN: usize = 9;
    pub const TID: usize = 600;
    pub const SIZE: usize = 1088;
    /// `ki_stat` values.
    pub const SIDL: u8 = 1;
    pub const SRUN: u8 = 2;
    pub const SSLEEP: u8 = 3;
    pub const SSTOP: u8 = 4;
    pub const SZOMB: u8 = 5;
    pub const SWAIT: u8 = 6;
    pub const SLOCK: u8 = 7;
    /// `P_WEXIT` in `ki_flag`: the process has begun to exit.
    pub const P_WEXIT: i64 = 0x2000;
}

// The offsets above are libc's (FreeBSD 12+ ABI, which the kernel keeps):
// checked whenever this crate is built for FreeBSD (`cross-check.mjs`).
#[cfg(target_os = "freebsd")]
const _: () = {
    use std::mem::{offset_of, size_of};
    type V = libc::kinfo_vmentry;
    type P = libc::kinfo_proc;
    assert!(offset_of!(V, kve_structsize) == kve::STRUCTSIZE);
    assert!(offset_of!(V, kve_start) == kve::START);
    assert!(offset_of!(V, kve_end) == kve::END);
    assert!(offset_of!(V, kve_offset) == kve::OFFSET);
    assert!(offset_of!(V, kve_vn_fileid) == kve::FILEID);
    assert!(offset_of!(V, kve_protection) == kve::PROTECTION);
    assert!(offset_of!(V, kve_path) == kve::PATH);
    assert!(size_of::<V>() == kve::SIZE);
    assert!(libc::KVME_PROT_READ == kve::PROT_READ);
    assert!(libc::KVME_PROT_WRITE == kve::PROT_WRITE);
    assert!(libc::KVME_PROT_EXEC == kve::PROT_EXEC);
    assert!(offset_of!(P, ki_pid) == kip::PID);
    assert!(offset_of!(P, ki_ppid) == kip::PPID);
    assert!(offset_of!(P, ki_structsize) == kip::STRUCTSIZE);
    assert!(offset_of!(P, ki_flag) == kip::FLAG);
    assert!(offset_of!(P, ki_stat) == kip::STAT);
    assert!(offset_of!(P, ki_wmesg) == kip::WMESG);
    assert!(libc::WMESGLEN + 1 == kip::WMESG_LEN);
    assert!(offset_of!(P, ki_tid) == kip::TID);
    assert!(size_of::<P>() == kip::SIZE);
    assert!(libc::SRUN as u8 == kip::SRUN && libc::SSLEEP as u8 == kip::SSLEEP);
    assert!(libc::SSTOP as u8 == kip::SSTOP && libc::SZOMB as u8 == kip::SZOMB);
    assert!(libc::SWAIT as u8 == kip::SWAIT && libc::SLOCK as u8 == kip::SLOCK);
    assert!(libc::SIDL as u8 == kip::SIDL);
    assert!(libc::P_WEXIT as i64 == kip::P_WEXIT);
};

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    u32_at(b, at).map(|v| v as i32)
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The text up to the first NUL of `b` (all of it if none).
fn c_str(b: &[u8]) -> &[u8] {
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}

/// Splits a buffer of records that each start with their own size (an
/// `int` at `size_at`): stops at a size that is too small or runs past the
/// end.
fn records(buf: &[u8], size_at: usize, min: usize) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let size = usize::try_from(i32_at(buf, at + size_at)?).ok()?;
        if size < min || at + size > buf.len() {
            return None;
        }
        let rec = &buf[at..at + size];
        at += size;
        Some(rec)
    })
}

/// The memory map from a `KERN_PROC_VMMAP` answer. Entries not backed by a
/// file (anonymous memory, stacks) have no path.
pub(crate) fn parse_vmmap(buf: &[u8]) -> Vec<MapRange> {
    records(buf, kve::STRUCTSIZE, kve::PATH)
        .filter_map(|rec| {
            let prot = i32_at(rec, kve::PROTECTION)?;
            let path = c_str(&rec[kve::PATH..]);
            Some(MapRange {
                start: u64_at(rec, kve::START)? as usize,
                end: u64_at(rec, kve::END)? as usize,
                read: prot & kve::PROT_READ != 0,
                write: prot & kve::PROT_WRITE != 0,
                exec: prot & kve::PROT_EXEC != 0,
                offset: u64_at(rec, kve::OFFSET)?,
                inode: u64_at(rec, kve::FILEID)?,
                path: (!path.is_empty()).then(|| String::from_utf8_lossy(path).into_owned()),
            })
        })
        .collect()
}

/// The arguments of a `KERN_PROC_ARGS` answer (each ends with a NUL).
pub(crate) fn parse_args(buf: &[u8]) -> Vec<String> {
    buf.split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// One `kinfo_proc` record: a process, or one of its threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcRecord {
    pub pid: Pid,
    pub ppid: Pid,
    pub tid: Pid,
    /// `ki_stat`: `SRUN`, `SSLEEP`, `SSTOP`, ...
    pub stat: u8,
    /// `ki_wmesg`: set while the thread sleeps in the kernel.
    pub wmesg: String,
    pub flag: i64,
}

/// The records of a `kinfo_proc` array (fixed-size records whose size the
/// first field gives).
pub(crate) fn parse_procs(buf: &[u8]) -> Vec<ProcRecord> {
    records(buf, kip::STRUCTSIZE, kip::TID + 4)
        .filter_map(|rec| {
            Some(ProcRecord {
                pid: i32_at(rec, kip::PID)?,
                ppid: i32_at(rec, kip::PPID)?,
                tid: i32_at(rec, kip::TID)?,
                stat: *rec.get(kip::STAT)?,
                wmesg: String::from_utf8_lossy(c_str(
                    rec.get(kip::WMESG..kip::WMESG + kip::WMESG_LEN)?,
                ))
                .into_owned(),
                flag: u64_at(rec, kip::FLAG)? as i64,
            })
        })
        .collect()
}

impl ProcRecord {
    /// On a CPU or waiting for one.
    pub fn running(&self) -> bool {
        self.stat == kip::SRUN
    }

    /// Exited, exiting, or not yet running.
    pub fn ended(&self) -> bool {
        self.stat == kip::SZOMB || self.flag & kip::P_WEXIT != 0
    }

    /// What the thread was doing when listed, as `status.rs` reads it:
    /// running (`SRUN`), or blocked in the kernel (sleeping, waiting on a
    /// lock). FreeBSD names no system call here, nor the address a wait
    /// sleeps on, so a wait for the GIL is not told from any other wait.
    /// `None`: a state that says neither (stopped, a zombie, starting).
    pub fn activity(&self) -> Option<Activity> {
        match self.stat {
            kip::SRUN => Some(Activity::Running),
            kip::SSLEEP | kip::SLOCK | kip::SWAIT => Some(Activity::Blocked {
                futex: None,
                syscall: None,
            }),
            _ => None,
        }
    }

    /// What a thread of a *stopped* process was doing when it stopped. Every
    /// thread then shows `SSTOP`; one that was asleep in the kernel keeps
    /// its wait message (FreeBSD suspends a sleeping thread where it sleeps),
    /// one stopped on its way back to user code has none: computing.
    pub fn stopped_activity(&self) -> Option<Activity> {
        match self.stat {
            kip::SSTOP if self.wmesg.is_empty() => Some(Activity::Running),
            kip::SSTOP => Some(Activity::Blocked {
                futex: None,
                syscall: None,
            }),
            _ => self.activity(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
        buf[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// One `kinfo_vmentry` as the kernel packs it: cut after the path's
    /// NUL, rounded up to 8 bytes.
    fn vmentry(start: u64, end: u64, offset: u64, prot: i32, path: &str) -> Vec<u8> {
        let size = (kve::PATH + path.len() + 1).div_ceil(8) * 8;
        let mut rec = vec![0u8; size];
        put(&mut rec, kve::STRUCTSIZE, &(size as i32).to_ne_bytes());
        put(&mut rec, 4, &2i32.to_ne_bytes()); // kve_type: vnode
        put(&mut rec, kve::START, &start.to_ne_bytes());
        put(&mut rec, kve::END, &end.to_ne_bytes());
        put(&mut rec, kve::OFFSET, &offset.to_ne_bytes());
        put(&mut rec, kve::FILEID, &77u64.to_ne_bytes());
        put(&mut rec, kve::PROTECTION, &prot.to_ne_bytes());
        put(&mut rec, kve::PATH, path.as_bytes());
        rec
    }

    #[test]
    fn vmmap_records_of_varying_sizes() {
        let lib = "/usr/local/lib/libpython3.11.so.1.0";
        let mut buf = vmentry(0x80_0000_0000, 0x80_0010_0000, 0, 1, lib);
        buf.extend(vmentry(
            0x80_0010_0000,
            0x80_0030_0000,
            0x10_0000,
            1 | 4,
            lib,
        ));
        buf.extend(vmentry(0x7fff_0000, 0x7fff_8000, 0, 1 | 2, ""));
        let maps = parse_vmmap(&buf);
        assert_eq!(maps.len(), 3);
        assert_eq!(maps[0].path.as_deref(), Some(lib));
        assert_eq!(
            (maps[0].start, maps[0].end),
            (0x80_0000_0000, 0x80_0010_0000)
        );
        assert!(maps[0].read && !maps[0].write && !maps[0].exec);
        assert_eq!(maps[1].offset, 0x10_0000);
        assert!(maps[1].exec && !maps[1].write);
        assert_eq!(maps[1].inode, 77);
        assert_eq!(maps[2].path, None);
        assert!(maps[2].write);
        // The records were not all the same size: the parser followed
        // kve_structsize, not the full structure's size.
        assert_ne!(buf.len(), 3 * kve::SIZE);
    }

    #[test]
    fn vmmap_stops_at_a_damaged_record() {
        let mut buf = vmentry(0x1000, 0x2000, 0, 1, "/bin/sh");
        let mut bad = vmentry(0x3000, 0x4000, 0, 1, "/bin/ls");
        put(&mut bad, 0, &(1_000_000i32).to_ne_bytes()); // runs past the end
        buf.extend(bad);
        let maps = parse_vmmap(&buf);
        assert_eq!(maps.len(), 1);
        assert_eq!(maps[0].path.as_deref(), Some("/bin/sh"));
        assert!(parse_vmmap(&[0u8; 4]).is_empty());
        assert!(parse_vmmap(&[]).is_empty());
    }

    #[test]
    fn args_split_on_nul() {
        assert_eq!(
            parse_args(b"python3.11\0-c\0import time; time.sleep(9)\0"),
            ["python3.11", "-c", "import time; time.sleep(9)"]
        );
        assert!(parse_args(b"").is_empty());
    }

    fn kinfo(pid: Pid, ppid: Pid, tid: Pid, stat: u8, wmesg: &str) -> Vec<u8> {
        let mut rec = vec![0u8; kip::SIZE];
        put(&mut rec, kip::STRUCTSIZE, &(kip::SIZE as i32).to_ne_bytes());
        put(&mut rec, kip::PID, &pid.to_ne_bytes());
        put(&mut rec, kip::PPID, &ppid.to_ne_bytes());
        put(&mut rec, kip::TID, &tid.to_ne_bytes());
        put(&mut rec, kip::STAT, &[stat]);
        put(&mut rec, kip::WMESG, wmesg.as_bytes());
        rec
    }

    #[test]
    fn one_record_per_thread() {
        let mut buf = kinfo(500, 1, 100_101, kip::SRUN, "");
        buf.extend(kinfo(500, 1, 100_102, kip::SSLEEP, "uwait"));
        buf.extend(kinfo(500, 1, 100_103, kip::SLOCK, ""));
        let recs = parse_procs(&buf);
        assert_eq!(recs.len(), 3);
        assert_eq!(
            recs.iter().map(|r| r.tid).collect::<Vec<_>>(),
            [100_101, 100_102, 100_103]
        );
        assert!(recs.iter().all(|r| r.pid == 500 && r.ppid == 1));
        assert_eq!(recs[1].wmesg, "uwait");
        assert!(recs[0].running() && !recs[1].running());
        assert!(parse_procs(&buf[..kip::SIZE - 1]).is_empty());
    }

    #[test]
    fn thread_states_become_activities() {
        let blocked = Some(Activity::Blocked {
            futex: None,
            syscall: None,
        });
        let rec = |stat, wmesg: &str| parse_procs(&kinfo(1, 0, 2, stat, wmesg)).remove(0);
        assert_eq!(rec(kip::SRUN, "").activity(), Some(Activity::Running));
        assert_eq!(rec(kip::SSLEEP, "nanslp").activity(), blocked);
        assert_eq!(rec(kip::SLOCK, "").activity(), blocked);
        assert_eq!(rec(kip::SWAIT, "").activity(), blocked);
        assert_eq!(rec(kip::SSTOP, "").activity(), None);
        assert_eq!(rec(kip::SZOMB, "").activity(), None);
        // Stopped (paused by us): the wait message tells the sleeper.
        assert_eq!(
            rec(kip::SSTOP, "").stopped_activity(),
            Some(Activity::Running)
        );
        assert_eq!(rec(kip::SSTOP, "uwait").stopped_activity(), blocked);
        assert_eq!(
            rec(kip::SRUN, "").stopped_activity(),
            Some(Activity::Running)
        );
        assert!(rec(kip::SZOMB, "").ended());
        assert!(!rec(kip::SSLEEP, "select").ended());
        let mut exiting = kinfo(1, 0, 2, kip::SRUN, "");
        put(
            &mut exiting,
            kip::FLAG,
            &(kip::P_WEXIT as u64).to_ne_bytes(),
        );
        assert!(parse_procs(&exiting)[0].ended());
    }
}
