//! Raw: folded stacks (Brendan Gregg's collapsed format), one
//! `root;…;leaf COUNT` line per unique label sequence, sorted.

use std::io::{self, Write};

use super::Encoder;
use crate::folded::Folded;
use crate::sink::Sink;
use crate::{OutputOptions, Profile};

pub(crate) struct Raw;

impl Encoder for Raw {
    fn encode(&self, profile: &Profile, _: &OutputOptions, out: &mut dyn Write) -> io::Result<()> {
        let mut sink = Sink::new(out);
        let folded = Folded::new(profile);
        for i in 0..folded.len() {
            folded.write_line(i, &mut sink.buf);
            sink.buf.push(b'\n');
            sink.spill()?;
        }
        sink.finish()
    }
}
