//! Encoding time on big profiles of 100k unique stacks, 8 threads, with a
//! timeline. Prints the times:
//! `cargo test -p pyspy-output --release perf -- --nocapture`.

use std::time::{Duration, Instant};

use super::*;

/// A cheap deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `n` unique stacks over 2000 frames. `tree`: like a real program, each
/// stack is an earlier one with its last few frames replaced (shared
/// prefixes, 10–60 deep). Otherwise 20–40 random frames each: no sharing,
/// the worst case for chrometrace and flamegraph.
pub(super) fn big(n: u32, tree: bool) -> Profile {
    let frames: Vec<FrameLabel> = (0..2000)
        .map(|i| {
            py(
                &format!("function_{i}"),
                &format!("pkg/module_{}.py", i % 97),
                i % 500 + 1,
                i % 400 + 1,
            )
        })
        .collect();
    let threads: Vec<ThreadInfo> = (0..8)
        .map(|t| ThreadInfo {
            pid: 42,
            thread_id: 0x7f00_0000_0000 + t,
            os_thread_id: Some(100 + t),
            name: Some(format!("t{t}")),
            interpreter_id: 0,
        })
        .collect();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut seen = std::collections::HashSet::new();
    let mut stacks: Vec<StackCount> = Vec::with_capacity(n as usize);
    while stacks.len() < n as usize {
        let i = stacks.len() as u32;
        let frames: Vec<u32> = if tree && i >= 8 {
            let mut f = stacks[rng.below(stacks.len() as u64) as usize]
                .frames
                .clone();
            let cut = f.len().saturating_sub(1 + rng.below(4) as usize).max(1);
            f.truncate(cut);
            let grow = 1 + rng.below(5) as usize;
            while f.len() < 60 && f.len() < cut + grow {
                f.push(rng.below(2000) as u32);
            }
            f
        } else {
            (0..20 + rng.below(21))
                .map(|_| rng.below(2000) as u32)
                .collect()
        };
        if seen.insert(frames.clone()) {
            let thread = if tree { frames[0] % 8 } else { i % 8 };
            stacks.push(StackCount {
                thread,
                frames,
                count: 1 + rng.below(5),
            });
        }
    }
    let mut clock = [Duration::ZERO; 8];
    let mut timeline: Vec<Span> = stacks
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let t = s.thread as usize;
            let start = clock[t];
            clock[t] += ms(10) * s.count as u32;
            Span {
                thread: s.thread,
                stack: i as u32,
                start,
                end: clock[t],
            }
        })
        .collect();
    timeline.sort_by_key(|s| s.start);
    Profile {
        frames,
        threads,
        stacks,
        timeline,
        rate_hz: 100.0,
        duration: *clock.iter().max().unwrap(),
        pid: 42,
        command_line: "python big.py".into(),
        ..Profile::default()
    }
}

fn time_all(name: &str, p: &Profile, limit: Duration) {
    for f in Format::ALL {
        let started = Instant::now();
        let bytes = encode(p, f);
        let took = started.elapsed();
        println!(
            "{name} {f:>12}: {:>8.1} ms, {:>6.1} MB",
            took.as_secs_f64() * 1e3,
            bytes.len() as f64 / 1e6
        );
        assert!(took < limit, "{name} {f} took {took:?}");
    }
}

#[test]
fn a_hundred_thousand_stacks_encode_quickly() {
    // Generous for unoptimised test builds; release times are far lower.
    let (tree, random) = if cfg!(debug_assertions) {
        (30, 60)
    } else {
        (1, 3)
    };
    time_all("tree", &big(100_000, true), Duration::from_secs(tree));
    time_all("random", &big(100_000, false), Duration::from_secs(random));
}
