//! Time order for the formats that need it: the profile's timeline as runs
//! of samples with a sample count each, or, when the profile has no usable
//! timeline, each thread's stacks laid out one after the other.

use std::time::Duration;

use crate::Profile;

/// Consecutive samples of one thread that saw the same stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    /// Index into [`Profile::threads`].
    pub thread: u32,
    /// Index into [`Profile::stacks`].
    pub stack: u32,
    /// When the first sample was taken.
    pub start: Duration,
    /// When the run ended (at least `start`).
    pub end: Duration,
    /// How many samples the run stands for (at least 1).
    pub samples: u64,
}

/// The runs of `profile` sorted by start, and whether they came from its
/// timeline (`false`: laid out from the counts, so the order is made up).
///
/// A timeline only says when each run started and ended, not how many
/// samples it holds. Each stack's count is shared out over its runs: one
/// sample each, the rest in proportion to the runs' lengths (largest
/// remainder), so per-stack totals always equal the counts. The timeline is
/// used only when it is consistent with the counts.
pub(crate) fn runs(profile: &Profile) -> (Vec<Run>, bool) {
    match from_timeline(profile) {
        Some(runs) => (runs, true),
        None => (laid_out(profile), false),
    }
}

fn from_timeline(profile: &Profile) -> Option<Vec<Run>> {
    let spans = &profile.timeline;
    if spans.is_empty() {
        return None;
    }
    // Spans of each stack, grouped (offsets into `members`).
    let mut offsets = vec![0usize; profile.stacks.len() + 1];
    for span in spans {
        let stack = profile.stacks.get(span.stack as usize)?;
        if stack.thread != span.thread || span.thread as usize >= profile.threads.len() {
            return None;
        }
        offsets[span.stack as usize + 1] += 1;
    }
    for i in 0..profile.stacks.len() {
        offsets[i + 1] += offsets[i];
    }
    let mut fill = offsets.clone();
    let mut members = vec![0u32; spans.len()];
    for (i, span) in spans.iter().enumerate() {
        members[fill[span.stack as usize]] = i as u32;
        fill[span.stack as usize] += 1;
    }

    let rate = profile.effective_rate_hz();
    let mut samples = vec![0u64; spans.len()];
    let mut weights: Vec<f64> = Vec::new();
    for (s, stack) in profile.stacks.iter().enumerate() {
        let group = &members[offsets[s]..offsets[s + 1]];
        let k = group.len() as u64;
        if k > stack.count || (k == 0 && stack.count > 0) {
            return None;
        }
        if k == 0 {
            continue;
        }
        weights.clear();
        weights.extend(group.iter().map(|&i| {
            let span = &spans[i as usize];
            (span.end.saturating_sub(span.start).as_secs_f64() * rate - 1.0).max(0.0)
        }));
        share_out(stack.count - k, &mut weights, group, &mut samples);
    }

    let mut runs: Vec<Run> = spans
        .iter()
        .zip(samples)
        .map(|(span, n)| Run {
            thread: span.thread,
            stack: span.stack,
            start: span.start,
            end: span.end.max(span.start),
            samples: n,
        })
        .collect();
    if !runs.is_sorted_by_key(|r| r.start) {
        runs.sort_by_key(|r| r.start);
    }
    Some(runs)
}

/// Gives each span of `group` one sample plus its share of `extra` by
/// `weights` (largest remainder; equal shares when all weights are 0).
fn share_out(extra: u64, weights: &mut [f64], group: &[u32], samples: &mut [u64]) {
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        weights.iter_mut().for_each(|w| *w = 1.0);
    }
    let total: f64 = weights.iter().sum();
    let mut given = 0u64;
    let mut remainders: Vec<(f64, usize)> = Vec::with_capacity(group.len());
    for (j, (&i, w)) in group.iter().zip(weights.iter()).enumerate() {
        let exact = extra as f64 * w / total;
        let whole = (exact.floor() as u64).min(extra - given);
        samples[i as usize] = 1 + whole;
        given += whole;
        remainders.push((exact - whole as f64, j));
    }
    remainders.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, j) in remainders.iter().cycle().take((extra - given) as usize) {
        samples[group[j] as usize] += 1;
    }
}

fn laid_out(profile: &Profile) -> Vec<Run> {
    let period = Duration::from_secs_f64(1.0 / profile.effective_rate_hz());
    let mut cursor = vec![Duration::ZERO; profile.threads.len()];
    let mut runs = Vec::with_capacity(profile.stacks.len());
    for (s, stack) in profile.stacks.iter().enumerate() {
        if stack.count == 0 {
            continue;
        }
        let t = stack.thread as usize;
        if t >= cursor.len() {
            cursor.resize(t + 1, Duration::ZERO);
        }
        let start = cursor[t];
        let end = start + period * stack.count.min(u32::MAX as u64) as u32;
        cursor[t] = end;
        runs.push(Run {
            thread: stack.thread,
            stack: s as u32,
            start,
            end,
            samples: stack.count,
        });
    }
    runs.sort_by_key(|r| r.start);
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Span, StackCount, ThreadInfo};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn profile(counts: &[u64], spans: &[(u32, u64, u64)]) -> Profile {
        Profile {
            threads: vec![ThreadInfo {
                pid: 1,
                thread_id: 1,
                os_thread_id: None,
                name: None,
                interpreter_id: 0,
            }],
            stacks: counts
                .iter()
                .map(|&count| StackCount {
                    thread: 0,
                    frames: vec![0],
                    count,
                })
                .collect(),
            timeline: spans
                .iter()
                .map(|&(stack, a, b)| Span {
                    thread: 0,
                    stack,
                    start: ms(a),
                    end: ms(b),
                })
                .collect(),
            rate_hz: 100.0,
            ..Profile::default()
        }
    }

    #[test]
    fn counts_are_shared_by_length_and_add_up() {
        // Stack 0: 5 samples in runs of 30 ms and 20 ms (then 10 ms of stack 1).
        let p = profile(&[5, 1], &[(0, 0, 30), (1, 30, 40), (0, 40, 60)]);
        let (runs, real) = runs(&p);
        assert!(real);
        let samples: Vec<u64> = runs.iter().map(|r| r.samples).collect();
        assert_eq!(samples, [3, 1, 2]);
    }

    #[test]
    fn leftovers_go_to_the_largest_remainders() {
        let p = profile(&[10], &[(0, 0, 10), (0, 10, 20), (0, 20, 30)]);
        let (runs, _) = runs(&p);
        let samples: Vec<u64> = runs.iter().map(|r| r.samples).collect();
        assert_eq!(samples.iter().sum::<u64>(), 10);
        assert_eq!(samples, [4, 3, 3]);
    }

    #[test]
    fn inconsistent_timelines_are_laid_out_from_counts() {
        // Two runs but one sample; and a stack with no run.
        for p in [
            profile(&[1], &[(0, 0, 10), (0, 10, 20)]),
            profile(&[1, 2], &[(0, 0, 10)]),
        ] {
            let (runs, real) = runs(&p);
            assert!(!real);
            assert_eq!(
                runs.iter().map(|r| r.samples).sum::<u64>(),
                p.stacks.iter().map(|s| s.count).sum::<u64>()
            );
        }
        let (runs, _) = runs(&profile(&[2, 3], &[]));
        assert_eq!((runs[1].start, runs[1].end), (ms(20), ms(50)));
    }
}
