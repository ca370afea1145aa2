//! The upload loop against a scripted transport: retries, backoff, drops,
//! refusals, the flush at the end, and warnings once per kind.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use pyspy_output::{FrameKind, FrameLabel, StackCount, ThreadInfo};

use super::*;
use crate::queue::Window;

/// Answers from a script, then `Accepted`; counts the sends.
struct Scripted {
    script: VecDeque<Outcome>,
    then: Outcome,
    sends: Arc<Mutex<u64>>,
}

impl Transport for Scripted {
    fn send(&mut self, _body: &[u8]) -> Outcome {
        *self.sends.lock().unwrap() += 1;
        self.script.pop_front().unwrap_or_else(|| self.then.clone())
    }
}

fn config(max_windows: usize) -> PushConfig {
    PushConfig {
        interval: Duration::from_secs(3600), // windows come from the tests
        max_windows,
        flush_timeout: Duration::from_millis(200),
        retry_initial: Duration::from_millis(1),
        retry_max: Duration::from_millis(5),
        ..PushConfig::new("http://127.0.0.1:9", "app")
    }
}

fn start(
    max_windows: usize,
    script: Vec<Outcome>,
    then: Outcome,
    source: Option<Profile>,
) -> (Pusher, Arc<Mutex<u64>>) {
    let sends = Arc::new(Mutex::new(0));
    let transport = Scripted {
        script: script.into(),
        then,
        sends: sends.clone(),
    };
    let cfg = config(max_windows);
    let endpoint = cfg.validate().unwrap();
    let mut source = source;
    let pusher =
        Pusher::start_with(cfg, endpoint, Box::new(transport), move || source.take()).unwrap();
    (pusher, sends)
}

/// Queues `n` windows at once (under one lock: the upload thread cannot
/// take any in between).
fn enqueue(p: &Pusher, n: usize) {
    let mut st = p.shared.lock();
    for _ in 0..n {
        let dropped = st.queue.push_back(Window {
            body: vec![b'x'; 10],
            samples: 2,
        });
        upload::note_dropped(&mut st, dropped, "u");
    }
    drop(st);
    p.shared.wake.notify_all();
}

fn one_stack() -> Profile {
    Profile {
        frames: vec![FrameLabel {
            name: "f".into(),
            filename: "f.py".into(),
            short_filename: "f.py".into(),
            line: 3,
            first_line: 1,
            kind: FrameKind::Python,
        }],
        threads: vec![ThreadInfo {
            pid: std::process::id() as i32,
            thread_id: 1,
            os_thread_id: None,
            name: None,
            interpreter_id: 0,
        }],
        stacks: vec![StackCount {
            thread: 0,
            frames: vec![0],
            count: 7,
        }],
        samples: 7,
        ..Profile::default()
    }
}

#[test]
fn finish_cuts_and_sends_the_last_window() {
    let (p, sends) = start(10, vec![], Outcome::Accepted, Some(one_stack()));
    let (stats, _) = p.finish();
    assert_eq!((stats.pushed, stats.samples, stats.dropped), (1, 7, 0));
    assert!(stats.bytes > 0);
    assert_eq!(*sends.lock().unwrap(), 1);
}

#[test]
fn retries_until_the_server_answers_and_warns_once() {
    let down = Outcome::Unreachable("connection refused".into());
    let (p, sends) = start(10, vec![down.clone(); 4], Outcome::Accepted, None);
    enqueue(&p, 3);
    let warnings_before_finish = {
        // Wait (no deadline: the loop must get there) until all are sent.
        while p.stats().pushed < 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
        p.take_warnings()
    };
    let (stats, _) = p.finish();
    assert_eq!((stats.pushed, stats.retries, stats.dropped), (3, 4, 0));
    assert_eq!(*sends.lock().unwrap(), 7);
    assert_eq!(
        warnings_before_finish.len(),
        2,
        "{warnings_before_finish:?}"
    );
    assert!(warnings_before_finish[0].contains("connection refused"));
    assert!(warnings_before_finish[1].contains("accepts windows again"));
}

#[test]
fn a_full_queue_drops_the_oldest_and_the_end_counts_the_unsent() {
    let down = Outcome::Status(503, "unavailable".into());
    let (p, _) = start(2, vec![], down, None);
    enqueue(&p, 5);
    let (stats, _) = p.finish();
    assert_eq!(stats.pushed, 0);
    assert_eq!(stats.dropped, 5, "3 by the queue, 2 unsent at the end");
    assert_eq!(stats.queued, 0);
}

#[test]
fn warnings_name_each_kind_once() {
    let down = Outcome::Status(503, "unavailable".into());
    let (p, _) = start(2, vec![], down, None);
    enqueue(&p, 5);
    enqueue(&p, 5);
    while p.stats().retries < 3 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let warnings = p.take_warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("queue for u full")));
    assert!(warnings.iter().any(|w| w.contains("HTTP 503: unavailable")));
    p.finish();
}

#[test]
fn refused_windows_are_dropped_not_retried() {
    let refused = Outcome::Status(400, "bad profile".into());
    let (p, sends) = start(10, vec![refused], Outcome::Accepted, None);
    enqueue(&p, 2);
    let (stats, _) = p.finish();
    assert_eq!((stats.failed, stats.pushed, stats.retries), (1, 1, 0));
    assert_eq!(*sends.lock().unwrap(), 2);
}

#[test]
fn tags_and_options_are_checked() {
    assert_eq!(
        parse_tag("env=prod").unwrap(),
        ("env".into(), "prod".into())
    );
    assert_eq!(parse_tag("k=a=b").unwrap().1, "a=b");
    for bad in [
        "env",
        "=x",
        "1x=y",
        "a-b=c",
        "env=",
        "pid=3",
        "service_name=x",
    ] {
        assert_eq!(parse_tag(bad).unwrap_err().code(), "EINVAL", "{bad}");
    }
    let mut cfg = config(1);
    cfg.interval = Duration::ZERO;
    assert_eq!(cfg.validate().unwrap_err().code(), "EINVAL");
    let mut cfg = config(1);
    cfg.app_name = String::new();
    assert_eq!(cfg.validate().unwrap_err().code(), "EINVAL");
}

#[test]
fn an_unreachable_server_fails_the_check() {
    // A port just freed on loopback: the connection is refused at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let cfg = PushConfig::new(format!("http://127.0.0.1:{port}"), "app");
    let err = Pusher::check(&cfg).unwrap_err();
    assert_eq!(err.code(), "EPUSH");
    assert!(err.to_string().contains("cannot be reached"), "{err}");
}
