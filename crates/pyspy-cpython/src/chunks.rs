//! Copies of a thread's data-stack chunks (where 3.11+ keeps its frames)
//! taken during one read, so frames are walked from local bytes instead of
//! one remote read each; and the step-by-step copy of a thread's chunk
//! chain. The one-call speculative read that fills most of them is
//! `snapshot.rs`'s.

use std::ops::Range;

use pyspy_process::Memory;

use crate::error::{Error, ReadContext};
use crate::objects::usize_at;
use crate::walker::StackWalker;

/// Most data-stack chunks read per thread, and the largest chunk read.
pub(crate) const MAX_CHUNKS: usize = 64;
pub(crate) const MAX_CHUNK_BYTES: usize = 4 << 20;
/// Most bytes of chunks copied in one read (all threads together); frames
/// past it are read one by one.
pub(crate) const MAX_CHUNK_TOTAL: usize = 16 << 20;
/// `_PyStackChunk` header: previous, size, top.
pub(crate) const CHUNK_HEADER: usize = 24;

/// Bytes copied during the current read: the snapshot, then chunks read on
/// their own. Frames inside a copied chunk are read from here.
#[derive(Debug, Default)]
pub(crate) struct ChunkCopies {
    pub(crate) bytes: Vec<u8>,
    /// Data-stack chunks within `bytes`: remote address, range in `bytes`.
    pub(crate) chunks: Vec<(usize, Range<usize>)>,
    /// Other ranges the snapshot copied (what the last read fetched
    /// outside chunks): remote address, range in `bytes`.
    pub(crate) extras: Vec<(usize, Range<usize>)>,
    /// Per thread state of the current read, its entries of `chunks`.
    pub(crate) per_thread: Vec<Range<usize>>,
    /// Chunk bytes copied in this read.
    pub(crate) total: usize,
}

impl ChunkCopies {
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.chunks.clear();
        self.extras.clear();
        self.per_thread.clear();
        self.total = 0;
    }

    /// Fills `buf` from the copy of remote `addr`, if a chunk or another
    /// copied range holds it all.
    pub(crate) fn copy_out(&self, addr: usize, buf: &mut [u8]) -> Copied {
        match self.find(addr, buf.len()) {
            Some((kind, from)) => {
                buf.copy_from_slice(&self.bytes[from..from + buf.len()]);
                kind
            }
            None => Copied::No,
        }
    }

    /// Where `len` bytes of remote `addr` are in `bytes`, if a chunk or
    /// another copied range holds them all.
    pub(crate) fn find(&self, addr: usize, len: usize) -> Option<(Copied, usize)> {
        for (list, kind) in [(&self.chunks, Copied::Chunk), (&self.extras, Copied::Extra)] {
            for (start, range) in list {
                if let Some(off) = addr.checked_sub(*start) {
                    if off.saturating_add(len) <= range.len() {
                        return Some((kind, range.start + off));
                    }
                }
            }
        }
        None
    }
}

/// Where [`ChunkCopies::copy_out`] found the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Copied {
    /// In a data-stack chunk.
    Chunk,
    /// In a range the previous read fetched on its own.
    Extra,
    /// Not copied: read it.
    No,
}

impl<M: Memory> StackWalker<M> {
    /// Copies the used part of a thread's data-stack chunks
    /// (`_PyStackChunk`: previous, size, top, data) so its frames can be
    /// walked without a read per frame: the newest chunk up to the thread's
    /// `datastack_top` in one read, older ones (deep stacks) up to their
    /// saved `top`. Frames outside them (generators, frame objects) are read
    /// one by one.
    pub fn prefetch_chunks(&mut self, chunk: usize, top: usize) -> Result<(), Error> {
        if chunk == 0 {
            return Ok(());
        }
        let used = top.wrapping_sub(chunk);
        if !(CHUNK_HEADER..=MAX_CHUNK_BYTES).contains(&used) {
            return Err(Error::Corrupt {
                what: "data stack top",
                addr: top,
            });
        }
        let first = self.copies.chunks.len();
        let mut next = Some((chunk, used));
        for _ in 0..MAX_CHUNKS {
            let Some((addr, used)) = next else {
                break;
            };
            // Bounded by all bytes copied (the snapshot's too), so the
            // buffer never grows past twice this.
            if self.copies.total + used > MAX_CHUNK_TOTAL
                || self.copies.bytes.len() + used > MAX_CHUNK_TOTAL
            {
                break;
            }
            let start = self.copies.bytes.len();
            self.copies.bytes.resize(start + used, 0);
            self.objects
                .mem
                .read(addr, &mut self.copies.bytes[start..])
                .what("data stack chunk")?;
            let head = &self.copies.bytes[start..start + CHUNK_HEADER];
            if usize_at(head, 8) < used {
                return Err(Error::Corrupt {
                    what: "data stack chunk size",
                    addr,
                });
            }
            let previous = usize_at(head, 0);
            self.copies.total += used;
            self.copies.chunks.push((addr, start..start + used));
            // A chunk this thread already copied: a cycle (garbage, reused memory).
            if previous == 0 || self.copies.chunks[first..].iter().any(|c| c.0 == previous) {
                break;
            }
            let mut head = [0u8; CHUNK_HEADER];
            self.objects
                .mem
                .read(previous, &mut head)
                .what("data stack chunk")?;
            let (size, slots) = (usize_at(&head, 8), usize_at(&head, 16));
            let used = slots.saturating_mul(8).saturating_add(CHUNK_HEADER);
            if used > size || used > MAX_CHUNK_BYTES {
                return Err(Error::Corrupt {
                    what: "data stack chunk top",
                    addr: previous,
                });
            }
            next = Some((previous, used));
        }
        Ok(())
    }
}
