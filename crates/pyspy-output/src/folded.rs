//! Folded stacks (`root;…;leaf COUNT`), shared by the raw and flamegraph
//! formats: labels as py-spy writes them, identical label sequences merged
//! across threads, lines sorted frame by frame.

use crate::{FrameKind, FrameLabel, Profile};

/// A frame's folded label: `name (short_filename:line)`, `name
/// (short_filename)` when the line is 0, `name` when there is no filename or
/// the frame is synthetic. The folded format has no escaping, so `;` (the
/// frame separator) becomes `,` and line breaks become spaces.
pub(crate) fn label(frame: &FrameLabel) -> String {
    let text = match frame.kind {
        FrameKind::Thread | FrameKind::Process | FrameKind::Interpreter | FrameKind::Task => {
            frame.name.clone()
        }
        FrameKind::Python | FrameKind::Native if frame.short_filename.is_empty() => {
            frame.name.clone()
        }
        FrameKind::Python | FrameKind::Native if frame.line == 0 => {
            format!("{} ({})", frame.name, frame.short_filename)
        }
        FrameKind::Python | FrameKind::Native => {
            format!("{} ({}:{})", frame.name, frame.short_filename, frame.line)
        }
    };
    if text.contains([';', '\n', '\r']) {
        text.replace(';', ",").replace(['\n', '\r'], " ")
    } else {
        text
    }
}

/// The merged stacks of a profile, sorted.
pub(crate) struct Folded {
    /// Distinct labels, sorted; stacks refer to them by rank.
    labels: Vec<String>,
    /// Every stack's label ranks, root first, as big-endian `u32`s: byte
    /// order is then label order, so keys compare with `memcmp`.
    keys: Vec<u8>,
    /// Merged stacks, sorted by label sequence (so a frame's callees are
    /// adjacent).
    stacks: Vec<Stack>,
}

/// One line: a key in [`Folded::keys`] and its count.
#[derive(Clone, Copy)]
struct Stack {
    start: usize,
    len: usize,
    count: u64,
}

impl Folded {
    /// Folds every non-empty stack with a count.
    pub(crate) fn new(profile: &Profile) -> Self {
        // Rank labels by text; equal labels share a rank.
        let texts: Vec<String> = profile.frames.iter().map(label).collect();
        let mut order: Vec<u32> = (0..texts.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| texts[a as usize].cmp(&texts[b as usize]));
        let mut rank = vec![[0u8; 4]; texts.len()];
        let mut labels: Vec<String> = Vec::new();
        for &i in &order {
            let text = &texts[i as usize];
            if labels.last() != Some(text) {
                labels.push(text.clone());
            }
            rank[i as usize] = (labels.len() as u32 - 1).to_be_bytes();
        }

        let mut keys = Vec::new();
        let mut stacks = Vec::with_capacity(profile.stacks.len());
        for s in profile
            .stacks
            .iter()
            .filter(|s| !s.frames.is_empty() && s.count > 0)
        {
            let start = keys.len();
            keys.extend(s.frames.iter().flat_map(|&f| rank[f as usize]));
            stacks.push(Stack {
                start,
                len: keys.len() - start,
                count: s.count,
            });
        }
        let key = |s: &Stack| &keys[s.start..s.start + s.len];
        stacks.sort_unstable_by(|a, b| key(a).cmp(key(b)));
        let mut folded = Folded {
            labels,
            keys,
            stacks,
        };
        folded.merge();
        folded
    }

    fn key(&self, s: &Stack) -> &[u8] {
        &self.keys[s.start..s.start + s.len]
    }

    /// Merges equal adjacent stacks (of different threads, or cut short).
    fn merge(&mut self) {
        let mut merged: Vec<Stack> = Vec::with_capacity(self.stacks.len());
        for &s in &self.stacks {
            match merged.last_mut() {
                Some(last) if self.key(last) == self.key(&s) => last.count += s.count,
                _ => merged.push(s),
            }
        }
        self.stacks = merged;
    }

