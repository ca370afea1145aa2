//! Pprof output: decoded by a minimal protobuf reader here, and read by
//! `go tool pprof`.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use super::*;
use crate::Clock;

/// A decoded field: a varint or the bytes of a length-delimited one.
#[derive(Debug, Clone, Copy)]
enum Field<'a> {
    Int(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = buf[*pos];
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return v;
        }
    }
    panic!("varint too long");
}

/// Every (field number, value) of one message, in order.
fn fields(buf: &[u8]) -> Vec<(u32, Field<'_>)> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let key = varint(buf, &mut pos);
        let field = match key & 7 {
            0 => Field::Int(varint(buf, &mut pos)),
            2 => {
                let len = varint(buf, &mut pos) as usize;
                pos += len;
                Field::Bytes(&buf[pos - len..pos])
            }
            wire => panic!("unexpected wire type {wire}"),
        };
        out.push(((key >> 3) as u32, field));
    }
    out
}

fn ints(msg: &[(u32, Field)], n: u32) -> Vec<u64> {
    let mut out = Vec::new();
    for (f, v) in msg.iter().filter(|(f, _)| *f == n) {
        match *v {
            Field::Int(i) => out.push(i),
            Field::Bytes(b) => {
                let mut pos = 0;
                while pos < b.len() {
                    out.push(varint(b, &mut pos));
                }
            }
        }
        let _ = f;
    }
    out
}

fn int(msg: &[(u32, Field)], n: u32) -> u64 {
    ints(msg, n).last().copied().unwrap_or(0)
}

