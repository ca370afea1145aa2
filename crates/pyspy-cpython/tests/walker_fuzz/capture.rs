//! Capturing the corpus from live interpreters (an ignored test: run it by
//! hand to regenerate `tests/corpus/`):
//!
//! ```text
//! cargo test -p pyspy-cpython --test walker_fuzz -- --ignored capture_corpus --nocapture
//! ```
//!
//! Each interpreter runs `test/fixtures/hardening_snapshot.py` (threads in
//! deep recursion, a generator, locals of every rendered type, a non-ASCII
//! thread name). Once it prints READY it is paused, read once through a
//! [`Recording`] adapter that keeps every byte range that was read, resumed
//! and killed; the ranges become `tests/corpus/<version>.snap` (`3.13.5t.snap`
//! for the free-threaded build). Missing interpreters are skipped (see
//! `test/pythons/install.sh`, `scripts/freethreaded.mjs`); `PYSPY_CAPTURE=3.13t`
//! captures only the labels listed.

use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pyspy_cpython::find_interpreter;
use pyspy_process::{Memory, Process, ReadError};

use crate::exercise::read_all;
use crate::snapshot::{corpus_dir, Snapshot};

/// Remote memory that remembers every range it read successfully.
pub struct Recording<M> {
    pub inner: M,
    pub seen: RefCell<Vec<(usize, Vec<u8>)>>,
}

impl<M: Memory> Memory for Recording<M> {
    fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), ReadError> {
        self.inner.read(addr, buf)?;
        self.seen.borrow_mut().push((addr, buf.to_vec()));
        Ok(())
    }

    fn read_many(&self, reads: &mut [(usize, &mut [u8])]) -> Result<(), ReadError> {
        self.inner.read_many(reads)?;
        let mut seen = self.seen.borrow_mut();
        for (addr, buf) in reads.iter() {
            seen.push((*addr, buf.to_vec()));
        }
        Ok(())
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// (label, chroot root or None, interpreter path inside it).
fn interpreters() -> Vec<(String, Option<PathBuf>, String)> {
    let roots = repo_root().join(".cache/pythons/roots");
    let mut out = vec![
        ("3.11".to_owned(), None, "/usr/bin/python3.11".to_owned()),
        (
            "3.12".to_owned(),
            None,
            "/root/.pyenv/versions/3.12.1/bin/python3.12".to_owned(),
        ),
    ];
    for minor in [13, 14, 15] {
        out.push((
            format!("3.{minor}"),
            Some(roots.join(format!("debian-3.{minor}"))),
            format!("/usr/bin/python3.{minor}"),
        ));
    }
    // The free-threaded build scripts/freethreaded.mjs makes once per machine.
    let home = std::env::var("HOME").unwrap_or_default();
    out.push((
        "3.13t".to_owned(),
        None,
        std::env::var("PYSPY_PYTHON_313T").unwrap_or_else(|_| {
            format!("{home}/.cache/pyspy-node/cpython-3.13.5t/bin/python3.13t")
        }),
    ));
    // PYSPY_CAPTURE=3.13t,3.15 captures only those (the others' files stay as committed).
    if let Ok(only) = std::env::var("PYSPY_CAPTURE") {
        let only: Vec<&str> = only.split(',').collect();
        out.retain(|(label, _, _)| only.contains(&label.as_str()));
    }
    out
}

fn capture_one(label: &str, root: Option<&Path>, python: &str) -> Option<Snapshot> {
    let fixture = repo_root().join("test/fixtures/hardening_snapshot.py");
    let (mut cmd, copied) = match root {
        Some(root) => {
            if !root.join(python.trim_start_matches('/')).exists() {
                eprintln!("{label}: no {python} in {}: skipped", root.display());
                return None;
            }
            let inside = format!("/tmp/pyspy-hardening-snapshot-{}.py", std::process::id());
            let host = root.join(inside.trim_start_matches('/'));
            std::fs::copy(&fixture, &host).expect("copy fixture into chroot");
            let mut c = Command::new("chroot");
            c.arg(root).arg(python).arg(&inside);
            (c, Some(host))
        }
        None => {
            if !Path::new(python).exists() {
                eprintln!("{label}: no {python}: skipped");
                return None;
            }
            let mut c = Command::new(python);
            c.arg(&fixture);
            (c, None)
        }
    };
    let mut child = cmd
        .args(["--lifetime", "120"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn fixture");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("fixture output");
    let report = line
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("{label}: fixture said {line:?}"))
        .trim()
        .to_owned();
    let process = Process::open(child.id() as i32).expect("open fixture");
    let interpreter = find_interpreter(&process).expect("find interpreter");
    let recording = Recording {
        inner: process,
        seen: RefCell::new(Vec::new()),
    };
    let guard = recording.inner.pause().expect("pause fixture");
    let trace = read_all(
        &recording,
        interpreter.layout.version,
        interpreter.runtime,
        interpreter.interp,
        1,
        |_| {},
    );
    drop(guard);
    let _ = child.kill();
    let _ = child.wait();
    if let Some(host) = copied {
        let _ = std::fs::remove_file(host);
    }
    let report = match root {
        Some(root) => root.join(report.trim_start_matches('/')),
        None => PathBuf::from(report),
    };
    let _ = std::fs::remove_file(report);
    let failed: Vec<_> = trace.steps.iter().filter(|s| s.1 != "ok").collect();
    assert!(
        failed.is_empty(),
        "{label}: the live read failed: {failed:?}"
    );
    let mut snap = Snapshot {
        name: label.to_owned(),
        version: interpreter.layout.version,
        runtime: interpreter.runtime,
        interp: interpreter.interp,
        ranges: recording.seen.into_inner(),
    };
    snap.normalize();
    eprintln!(
        "{label} ({}): {} threads, {} frames, {} locals; {} ranges, {} bytes",
        snap.version,
        trace.threads,
        trace.frames,
        trace.locals,
        snap.ranges.len(),
        snap.bytes()
    );
    Some(snap)
}

#[test]
#[ignore = "needs live interpreters; regenerates tests/corpus"]
fn capture_corpus() {
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (label, root, python) in interpreters() {
        if let Some(snap) = capture_one(&label, root.as_deref(), &python) {
            let v = snap.version;
            // A free-threaded build shares its version number with the GIL build.
            let t = if label.ends_with('t') { "t" } else { "" };
            let path = dir.join(format!("{}.{}.{}{t}.snap", v.major, v.minor, v.patch));
            std::fs::write(&path, snap.encode()).unwrap();
            // The file replays: one clean read of the fake memory.
            let back = Snapshot::decode(&label, &std::fs::read(&path).unwrap()).unwrap();
            let replay = read_all(
                back.memory(),
                back.version,
                back.runtime,
                back.interp,
                1,
                |_| {},
            );
            let failed: Vec<_> = replay.steps.iter().filter(|s| s.1 != "ok").collect();
            assert!(failed.is_empty(), "{label}: the replay failed: {failed:?}");
            eprintln!("wrote {}", path.display());
        }
    }
}
