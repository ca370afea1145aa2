//! `cargo run -p pyspy-sampler --example dump -- PID [--locals] [--nonblocking] [--native]`:
//! prints a dump with read counts, for development.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pid: i32 = args
        .get(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: dump PID");
    let config = pyspy_sampler::DumpConfig {
        locals: args.iter().any(|a| a == "--locals"),
        locals_level: 1,
        nonblocking: args.iter().any(|a| a == "--nonblocking"),
        full_filenames: false,
        subprocesses: false,
        native: args.iter().any(|a| a == "--native"),
        asyncio: false,
    };
    let t = std::time::Instant::now();
    let mut session = match pyspy_sampler::Session::attach(pid) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error [{}]: {e}", e.code());
            std::process::exit(1);
        }
    };
    let attach = t.elapsed();
    let attach_reads = session.process().read_counter().calls();
    let t = std::time::Instant::now();
    match session.dump(&config) {
        Ok(d) => {
            let reads = session.process().read_counter().calls() - attach_reads;
            println!(
                "Python v{} ({}) attach {:?} ({attach_reads} reads), dump {:?} ({reads} reads)",
                d.python_version,
                d.executable,
                attach,
                t.elapsed()
            );
            for th in &d.threads {
                println!(
                    "Thread {:?} {:#x} {:?} active={} gil={}",
                    th.os_thread_id, th.thread_id, th.thread_name, th.active, th.owns_gil
                );
                for f in &th.frames {
                    println!(
                        "    {} ({}:{}) {:?}",
                        f.name,
                        f.short_filename.as_deref().unwrap_or(""),
                        f.line,
                        f.locals.as_ref().map(|l| l
                            .iter()
                            .map(|v| format!("{}={}", v.name, v.repr.as_deref().unwrap_or("?")))
                            .collect::<Vec<_>>())
                    );
                }
            }
        }
        Err(e) => {
            eprintln!("error [{}]: {e}", e.code());
            std::process::exit(1);
        }
    }
}