fn messages<'a>(msg: &[(u32, Field<'a>)], n: u32) -> Vec<Vec<(u32, Field<'a>)>> {
    msg.iter()
        .filter(|(f, _)| *f == n)
        .map(|(_, v)| match v {
            Field::Bytes(b) => fields(b),
            Field::Int(_) => panic!("field {n} is not a message"),
        })
        .collect()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    assert_eq!(&bytes[..2], [0x1f, 0x8b], "gzip magic");
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// What a reader makes of the profile: strings, flat time per function
/// name, and the labels of each sample.
struct Decoded {
    strings: Vec<String>,
    sample_types: Vec<(String, String)>,
    flat: HashMap<String, u64>,
    labels: Vec<HashMap<String, String>>,
    top: Vec<(u32, Field<'static>)>,
}

fn decode(bytes: &[u8]) -> Decoded {
    let raw: &'static [u8] = Box::leak(gunzip(bytes).into_boxed_slice());
    let top = fields(raw);
    let strings: Vec<String> = top
        .iter()
        .filter(|(f, _)| *f == 6)
        .map(|(_, v)| match v {
            Field::Bytes(b) => String::from_utf8(b.to_vec()).unwrap(),
            Field::Int(_) => panic!("string_table entry is not bytes"),
        })
        .collect();
    let s = |i: u64| strings[i as usize].clone();
    let sample_types = messages(&top, 1)
        .iter()
        .map(|vt| (s(int(vt, 1)), s(int(vt, 2))))
        .collect();
    let functions: HashMap<u64, String> = messages(&top, 5)
        .iter()
        .map(|f| (int(f, 1), s(int(f, 2))))
        .collect();
    let locations: HashMap<u64, u64> = messages(&top, 4)
        .iter()
        .map(|l| (int(l, 1), int(&messages(l, 4)[0], 1)))
        .collect();
    let mut flat = HashMap::new();
    let mut labels = Vec::new();
    for sample in messages(&top, 2) {
        let locs = ints(&sample, 1);
        let values = ints(&sample, 2);
        assert_eq!(values.len(), 2);
        let leaf = &functions[&locations[&locs[0]]];
        *flat.entry(leaf.clone()).or_insert(0) += values[1];
        let mut l = HashMap::new();
        for label in messages(&sample, 3) {
            let value = if int(&label, 2) != 0 {
                s(int(&label, 2))
            } else {
                int(&label, 3).to_string()
            };
            l.insert(s(int(&label, 1)), value);
        }
        labels.push(l);
    }
    Decoded {
        strings,
        sample_types,
        flat,
        labels,
        top,
    }
}

#[test]
fn decodes_as_a_standard_profile() {
    let d = decode(&encode(&two_threads(), Format::Pprof));
    assert_eq!(d.strings[0], "");
    let st = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        d.sample_types,
        [st("samples", "count"), st("cpu", "nanoseconds")]
    );
    assert_eq!(d.flat["hot"], 9 * 10_000_000);
    assert_eq!(d.flat["cold"], 3 * 10_000_000);
    let period_type = &messages(&d.top, 11)[0];
    assert_eq!(d.strings[int(period_type, 1) as usize], "cpu");
    assert_eq!(int(&d.top, 12), 10_000_000);
    assert_eq!(int(&d.top, 9), 1_700_000_000_123_456_789);
    assert_eq!(int(&d.top, 10), 80_000_000);
    assert_eq!(d.strings[int(&d.top, 14) as usize], "cpu");
    let comments: Vec<&str> = ints(&d.top, 13)
        .iter()
        .map(|&i| d.strings[i as usize].as_str())
        .collect();
    assert!(comments.contains(&"command: python app.py"), "{comments:?}");
}

#[test]
fn functions_and_locations_are_shared_and_leaf_first() {
    let d = decode(&encode(&two_threads(), Format::Pprof));
    let functions = messages(&d.top, 5);
    assert_eq!(functions.len(), 5);
    let hot = functions
        .iter()
        .find(|f| d.strings[int(f, 2) as usize] == "hot")
        .unwrap();
    assert_eq!(
        int(hot, 3),
        0,
        "no system_name: go tool pprof would demangle `<module>`"
    );
    assert_eq!(d.strings[int(hot, 4) as usize], "/srv/app/hot.py");
    assert_eq!(int(hot, 5), 1);
    let locations = messages(&d.top, 4);
    assert_eq!(locations.len(), 5);
    let samples = messages(&d.top, 2);
    assert_eq!(samples.len(), 4);
    let first = ints(&samples[0], 1);
    let hot_loc = locations
        .iter()
        .find(|l| int(&messages(l, 4)[0], 1) == int(hot, 1))
        .unwrap();
    assert_eq!(first.len(), 3);
    assert_eq!(first[0], int(hot_loc, 1), "leaf first");
    assert_eq!(int(&messages(hot_loc, 4)[0], 2), 3, "line");
}

#[test]
fn samples_carry_thread_labels() {
    let d = decode(&encode(&two_threads(), Format::Pprof));
    let main = &d.labels[0];
    assert_eq!(main["thread name"], "MainThread");
    assert_eq!(main["thread id"], 0x7f00_0000_1000u64.to_string());
    assert_eq!(main["thread native id"], "101");
    assert_eq!(main["pid"], "42");
    assert_eq!(d.labels[2]["thread name"], "worker");
}

#[test]
fn only_sub_interpreter_samples_carry_an_interpreter_label() {
    let mut p = two_threads();
    p.threads[1].interpreter_id = 2;
    let d = decode(&encode(&p, Format::Pprof));
    assert!(
        !d.labels[0].contains_key("interpreter"),
        "{:?}",
        d.labels[0]
    );
    assert_eq!(d.labels[2]["interpreter"], "2");
    assert_eq!(d.labels[2]["thread name"], "worker");
}

#[test]
fn snake_case_labels_for_pyroscope() {
    let options = OutputOptions {
        snake_case_labels: true,
        ..Default::default()
    };
    let d = decode(&encode_to_vec(&two_threads(), Format::Pprof, &options).unwrap());
    let main = &d.labels[0];
    assert_eq!(main["thread_name"], "MainThread");
    assert_eq!(main["thread_native_id"], "101");
    assert!(main.keys().all(|k| !k.contains(' ')), "{main:?}");
}

#[test]
fn samples_under_a_task_carry_its_name() {
    // <module>; <task Task-1>; main; <task worker-0>; hot (and cold, no task)
    let mut p = two_threads();
    p.frames.push(synthetic("<task Task-1>", FrameKind::Task));
    p.frames.push(synthetic("<task worker-0>", FrameKind::Task));
    p.stacks[0].frames = vec![MODULE, 5, MAIN, 6, HOT];
    let d = decode(&encode(&p, Format::Pprof));
    assert_eq!(d.labels[0]["task name"], "worker-0", "the innermost task");
    assert!(!d.labels[1].contains_key("task name"));
    let raw = encode_str(&p, Format::Raw);
    assert!(
        raw.contains(
            "<module> (app.py:10);<task Task-1>;main (app.py:5);<task worker-0>;hot (hot.py:3) 6"
        ),
        "{raw}"
    );
    let options = OutputOptions {
        snake_case_labels: true,
        ..Default::default()
    };
    let d = decode(&encode_to_vec(&p, Format::Pprof, &options).unwrap());
    assert_eq!(d.labels[0]["task_name"], "worker-0");
}

#[test]
fn wall_clock_is_named_wall() {
    let options = OutputOptions {
        clock: Clock::Wall,
        ..Default::default()
    };
    let d = decode(&encode_to_vec(&two_threads(), Format::Pprof, &options).unwrap());
    assert_eq!(d.sample_types[1].0, "wall");
}

/// `go tool pprof` with `args`, finding `go` on PATH or in /usr/local/go/bin.
fn go_pprof(args: &[&str], file: &Path) -> String {
    let path = format!(
        "{}:/usr/local/go/bin",
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("go")
        .env("PATH", path)
        .env("HOME", std::env::temp_dir())
        .arg("tool")
        .arg("pprof")
        .args(args)
        .arg(file)
        .output()
        .expect("this test needs Go: `go` was not found on PATH nor in /usr/local/go/bin");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "go tool pprof failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn go_tool_pprof_lists_the_hot_function_first() {
    let dir = std::env::temp_dir().join(format!("pyspy-output-pprof-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("profile.pb.gz");
    std::fs::write(&file, encode(&with_thread_roots(), Format::Pprof)).unwrap();
    let top = go_pprof(&["-top", "-nodecount=5"], &file);
    let all = go_pprof(&["-top"], &file);
    let raw = go_pprof(&["-raw"], &file);
    std::fs::remove_dir_all(&dir).unwrap();

    // Rows after the `flat  flat%  sum%  cum  cum%` header; the name is last.
    let rows: Vec<&str> = top
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("flat"))
        .skip(1)
        .collect();
    let first = rows.first().unwrap_or_else(|| panic!("no rows in:\n{top}"));
    assert!(first.ends_with(" hot"), "hot is not first:\n{top}");
    assert!(first.contains("75.00%"), "{top}");
    assert!(rows.iter().any(|r| r.ends_with(" cold")), "{top}");
    assert!(all.lines().any(|r| r.ends_with(" <module>")), "{all}");
    assert!(!all.contains("<unknown>"), "{all}");
    assert!(raw.contains("thread name:[MainThread]"), "{raw}");
    assert!(raw.contains("PeriodType: cpu nanoseconds"), "{raw}");
}
