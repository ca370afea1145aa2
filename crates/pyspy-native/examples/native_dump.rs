//! Prints every thread's merged native + Python stack of a process once.
//!
//!     cargo run -p pyspy-native --example native_dump -- PID [--raw]
//!
//! With `--raw`, also the unmerged native frames (instruction pointers and
//! what each resolved to).
use std::sync::Arc;
use std::time::Instant;

use pyspy_cpython::{find_interpreter, StackWalker};
use pyspy_native::{read_registers, MergedFrame, NativeStacks};
use pyspy_process::{Pid, Process};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pid: Pid = args
        .first()
        .ok_or("usage: native_dump PID [--raw]")?
        .parse()?;
    let raw_too = args.iter().any(|a| a == "--raw");
    let loops: usize = args
        .iter()
        .position(|a| a == "--loop")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let t0 = Instant::now();
    let process = Arc::new(Process::open(pid)?);
    let interpreter = find_interpreter(&process)?;
    let mut walker = StackWalker::new(process.clone(), interpreter.layout);
    let mut native = NativeStacks::new(process.clone(), &interpreter);
    let attached = t0.elapsed();
    if loops > 0 {
        return sample_loop(&process, &interpreter, &mut walker, &mut native, loops);
    }
    let t1 = Instant::now();
    let guard = process.pause()?;
    native.begin_sample();
    let states = walker.thread_states(interpreter.interp)?;
    let mut out = Vec::new();
    for ts in &states {
        let mut frames = Vec::new();
        walker.begin_read();
        walker.raw_frames(ts.top_frame, &mut frames)?;
        println!("Thread {} (tid {}):", ts.thread_id, ts.native_thread_id);
        if raw_too {
            let mut ips = Vec::new();
            let regs = read_registers(pid, ts.native_thread_id as Pid)?;
            let end = native.unwind(regs, &mut ips);
            for (ip, sp) in &ips {
                println!("    raw {ip:#x} sp {sp:#x}");
            }
            println!("    raw end: {end:?}");
        }
        let merged = read_registers(pid, ts.native_thread_id as Pid)
            .and_then(|regs| native.merge(ts.native_thread_id as Pid, regs, ts, &frames, &mut out));
        match merged {
            Ok(_) => {
                for m in &out {
                    match *m {
                        MergedFrame::Python(i) => {
                            let info = walker.code(frames[i].code)?;
                            println!("    {} ({}:{})", info.name, info.filename, frames[i].line);
                        }
                        MergedFrame::Native(id) => {
                            let s = native.symbol(id);
                            match &s.file {
                                Some(f) => {
                                    println!("    {} ({}:{}) [{}]", s.name, f, s.line, s.module)
                                }
                                None => println!("    {} ({})", s.name, s.module),
                            }
                        }
                    }
                }
            }
            Err(e) => println!("    error: {e}"),
        }
    }
    drop(guard);
    eprintln!(
        "attach {:?}, sample {:?}, {:?}",
        attached,
        t1.elapsed(),
        native.stats()
    );
    Ok(())
}

/// Samples `n` times (every thread, paused), counting merge failures.
fn sample_loop(
    process: &Arc<Process>,
    interpreter: &pyspy_cpython::Interpreter,
    walker: &mut StackWalker<Arc<Process>>,
    native: &mut NativeStacks,
    n: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut errors: std::collections::BTreeMap<String, usize> = Default::default();
    let mut out = Vec::new();
    let mut frames = Vec::new();
    let (mut ok, mut walk_errors) = (0usize, 0usize);
    let t = Instant::now();
    let mut paused = std::time::Duration::ZERO;
    let mut merging = std::time::Duration::ZERO;
    for _ in 0..n {
        let p = Instant::now();
        let guard = process.pause()?;
        native.begin_sample();
        walker.begin_read();
        let states = walker.thread_states(interpreter.interp)?;
        for ts in &states {
            frames.clear();
            if walker.raw_frames(ts.top_frame, &mut frames).is_err() {
                walk_errors += 1;
                continue;
            }
            if std::env::var_os("NO_MERGE").is_some() {
                continue;
            }
            let m = Instant::now();
            let tid = ts.native_thread_id as Pid;
            let r = read_registers(process.pid(), tid)
                .and_then(|regs| native.merge(tid, regs, ts, &frames, &mut out));
            merging += m.elapsed();
            match r {
                Ok(_) => ok += 1,
                Err(e) => {
                    // One line per kind of failure (thread ids vary).
                    let msg = e.to_string();
                    let key = msg
                        .split_once(" of thread ")
                        .map(|(a, b)| format!("{a}: {}", b.split_once(": ").map_or(b, |x| x.1)))
                        .unwrap_or(msg);
                    *errors.entry(key).or_default() += 1;
                }
            }
        }
        drop(guard);
        paused += p.elapsed();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    println!(
        "{n} samples in {:?} (paused {:?} per sample, merging {:?}): {ok} merged, {walk_errors} walk errors, {:?}",
        t.elapsed(),
        paused / n as u32,
        merging / n as u32,
        native.stats()
    );
    for (e, c) in errors {
        println!("  {c:6}  {e}");
    }
    Ok(())
}
