//! Chrome Trace Event output.

use std::collections::HashMap;

use serde_json::Value;

use super::*;

fn events(p: &Profile) -> Vec<Value> {
    let doc: Value = serde_json::from_slice(&encode(p, Format::Chrometrace)).expect("valid JSON");
    doc.as_array().expect("a bare array").clone()
}

/// Checks that `B`/`E` nest per (pid, tid), that `ts` never decreases and
/// that nothing stays open; returns (name, begin, end) of every slice.
fn slices(events: &[Value]) -> Vec<(String, f64, f64)> {
    let mut open: HashMap<(i64, i64), Vec<(String, f64)>> = HashMap::new();
    let mut slices = Vec::new();
    let mut last_ts = f64::MIN;
    for e in events.iter().filter(|e| e["ph"] != "M") {
        let ts = e["ts"].as_f64().unwrap();
        assert!(ts >= last_ts, "ts went back: {e}");
        last_ts = ts;
        assert_eq!(e["cat"], "python");
        let key = (e["pid"].as_i64().unwrap(), e["tid"].as_i64().unwrap());
        let name = e["name"].as_str().unwrap().to_owned();
        match e["ph"].as_str().unwrap() {
            "B" => {
                assert!(e["args"]["filename"].is_string(), "{e}");
                open.entry(key).or_default().push((name, ts));
            }
            "E" => {
                let (begun, start) = open
                    .get_mut(&key)
                    .and_then(|s| s.pop())
                    .expect("E without B");
                assert_eq!(begun, name, "E closes the innermost B");
                slices.push((name, start, ts));
            }
            ph => panic!("unexpected phase {ph}"),
        }
    }
    assert!(open.values().all(|s| s.is_empty()), "unbalanced: {open:?}");
    slices
}

fn total(slices: &[(String, f64, f64)], name: &str) -> f64 {
    slices
        .iter()
        .filter(|s| s.0 == name)
        .map(|s| s.2 - s.1)
        .sum()
}

#[test]
fn begins_and_ends_balance_and_follow_the_timeline() {
    let events = events(&two_threads());
    let slices = slices(&events);
    // Main: hot 0–30, cold 30–40, hot 40–70, cold 70–80; worker: hot 0–30,
    // cold from 30 for one period.
    assert!(
        (total(&slices, "hot") - 90_000.0).abs() < 1e-6,
        "{slices:?}"
    );
    assert!(
        (total(&slices, "cold") - 30_000.0).abs() < 1e-6,
        "{slices:?}"
    );
    assert!(
        (total(&slices, "main") - 80_000.0).abs() < 1e-6,
        "{slices:?}"
    );
    // `main` stays open across the hot/cold switches: one slice per thread.
    assert_eq!(slices.iter().filter(|s| s.0 == "main").count(), 1);
    assert_eq!(slices.iter().filter(|s| s.0 == "hot").count(), 3);
}

#[test]
fn events_carry_thread_ids_and_frame_args() {
    let events = events(&two_threads());
    let b = events
        .iter()
        .find(|e| e["ph"] == "B" && e["name"] == "hot")
        .unwrap();
    assert_eq!(b["pid"], 42);
    assert!(b["tid"] == 101 || b["tid"] == 102);
    assert_eq!(
        b["args"],
        serde_json::json!({"filename": "/srv/app/hot.py", "line": 3})
    );
    assert_eq!(b["ts"], 0.0);
}

#[test]
fn metadata_names_process_and_threads() {
    let events = events(&two_threads());
    let meta: Vec<&Value> = events.iter().take_while(|e| e["ph"] == "M").collect();
    assert_eq!(meta.len(), 3);
    assert_eq!(meta[0]["name"], "process_name");
    assert_eq!(meta[0]["args"]["name"], "python app.py");
    let threads: Vec<(i64, &str)> = meta[1..]
        .iter()
        .map(|m| {
            (
                m["tid"].as_i64().unwrap(),
                m["args"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(threads, [(101, "MainThread"), (102, "worker")]);
}

#[test]
fn without_os_ids_the_python_thread_id_is_the_tid() {
    let mut p = two_threads();
    p.threads[0].os_thread_id = None;
    let events = events(&p);
    assert!(events.iter().any(|e| e["tid"] == 0x7f00_0000_1000u64));
}

#[test]
fn line_changes_end_a_frame_and_gaps_close_everything() {
    let mut p = two_threads();
    // Stack 1 becomes `main` at another line: main must end and begin again.
    p.frames.push(py("main", "app.py", 6, 4));
    p.stacks[1].frames = vec![MODULE, 5];
    // And a gap in the worker: hot 0–30, then nothing until cold at 50.
    p.timeline[3] = Span {
        thread: 1,
        stack: 3,
        start: ms(50),
        end: ms(50),
    };
    p.timeline.sort_by_key(|s| s.start);
    let slices = slices(&events(&p));
    assert_eq!(slices.iter().filter(|s| s.0 == "main").count(), 4);
    assert_eq!(slices.iter().filter(|s| s.0 == "<module>").count(), 1);
    assert_eq!(slices.iter().filter(|s| s.0 == "work").count(), 2);
}

#[test]
fn without_a_timeline_stacks_are_laid_out_and_still_balanced() {
    let mut p = with_thread_roots();
    p.timeline.clear();
    let slices = slices(&events(&p));
    assert!((total(&slices, "hot") - 90_000.0).abs() < 1e-6);
    assert!((total(&slices, "thread (101): MainThread") - 80_000.0).abs() < 1e-6);
}
