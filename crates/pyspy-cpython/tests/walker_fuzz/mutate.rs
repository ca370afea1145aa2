//! Making inputs: mutating snapshots, and random memory.

use crate::snapshot::Snapshot;

/// xorshift64*: small, deterministic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

pub fn random_bytes(rng: &mut Rng, max: usize) -> Vec<u8> {
    let n = rng.below(max + 1);
    (0..n).map(|_| rng.next() as u8).collect()
}

/// Values that break size and pointer arithmetic.
const BOUNDARY: &[u64] = &[
    0,
    1,
    2,
    3,
    7,
    8,
    0x10,
    0x7f,
    0x80,
    0xff,
    0x100,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    1 << 20,
    (1 << 20) + 1,
    1 << 30,
    1 << 40,
    1 << 47,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX - 8,
    u64::MAX - 7,
    u64::MAX - 1,
    u64::MAX,
];

/// A pointer somewhere into the snapshot's ranges (8-aligned, sometimes not).
fn pointer_into(s: &Snapshot, rng: &mut Rng) -> u64 {
    if s.ranges.is_empty() {
        return rng.next();
    }
    let (addr, bytes) = &s.ranges[rng.below(s.ranges.len())];
    let off = rng.below(bytes.len() + 16);
    let p = addr.wrapping_add(off) as u64;
    if rng.chance(8) {
        p
    } else {
        p & !7
    }
}

/// A range: half the time any one alike, half the time by size (so that
/// the few large ones, data-stack chunks, get their share).
fn pick_range(s: &Snapshot, rng: &mut Rng) -> usize {
    if rng.chance(2) {
        return rng.below(s.ranges.len());
    }
    let total: usize = s.ranges.iter().map(|r| r.1.len()).sum();
    let mut at = rng.below(total);
    for (i, r) in s.ranges.iter().enumerate() {
        if at < r.1.len() {
            return i;
        }
        at -= r.1.len();
    }
    s.ranges.len() - 1
}

/// Whether `p` lies inside one of the snapshot's ranges.
fn inside(s: &Snapshot, p: u64) -> bool {
    let p = p as usize;
    let i = s.ranges.partition_point(|r| r.0 <= p);
    i > 0 && p - s.ranges[i - 1].0 < s.ranges[i - 1].1.len()
}

/// Where a word that holds a pointer into the snapshot is (a pointer field
/// of some object), found by sampling; `None` when none was found.
fn pointer_field(s: &Snapshot, rng: &mut Rng) -> Option<(usize, usize, u64)> {
    for _ in 0..32 {
        let r = pick_range(s, rng);
        let len = s.ranges[r].1.len();
        if len < 8 {
            continue;
        }
        let off = rng.below(len - 7) & !7;
        let w = read_word(&s.ranges[r].1, off);
        if w != 0 && inside(s, w) {
            return Some((r, off, w));
        }
    }
    None
}

/// The value of some pointer field: the start of a real object or struct
/// (so that writing it elsewhere confuses one object for another).
fn known_pointer(s: &Snapshot, rng: &mut Rng) -> u64 {
    pointer_field(s, rng).map_or_else(|| pointer_into(s, rng), |p| p.2)
}

/// A word to write: a boundary value, a pointer into the snapshot, a small
/// number, a neighbour of the old value, or anything.
fn word(s: &Snapshot, rng: &mut Rng, old: u64) -> u64 {
    match rng.below(12) {
        0..=2 => BOUNDARY[rng.below(BOUNDARY.len())],
        3..=4 => pointer_into(s, rng),
        5 | 10 | 11 => known_pointer(s, rng),
        6 => rng.below(4096) as u64,
        7 => old.wrapping_add(rng.below(64) as u64).wrapping_sub(32),
        8 => old ^ (1 << rng.below(64)),
        _ => rng.next(),
    }
}

fn read_word(bytes: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    let n = bytes.len().saturating_sub(off).min(8);
    b[..n].copy_from_slice(&bytes[off..off + n]);
    u64::from_le_bytes(b)
}

