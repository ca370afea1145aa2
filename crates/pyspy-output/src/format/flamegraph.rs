//! Flamegraph: the folded stacks drawn by `inferno` as an interactive SVG,
//! icicle style (root at top) like py-spy, frames narrower than
//! [`OutputOptions::min_width`] percent left out, with colours chosen by a
//! hash of the function name so the same profile always gives the same file.
//! Frames inferno would leave out are cut before it sees them (see
//! `Folded::prune`), which keeps big profiles fast.

use std::io::{self, Write};

use inferno::flamegraph::{self, Direction};

use super::Encoder;
use crate::folded::Folded;
use crate::{OutputOptions, Profile};

pub(crate) struct Flamegraph;

impl Encoder for Flamegraph {
    fn encode(
        &self,
        profile: &Profile,
        options: &OutputOptions,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let mut folded = Folded::new(profile);
        folded.prune(options.min_width);
        draw(&folded, profile, options, out)
    }
}

/// Draws `folded` as it is.
pub(crate) fn draw(
    folded: &Folded,
    profile: &Profile,
    options: &OutputOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut text = Vec::new();
    let mut ends = Vec::with_capacity(folded.len());
    for i in 0..folded.len() {
        folded.write_line(i, &mut text);
        ends.push(text.len());
    }
    let text = String::from_utf8(text).expect("labels are UTF-8");
    let lines = ends.iter().scan(0, |start, &end| {
        let line = &text[*start..end];
        *start = end;
        Some(line)
    });
    let mut opts = flamegraph::Options::default();
    opts.title = options.title_for(&profile.command_line).to_owned();
    opts.direction = Direction::Inverted;
    opts.min_width = options.min_width;
    opts.hash = true;
    // `Folded` already merged and sorted the lines, frame by frame.
    opts.no_sort = true;
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    flamegraph::from_lines(&mut opts, lines, &mut out)?;
    out.flush()
}
