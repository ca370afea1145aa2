//! The per-sample chain reader on garbage task graphs (cycles, dangling
//! pointers, tasks whose coroutine frames are on the stack): no panic,
//! bounded chains, and the cached second pass agrees with the first.

use super::{TaskSample, TaskSampler, MAX_DEPTH};
use crate::reader::ThreadInput;
use crate::tests::garbage;

#[test]
fn garbage_chains_are_bounded_and_cached_alike() {
    for minor in [11, 12, 13, 14, 15] {
        for seed in 1..30u64 {
            let mut g = garbage(minor, seed * 104_729 + minor as u64, 300);
            let threads = [ThreadInput {
                tstate: 0x10_0040,
                thread_id: 1,
                frames: &g.frames,
            }];
            let mut sampler = TaskSampler::with_layout(g.layout, 0);
            sampler.task_types.insert(g.task_type);
            let mut first = TaskSample::default();
            let mut second = TaskSample::default();
            for &t in &g.tasks {
                sampler.running_chain(&mut g.walker, &threads, None, t, &mut first);
            }
            for &t in &g.tasks {
                sampler.running_chain(&mut g.walker, &threads, None, t, &mut second);
            }
            for c in &first.threads {
                assert!(c.links.len() <= MAX_DEPTH);
                assert!(c.split <= g.frames.len());
            }
            let tasks =
                |s: &TaskSample| s.links.iter().map(|l| (l.task, l.name)).collect::<Vec<_>>();
            assert_eq!(tasks(&first), tasks(&second), "minor {minor} seed {seed}");
            assert_eq!(first.frames.len(), second.frames.len());
        }
    }
}