fn write_word(bytes: &mut [u8], off: usize, w: u64) {
    let n = bytes.len().saturating_sub(off).min(8);
    bytes[off..off + n].copy_from_slice(&w.to_le_bytes()[..n]);
}

/// Applies `n` random mutations to `s`.
pub fn mutate(s: &mut Snapshot, rng: &mut Rng, n: usize) {
    for _ in 0..n {
        if s.ranges.is_empty() {
            return;
        }
        let r = pick_range(s, rng);
        let len = s.ranges[r].1.len();
        if len == 0 {
            continue;
        }
        if s.version.minor >= 13 && rng.chance(16) {
            mutate_table(s, rng);
            continue;
        }
        match rng.below(24) {
            // A pointer field pointed elsewhere: at another object, at a
            // neighbour of its target, at nothing.
            20..=23 => {
                if let Some((r, off, old)) = pointer_field(s, rng) {
                    let w = match rng.below(5) {
                        0 => known_pointer(s, rng),
                        // Another pointer of the same range: frames of a
                        // data-stack chunk point at each other (cycles).
                        4 => (0..32)
                            .map(|_| read_word(&s.ranges[r].1, rng.below(s.ranges[r].1.len()) & !7))
                            .find(|&w| w != 0 && inside(s, w))
                            .unwrap_or(old),
                        1 => old.wrapping_add(8 * rng.below(16) as u64).wrapping_sub(64),
                        2 => BOUNDARY[rng.below(BOUNDARY.len())],
                        _ => word(s, rng, old),
                    };
                    write_word(&mut s.ranges[r].1, off, w);
                }
            }
            // Most mutations rewrite one aligned word (pointers, sizes).
            0..=10 => {
                let off = rng.below(len) & !7;
                let old = read_word(&s.ranges[r].1, off);
                let w = word(s, rng, old);
                write_word(&mut s.ranges[r].1, off, w);
            }
            // A 32-bit field (lengths, kinds, line numbers, str state).
            11 => {
                let off = rng.below(len) & !3;
                let w = (word(s, rng, 0) as u32).to_le_bytes();
                let k = (len - off).min(4);
                s.ranges[r].1[off..off + k].copy_from_slice(&w[..k]);
            }
            12 => {
                let off = rng.below(len);
                s.ranges[r].1[off] ^= 1 << rng.below(8);
            }
            13 => {
                let off = rng.below(len);
                s.ranges[r].1[off] = rng.next() as u8;
            }
            // A run of random bytes.
            14 => {
                let off = rng.below(len);
                let k = rng.below(64).min(len - off);
                for b in &mut s.ranges[r].1[off..off + k] {
                    *b = rng.next() as u8;
                }
            }
            // Copy bytes from elsewhere (another object's header, say).
            15 => {
                let src = rng.below(s.ranges.len());
                let slen = s.ranges[src].1.len();
                let from = rng.below(slen);
                let k = rng.below(256).min(slen - from);
                let chunk = s.ranges[src].1[from..from + k].to_vec();
                let at = rng.below(len);
                let k = k.min(len - at);
                s.ranges[r].1[at..at + k].copy_from_slice(&chunk[..k]);
            }
            // Memory that ends early, or is gone.
            16 => {
                let keep = rng.below(len);
                s.ranges[r].1.truncate(keep);
            }
            17 => {
                s.ranges.remove(r);
            }
            // A word pointing back into its own range: cycles.
            18 => {
                let off = rng.below(len) & !7;
                let target = s.ranges[r].0.wrapping_add(rng.below(len) & !7);
                write_word(&mut s.ranges[r].1, off, target as u64);
            }
            // Zero a stretch (freed, cleared memory).
            _ => {
                let off = rng.below(len);
                let k = rng.below(512).min(len - off);
                s.ranges[r].1[off..off + k].fill(0);
            }
        }
    }
    s.ranges.retain(|r| !r.1.is_empty());
}

