//! Raw (folded) output.

use super::*;

/// The lines as (stack, count), checking the `STACK COUNT` shape.
fn parse(text: &str) -> Vec<(String, u64)> {
    assert!(text.ends_with('\n'));
    text.lines()
        .map(|line| {
            let (stack, count) = line.rsplit_once(' ').expect("STACK COUNT");
            (stack.to_owned(), count.parse().expect("a count"))
        })
        .collect()
}

#[test]
fn one_sorted_line_per_stack_with_py_spy_labels() {
    let lines = parse(&encode_str(&two_threads(), Format::Raw));
    let expected = [
        ("<module> (app.py:10);main (app.py:5);cold (cold.py:7)", 2),
        ("<module> (app.py:10);main (app.py:5);hot (hot.py:3)", 6),
        ("work (app.py:20);cold (cold.py:7)", 1),
        ("work (app.py:20);hot (hot.py:3)", 3),
    ];
    let expected: Vec<(String, u64)> = expected.iter().map(|(s, c)| (s.to_string(), *c)).collect();
    assert_eq!(lines, expected);
    assert_eq!(lines.iter().map(|l| l.1).sum::<u64>(), 12);
}

#[test]
fn identical_stacks_of_different_threads_merge() {
    let mut p = two_threads();
    p.stacks[2].frames = vec![MODULE, MAIN, HOT];
    let lines = parse(&encode_str(&p, Format::Raw));
    assert_eq!(
        lines[1],
        (
            "<module> (app.py:10);main (app.py:5);hot (hot.py:3)".into(),
            9
        )
    );
    assert_eq!(lines.len(), 3);
    assert_eq!(lines.iter().map(|l| l.1).sum::<u64>(), 12);
}

#[test]
fn thread_roots_keep_threads_apart() {
    let mut p = with_thread_roots();
    p.stacks[2].frames = vec![6, MODULE, MAIN, HOT];
    let lines = parse(&encode_str(&p, Format::Raw));
    assert_eq!(lines.len(), 4);
    assert!(lines.contains(&(
        "thread (101): MainThread;<module> (app.py:10);main (app.py:5);hot (hot.py:3)".into(),
        6
    )));
    assert!(lines.contains(&(
        "thread (102): worker;<module> (app.py:10);main (app.py:5);hot (hot.py:3)".into(),
        3
    )));
}

#[test]
fn lines_without_numbers_or_files() {
    let mut p = two_threads();
    p.frames[MODULE as usize].line = 0;
    p.frames[MAIN as usize].short_filename.clear();
    let text = encode_str(&p, Format::Raw);
    assert!(
        text.starts_with("<module> (app.py);main;cold (cold.py:7) 2\n"),
        "{text}"
    );
}

#[test]
fn frames_sort_as_frames_not_as_text() {
    // "f" < "f (x)" < "f;g" as text would split `f` in two; frame order keeps
    // `f`'s callees together.
    let mut p = two_threads();
    p.frames = vec![
        synthetic("f", FrameKind::Thread),
        synthetic("f (x)", FrameKind::Thread),
        py("g", "g.py", 1, 1),
    ];
    p.stacks = vec![
        StackCount {
            thread: 0,
            frames: vec![0],
            count: 1,
        },
        StackCount {
            thread: 0,
            frames: vec![1],
            count: 1,
        },
        StackCount {
            thread: 0,
            frames: vec![0, 2],
            count: 1,
        },
    ];
    p.timeline.clear();
    let stacks: Vec<String> = parse(&encode_str(&p, Format::Raw))
        .into_iter()
        .map(|l| l.0)
        .collect();
    assert_eq!(stacks, ["f", "f;g (g.py:1)", "f (x)"]);
}