    /// How many lines there are.
    pub(crate) fn len(&self) -> usize {
        self.stacks.len()
    }

    /// Appends line `i`, without a newline.
    pub(crate) fn write_line(&self, i: usize, buf: &mut Vec<u8>) {
        let stack = &self.stacks[i];
        for (j, rank) in self.key(stack).chunks_exact(4).enumerate() {
            if j > 0 {
                buf.push(b';');
            }
            let rank = u32::from_be_bytes(rank.try_into().expect("4 bytes"));
            buf.extend_from_slice(self.labels[rank as usize].as_bytes());
        }
        buf.push(b' ');
        crate::json::uint(buf, stack.count);
    }

    /// Cuts off what a flame graph would not draw anyway: frames narrower
    /// than `min_width` percent of all samples (inferno's rule), and so
    /// their callees. A stack is cut after its first such frame (which
    /// inferno then leaves out), so that every drawn frame keeps its width
    /// and place: the drawing stays exactly the same. Stacks cut to the
    /// same frames merge, so a big profile shrinks to about as many lines as
    /// the drawing has frames and their narrow callees.
    pub(crate) fn prune(&mut self, min_width: f64) {
        let total: u64 = self.stacks.iter().map(|s| s.count).sum();
        // Inferno: minwidth_time = min_width / (100 / total). Slightly
        // lower, so that float rounding never cuts a frame inferno keeps.
        let limit = min_width / (100.0 / total as f64) * (1.0 - 1e-9);
        if limit.is_nan() || limit <= 1.0 {
            return;
        }
        let n = self.stacks.len();
        // Frames (of 4 bytes) each stack keeps.
        let mut keep: Vec<usize> = self.stacks.iter().map(|s| s.len / 4).collect();
        // Open frames of the current stack: (first stack, width).
        let mut open: Vec<(usize, u64)> = Vec::new();
        let mut close = |open: &mut Vec<(usize, u64)>, depth: usize, end: usize| {
            while open.len() > depth {
                let (start, width) = open.pop().expect("open frame");
                if (width as f64) < limit {
                    let d = open.len() + 1;
                    keep[start..end].iter_mut().for_each(|k| *k = (*k).min(d));
                }
            }
        };
        for i in 0..n {
            let key = self.key(&self.stacks[i]);
            let common = match i {
                0 => 0,
                _ => {
                    key.iter()
                        .zip(self.key(&self.stacks[i - 1]))
                        .take_while(|(a, b)| a == b)
                        .count()
                        / 4
                }
            };
            close(&mut open, common, i);
            open.resize(key.len() / 4, (i, 0));
            open.iter_mut().for_each(|f| f.1 += self.stacks[i].count);
        }
        close(&mut open, 0, n);
        for (s, keep) in self.stacks.iter_mut().zip(keep) {
            s.len = keep * 4;
        }
        // Still sorted: a cut stack keeps the frame where it parts from
        // its neighbours.
        self.merge();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str, short: &str, line: u32, kind: FrameKind) -> FrameLabel {
        FrameLabel {
            name: name.into(),
            filename: format!("/x/{short}"),
            short_filename: short.into(),
            line,
            first_line: 1,
            kind,
        }
    }

    #[test]
    fn labels_follow_py_spy() {
        assert_eq!(
            label(&frame("f", "a.py", 3, FrameKind::Python)),
            "f (a.py:3)"
        );
        assert_eq!(label(&frame("f", "a.py", 0, FrameKind::Python)), "f (a.py)");
        assert_eq!(label(&frame("f", "", 3, FrameKind::Python)), "f");
        assert_eq!(
            label(&frame("thread (7)", "a.py", 3, FrameKind::Thread)),
            "thread (7)"
        );
        assert_eq!(
            label(&frame(
                "process 1:\"python -c 'a;b'\nx\"",
                "",
                0,
                FrameKind::Process
            )),
            "process 1:\"python -c 'a,b' x\""
        );
    }
}
