//! Counting one thread's stack: into the total and a batch by key, or, when
//! the thread shows the same stack as in the last sample (an idle thread,
//! most often), by the id the total gave it then, with no key built, looked
//! up or hashed.

use std::time::Duration;

use crate::aggregate::Aggregator;

/// One thread's stack in the last sample and the total's id for it.
#[derive(Default)]
pub(crate) struct LastStack {
    interp: usize,
    thread_id: u64,
    /// Synthetic leaves asked for (`<GC>`, `<GIL wait>`).
    flags: u8,
    /// Code object and line of each frame, innermost first.
    frames: Vec<(usize, i32)>,
    /// None: not reusable (unknown, or its ids may be stale).
    stack: Option<u32>,
}

impl LastStack {
    /// The stack id, if `t` shows exactly the stack counted last time.
    pub(crate) fn same(&self, t: &crate::RawThread, flags: u8) -> Option<u32> {
        let same = self.interp == t.interp
            && self.thread_id == t.thread_id
            && self.flags == flags
            && self.frames.len() == t.frames.len()
            && self
                .frames
                .iter()
                .zip(&t.frames)
                .all(|(a, f)| a.0 == f.code && a.1 == f.line);
        self.stack.filter(|_| same)
    }

    /// Its id may be stale (a code object was replaced): counted by key
    /// next time.
    pub(crate) fn forget(&mut self) {
        self.stack = None;
    }

    pub(crate) fn keep(&mut self, t: &crate::RawThread, flags: u8, stack: Option<u32>) {
        self.interp = t.interp;
        self.thread_id = t.thread_id;
        self.flags = flags;
        self.frames.clear();
        self.frames
            .extend(t.frames.iter().map(|f| (f.code, f.line)));
        self.stack = stack;
    }
}

/// Counts `key` (its first id a thread of `total`) in the total and, when
/// batches are kept, in the batch (ids are not shared: re-interned into
/// `bkey`, a reused buffer). Returns the total's stack id.
#[allow(clippy::too_many_arguments)]
pub(crate) fn add_key(
    total: &mut Aggregator,
    batch: Option<&mut crate::sink::Batch>,
    bkey: &mut Vec<u32>,
    key: &[u32],
    pid: i32,
    t: &crate::RawThread,
    name: Option<&str>,
    at: Duration,
) -> Option<u32> {
    let stack = total.add(key, at);
    if let Some(b) = batch.map(|b| &mut b.agg) {
        bkey.clear();
        bkey.push(b.thread_id(pid, t.interpreter_id, t.thread_id, t.os_thread_id, name));
        for &id in &key[1..] {
            bkey.push(b.frame_id(&total.profile().frames[id as usize]));
        }
        b.add(bkey, at);
    }
    stack
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyspy_cpython::RawFrame;

    fn thread(frames: &[(usize, i32)]) -> crate::RawThread {
        crate::RawThread {
            interp: 0x10,
            thread_id: 7,
            frames: frames
                .iter()
                .map(|&(code, line)| RawFrame {
                    addr: 0,
                    code,
                    line,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn only_the_same_stack_of_the_same_thread_is_reused() {
        let t = thread(&[(0x100, 3), (0x200, 9)]);
        let mut last = LastStack::default();
        assert_eq!(last.same(&t, 0), None, "nothing kept yet");
        last.keep(&t, 0, Some(5));
        assert_eq!(last.same(&t, 0), Some(5));
        assert_eq!(
            last.same(&thread(&[(0x100, 4), (0x200, 9)]), 0),
            None,
            "a line moved"
        );
        assert_eq!(
            last.same(&thread(&[(0x100, 3)]), 0),
            None,
            "a frame returned"
        );
        assert_eq!(last.same(&t, 1), None, "a synthetic leaf added");
        let mut other = t.clone();
        other.thread_id = 8;
        assert_eq!(last.same(&other, 0), None, "another thread");
        last.forget();
        assert_eq!(last.same(&t, 0), None, "forgotten");
        last.keep(&t, 0, None);
        assert_eq!(last.same(&t, 0), None, "kept without an id");
    }

    #[test]
    fn a_stack_counted_again_counts_like_its_key() {
        let mut by_key = Aggregator::new(true);
        let mut again = Aggregator::new(true);
        let thread = by_key.thread_id(1, 0, 7, None, None);
        assert_eq!(again.thread_id(1, 0, 7, None, None), thread);
        let key = [thread, 1, 2];
        let ms = Duration::from_millis;
        by_key.add(&key, ms(0));
        by_key.add(&key, ms(10));
        let id = again.add(&key, ms(0)).unwrap();
        again.add_again(id, ms(10));
        assert_eq!(
            format!("{:?}", by_key.profile()),
            format!("{:?}", again.profile())
        );
        assert_eq!(Aggregator::counting().add(&key, ms(0)), None);
    }
}
