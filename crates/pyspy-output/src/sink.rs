//! A byte buffer in front of the caller's writer: formats append to
//! [`Sink::buf`] and call [`Sink::spill`] now and then, so small pieces cost
//! a `Vec` push rather than a call through `dyn Write`.

use std::io::{self, Write};

/// Buffered output to a `dyn Write`.
pub(crate) struct Sink<'a> {
    /// Bytes not yet handed to the writer.
    pub buf: Vec<u8>,
    out: &'a mut dyn Write,
}

const SPILL_AT: usize = 1 << 16;

impl<'a> Sink<'a> {
    pub(crate) fn new(out: &'a mut dyn Write) -> Self {
        Sink {
            buf: Vec::with_capacity(SPILL_AT + 4096),
            out,
        }
    }

    /// Hands the buffer to the writer once it holds enough.
    pub(crate) fn spill(&mut self) -> io::Result<()> {
        if self.buf.len() >= SPILL_AT {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Hands everything to the writer.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }
}
