//! Placing each group of Python frames on the unwound native stack.

use crate::pyframes::Group;
use crate::symbols::Kind;
use crate::unwind::End;
use crate::MergedFrame;

/// Walks the native frames (instruction and stack pointers, innermost
/// first) and puts each group of Python frames where its C call is: in the
/// native frame whose stack holds the group's anchor, or, for a group
/// without one, at the next frame whose symbol is the evaluation loop.
/// Groups go innermost first, in order; a group's frames come before
/// (inside) the frame that runs it. `native(at, out)` classifies the code
/// at `at` and, for a shown frame, pushes its frames. `Ok(cut)`: the
/// length of `out` where the native frames ended (Python frames after it
/// were placed without a C call to hold them). `Err(evals)` when the
/// stacks do not fit together.
pub(crate) fn merge_frames(
    frames: &[(u64, u64)],
    end: End,
    groups: &[Group],
    python_len: usize,
    out: &mut Vec<MergedFrame>,
    mut native: impl FnMut(u64, &mut Vec<MergedFrame>) -> Kind,
) -> Result<usize, usize> {
    let (mut g, mut next_py, mut evals) = (0usize, 0usize, 0usize);
    let emit = |g: &mut usize, next_py: &mut usize, out: &mut Vec<MergedFrame>| {
        let n = groups[*g].len;
        out.extend((*next_py..*next_py + n).map(MergedFrame::Python));
        *next_py += n;
        *g += 1;
    };
    for (i, &(ip, sp)) in frames.iter().enumerate() {
        // Where the last frame ends is known only when it is the outermost
        // one; after a cut-short unwind, groups whose call lies beyond it
        // stay for the leftovers, outside it.
        let last_end = if end == End::Truncated { sp } else { u64::MAX };
        let upper = frames.get(i + 1).map_or(last_end, |f| f.1);
        let mut consumed_here = false;
        while let Some(gr) = groups.get(g) {
            let Some(a) = gr.anchor else {
                break;
            };
            if a >= upper {
                break;
            }
            if a < sp {
                // Not on this stack (3.14+'s base frame lives in the thread
                // state): fine for an empty group; a group of frames whose
                // call was never found is not.
                if gr.len > 0 {
                    return Err(evals);
                }
                g += 1;
                continue;
            }
            evals += 1;
            consumed_here = true;
            emit(&mut g, &mut next_py, out);
        }
        // A return address points after its call: name the call.
        let at = if i == 0 { ip } else { ip.wrapping_sub(1) };
        let kind = native(at, out);
        if kind == Kind::Eval
            && !consumed_here
            && groups.get(g).is_some_and(|gr| gr.anchor.is_none())
        {
            evals += 1;
            emit(&mut g, &mut next_py, out);
        }
    }
    let cut = out.len();
    let left: usize = groups[g..].iter().map(|gr| gr.len).sum();
    if left > 0 {
        // No evaluation frame at all (the unwind stopped in a library
        // before reaching the interpreter), or an unwind cut short: the
        // Python frames left are the outermost ones, in order.
        if evals == 0 || end == End::Truncated {
            out.extend((next_py..python_len).map(MergedFrame::Python));
        } else {
            return Err(evals);
        }
    }
    Ok(cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use MergedFrame::{Native as N, Python as P};

    /// Frames at ips 1.. with stack pointers 0x100 apart; ip 9 is the
    /// evaluation loop, 8 is hidden, the rest are shown as Native(ip).
    fn run(ips: &[u64], groups: &[Group], end: End) -> Result<Vec<MergedFrame>, usize> {
        let frames: Vec<(u64, u64)> = ips
            .iter()
            .enumerate()
            .map(|(i, &ip)| (ip, 0x1000 + 0x100 * i as u64))
            .collect();
        let python_len = groups.iter().map(|g| g.len).sum();
        let mut out = Vec::new();
        let mut next = 0;
        merge_frames(&frames, end, groups, python_len, &mut out, |_, out| {
            // Called once per frame, in order.
            let ip = ips[next];
            next += 1;
            match ip {
                9 => Kind::Eval,
                8 => Kind::Hidden,
                n => {
                    out.push(N(n as u32));
                    Kind::Shown
                }
            }
        })?;
        Ok(out)
    }

    #[test]
    fn the_cut_is_where_the_native_frames_end() {
        let frames = [(1, 0x1000), (9, 0x1100)];
        let groups = [g(1, None), g(1, None)];
        let mut out = Vec::new();
        let mut next = 0;
        let cut = merge_frames(&frames, End::Truncated, &groups, 2, &mut out, |_, out| {
            let ip = frames[next].0;
            next += 1;
            if ip == 9 {
                Kind::Eval
            } else {
                out.push(N(ip as u32));
                Kind::Shown
            }
        });
        assert_eq!(cut, Ok(2));
        assert_eq!(out, vec![N(1), P(0), P(1)]);
    }

    fn g(len: usize, anchor: Option<u64>) -> Group {
        Group { len, anchor }
    }

    #[test]
    fn symbols_place_groups_in_order() {
        // libc, eval(2 frames), hidden, ext, eval(1 frame), hidden
        let out = run(
            &[1, 9, 8, 3, 9, 8],
            &[g(2, None), g(1, None)],
            End::Complete,
        )
        .unwrap();
        assert_eq!(out, vec![N(1), P(0), P(1), N(3), P(2)]);
    }

    #[test]
    fn anchors_place_groups_without_symbols() {
        // Frame i covers [0x1000 + 0x100 i, 0x1000 + 0x100 (i+1)).
        let groups = [g(2, Some(0x1150)), g(1, Some(0x1450)), g(0, Some(0x10))];
        let out = run(&[1, 8, 8, 3, 8, 8], &groups, End::Complete).unwrap();
        assert_eq!(out, vec![N(1), P(0), P(1), N(3), P(2)]);
    }

    #[test]
    fn an_empty_leading_group_is_consumed_by_its_call() {
        let groups = [g(0, Some(0x1150)), g(1, Some(0x1450))];
        let out = run(&[1, 8, 8, 3, 8, 8], &groups, End::Complete).unwrap();
        assert_eq!(out, vec![N(1), N(3), P(0)]);
    }

    #[test]
    fn too_few_calls_fail_unless_the_unwind_was_cut_short() {
        let groups = [g(1, None), g(1, None)];
        assert_eq!(run(&[1, 9, 3], &groups, End::Complete), Err(1));
        let out = run(&[1, 9, 3], &groups, End::Truncated).unwrap();
        assert_eq!(out, vec![N(1), P(0), N(3), P(1)]);
    }

    #[test]
    fn no_call_found_appends_every_python_frame() {
        let out = run(&[1, 3], &[g(1, None), g(2, None)], End::Complete).unwrap();
        assert_eq!(out, vec![N(1), N(3), P(0), P(1), P(2)]);
    }

    #[test]
    fn a_short_unwind_keeps_groups_beyond_its_last_frame_outside_it() {
        // eval (anchor 0x1050), hidden, ext; the unwind stops in ext, and
        // the next group's call (0x1350) is further out.
        let groups = [g(1, Some(0x1050)), g(2, Some(0x1350))];
        let out = run(&[9, 8, 3], &groups, End::Truncated).unwrap();
        assert_eq!(out, vec![P(0), N(3), P(1), P(2)]);
        // Had the unwind reached the outermost frame, ext would hold it.
        let out = run(&[9, 8, 3], &groups, End::Complete).unwrap();
        assert_eq!(out, vec![P(0), P(1), P(2), N(3)]);
    }

    #[test]
    fn an_anchor_below_the_stack_with_frames_fails() {
        let groups = [g(1, Some(0x10))];
        assert_eq!(run(&[1, 9], &groups, End::Complete), Err(0));
    }
}
