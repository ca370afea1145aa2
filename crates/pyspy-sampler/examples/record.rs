//! `cargo run -p pyspy-sampler --example record -- SECONDS RATE (PID | -- CMD...)`:
//! records and prints folded stacks, progress and read counts, for development
//! (`MODE=pause|nonblocking`, `NATIVE=1` for native frames, `IDLE=1` for
//! idle threads too: no `/proc` read of thread states).
use std::time::Duration;

use pyspy_sampler::{RecordConfig, Recorder, Target};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: f64 = args[0].parse().expect("seconds");
    let rate: f64 = args[1].parse().expect("rate");
    let target = if args[2] == "--" {
        Target::Command(args[3..].to_vec())
    } else {
        Target::Pid(args[2].parse().expect("pid"))
    };
    let config = RecordConfig {
        rate_hz: rate,
        duration: Some(Duration::from_secs_f64(secs)),
        mode: match std::env::var("MODE").as_deref() {
            Ok("pause") => pyspy_sampler::ReadMode::Pause,
            Ok("nonblocking") => pyspy_sampler::ReadMode::Nonblocking,
            _ => pyspy_sampler::ReadMode::Consistent,
        },
        native: std::env::var_os("NATIVE").is_some(),
        include_idle: std::env::var_os("IDLE").is_some(),
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    let cpu0 = cpu_time();
    let rec = match Recorder::start(&target, config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error [{}]: {e}", e.code());
            std::process::exit(1);
        }
    };
    // Allocations between two progress reads, 0.5 s into the run (start-up
    // left out): per attempt, every thread of this process counted.
    std::thread::sleep(Duration::from_millis(500));
    let (a0, p0) = (allocations(), rec.progress().attempts);
    while !rec.is_finished() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let progress = rec.progress();
    let allocs = (allocations() - a0) as f64 / (progress.attempts - p0).max(1) as f64;
    let done = rec.finish().unwrap();
    let cpu = cpu_time() - cpu0;
    let p = &done.profile;
    for s in &p.stacks {
        let names: Vec<String> = s
            .frames
            .iter()
            .map(|&f| {
                let l = &p.frames[f as usize];
                format!("{} ({}:{})", l.name, l.short_filename, l.line)
            })
            .collect();
        println!("{} {}", names.join(";"), s.count);
    }
    eprintln!(
        "reason {:?} exit {:?} samples {} attempts {} errors {} torn {} paused {} duration {:?} wall {:?} cpu {:?} ({:.1} us/attempt) allocs/attempt {allocs:.2}",
        done.reason, done.exit_status, p.samples, progress.attempts, p.errors, progress.torn_reads, progress.paused_samples, p.duration, t0.elapsed(), cpu,
        cpu.as_secs_f64() * 1e6 / (progress.attempts as f64).max(1.0)
    );
}

#[cfg(target_os = "linux")]
fn cpu_time() -> Duration {
    let mut ru: LinuxRusage = unsafe { std::mem::zeroed() };
    unsafe { getrusage(0, &mut ru) };
    Duration::from_micros(
        (ru.utime_s * 1_000_000 + ru.utime_us + ru.stime_s * 1_000_000 + ru.stime_us) as u64,
    )
}

#[cfg(not(target_os = "linux"))]
fn cpu_time() -> Duration {
    Duration::ZERO
}

/// `struct rusage` on 64-bit Linux (two timevals, then 14 longs).
#[cfg(target_os = "linux")]
#[repr(C)]
struct LinuxRusage {
    utime_s: i64,
    utime_us: i64,
    stime_s: i64,
    stime_us: i64,
    rest: [i64; 14],
}

#[cfg(target_os = "linux")]
extern "C" {
    fn getrusage(who: i32, usage: *mut LinuxRusage) -> i32;
}
