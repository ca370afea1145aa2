//! Snapshots: the remote memory ranges one full read of a live interpreter
//! touched, with the addresses the reader starts from, as a committed file
//! (`tests/corpus/*.snap`) that a [`FakeMemory`] replays.
//!
//! Format (little-endian): `PYSPYSNP`, u32 format version (1), u8 major,
//! minor, patch, 0, u64 `_PyRuntime`, u64 main interpreter, u64 range count,
//! then per range u64 address, u64 length and the bytes.

use std::path::{Path, PathBuf};

use pyspy_cpython::Version;
use pyspy_process::FakeMemory;

const MAGIC: &[u8; 8] = b"PYSPYSNP";
const FORMAT: u32 = 1;

/// One captured interpreter.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Where it came from (file name), for messages.
    pub name: String,
    pub version: Version,
    pub runtime: usize,
    pub interp: usize,
    /// Sorted, non-overlapping, non-adjacent ranges.
    pub ranges: Vec<(usize, Vec<u8>)>,
}

impl Snapshot {
    /// Sorts and merges overlapping or touching ranges (later bytes win).
    pub fn normalize(&mut self) {
        self.ranges.sort_by_key(|r| r.0);
        let mut out: Vec<(usize, Vec<u8>)> = Vec::with_capacity(self.ranges.len());
        for (addr, bytes) in std::mem::take(&mut self.ranges) {
            if bytes.is_empty() {
                continue;
            }
            if let Some((start, prev)) = out.last_mut() {
                let end = start.saturating_add(prev.len());
                if addr <= end {
                    let off = addr - *start;
                    let new_end = off + bytes.len();
                    if new_end > prev.len() {
                        prev.resize(new_end, 0);
                    }
                    prev[off..new_end].copy_from_slice(&bytes);
                    continue;
                }
            }
            out.push((addr, bytes));
        }
        self.ranges = out;
    }

    /// Total bytes held.
    pub fn bytes(&self) -> usize {
        self.ranges.iter().map(|r| r.1.len()).sum()
    }

    /// The ranges as fake process memory.
    pub fn memory(&self) -> FakeMemory {
        let mut m = FakeMemory::new();
        for (addr, bytes) in &self.ranges {
            m.place(*addr, bytes.clone());
        }
        m
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes() + 64 + 16 * self.ranges.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT.to_le_bytes());
        let v = self.version;
        out.extend_from_slice(&[v.major, v.minor, v.patch, 0]);
        out.extend_from_slice(&(self.runtime as u64).to_le_bytes());
        out.extend_from_slice(&(self.interp as u64).to_le_bytes());
        out.extend_from_slice(&(self.ranges.len() as u64).to_le_bytes());
        for (addr, bytes) in &self.ranges {
            out.extend_from_slice(&(*addr as u64).to_le_bytes());
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        out
    }

    pub fn decode(name: &str, data: &[u8]) -> Result<Snapshot, String> {
        let mut c = Cursor { data, pos: 0, name };
        if c.take(8)? != MAGIC {
            return Err(format!("{name}: not a snapshot (bad magic)"));
        }
        let format = u32::from_le_bytes(c.take(4)?.try_into().unwrap());
        if format != FORMAT {
            return Err(format!(
                "{name}: snapshot format {format}, expected {FORMAT}"
            ));
        }
        let v = c.take(4)?;
        let version = Version::new(v[0], v[1], v[2]);
        let runtime = c.u64()? as usize;
        let interp = c.u64()? as usize;
        let n = c.u64()? as usize;
        let mut ranges = Vec::new();
        for _ in 0..n {
            let addr = c.u64()? as usize;
            let len = c.u64()? as usize;
            ranges.push((addr, c.take(len)?.to_vec()));
        }
        Ok(Snapshot {
            name: name.to_owned(),
            version,
            runtime,
            interp,
            ranges,
        })
    }
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    name: &'a str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or_else(|| format!("{}: truncated at byte {}", self.name, self.pos))?;
        self.pos = end;
        Ok(s)
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
}

/// `crates/pyspy-cpython/tests/corpus`.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// Every `*.snap` of the committed corpus, sorted by name.
pub fn load_corpus() -> Vec<Snapshot> {
    let dir = corpus_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "snap"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let data = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            Snapshot::decode(&name, &data).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}
