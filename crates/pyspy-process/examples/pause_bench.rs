//! `cargo run --release -p pyspy-process --example pause_bench -- PID [N]`:
//! times N pause/resume cycles of a running process, for development.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pid: i32 = args[1].parse().expect("pid");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let p = pyspy_process::Process::open(pid).expect("open");
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = std::time::Instant::now();
        let g = p.pause().expect("pause");
        let paused = t.elapsed();
        drop(g);
        times.push((paused, t.elapsed()));
    }
    times.sort();
    let q = |f: f64| times[((n as f64 - 1.0) * f) as usize];
    println!(
        "pause→paused / pause+resume: p50 {:?} p90 {:?} p99 {:?}",
        q(0.5),
        q(0.9),
        q(0.99)
    );
}