/// Rewrites one word of the `_Py_DebugOffsets` table at `_PyRuntime`
/// (3.13+) with a value its validation may accept: a struct size up to the
/// 1 MiB it allows, an offset inside it, or anything.
fn mutate_table(s: &mut Snapshot, rng: &mut Rng) {
    let runtime = s.runtime;
    let Some((start, bytes)) = s
        .ranges
        .iter_mut()
        .rfind(|(a, b)| *a <= runtime && runtime - *a < b.len())
    else {
        return;
    };
    let base = runtime - *start;
    let end = (base + 2048).min(bytes.len());
    if end < base + 32 {
        return;
    }
    let off = base + 24 + (rng.below(end - base - 24) & !7);
    if rng.chance(3) {
        // Scale a run of words (a group's size and its fields together, so
        // that validation still passes): a consistent but huge layout.
        let m = 2 + rng.below(4096) as u64;
        for at in (off..end.min(off + 8 * (1 + rng.below(16)))).step_by(8) {
            let w = read_word(bytes, at).saturating_mul(m);
            if w <= 1 << 20 {
                write_word(bytes, at, w);
            }
        }
        return;
    }
    let old = read_word(bytes, off);
    let w = match rng.below(6) {
        0 => 1 << 20,
        1 => rng.below(1 << 20) as u64,
        2 => old.wrapping_add(rng.below(1 << 12) as u64),
        3 => old.saturating_mul(1 + rng.below(64) as u64),
        4 => (1 << 20) - 8 * (1 + rng.below(4) as u64),
        _ => BOUNDARY[rng.below(BOUNDARY.len())],
    };
    write_word(bytes, off, w);
}

/// Random memory with the template's version (and, 3.13+, its debug
/// offsets table, sometimes damaged): a few ranges at random places (some
/// near the top of the address space), words biased to point into them.
pub fn random_memory(template: &Snapshot, rng: &mut Rng) -> Snapshot {
    let mut s = Snapshot {
        name: "random".into(),
        version: template.version,
        runtime: 0,
        interp: 0,
        ranges: Vec::new(),
    };
    let count = 1 + rng.below(8);
    for _ in 0..count {
        let addr = match rng.below(6) {
            0 => usize::MAX - 0xfff - rng.below(16) * 0x1000,
            1 => rng.below(16) * 0x1000,
            _ => 0x7f00_0000_0000 + rng.below(1 << 20) * 0x1000,
        };
        let len = 64 << rng.below(11); // 64 B .. 64 KiB
        let len = len.min((usize::MAX - addr).saturating_add(1));
        s.ranges.push((addr, vec![0u8; len]));
    }
    s.normalize();
    // Fill: first place the ranges, then write words that point into them.
    for r in 0..s.ranges.len() {
        let len = s.ranges[r].1.len();
        let mut off = 0;
        while off + 8 <= len {
            let w = match rng.below(8) {
                0..=2 => pointer_into(&s, rng),
                3 => BOUNDARY[rng.below(BOUNDARY.len())],
                4 => rng.below(256) as u64,
                5 => 0,
                _ => rng.next(),
            };
            write_word(&mut s.ranges[r].1, off, w);
            off += 8;
        }
    }
    s.interp = pointer_into(&s, rng) as usize;
    s.runtime = pointer_into(&s, rng) as usize;
    // 3.13+ read their layout from `_PyRuntime`: put the template's table
    // there (else nothing past the layout step would ever run).
    if template.version.minor >= 13 {
        if let Some(table) = table_of(template) {
            let mut table = table;
            if rng.chance(4) {
                let off = 24 + (rng.below(table.len().saturating_sub(24).max(1)) & !7);
                let old = read_word(&table, off);
                let w = word(&s, rng, old);
                write_word(&mut table, off, w);
            }
            let at = 0x5500_0000_0000 + rng.below(1 << 16) * 0x1000;
            s.runtime = at;
            s.ranges.push((at, table));
            s.normalize();
        }
    }
    s
}

/// The debug offsets table at the template's `_PyRuntime`.
fn table_of(t: &Snapshot) -> Option<Vec<u8>> {
    let (start, bytes) = t
        .ranges
        .iter()
        .rfind(|(a, b)| *a <= t.runtime && t.runtime - a < b.len())?;
    let off = t.runtime - start;
    Some(bytes[off..(off + 2048).min(bytes.len())].to_vec())
}
