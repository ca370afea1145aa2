//! Native stacks of paused threads, merged with their Python frames
//! (`--native`).
//!
//! [`NativeStacks`] belongs to one attached process. For each thread of a
//! sample, while the target is paused *by the calling thread* (ptrace
//! requests are answered to the tracer thread only), [`NativeStacks::merge`]
//! reads the thread's registers (`PTRACE_GETREGS`), unwinds its native
//! stack with the call-frame information of each mapped binary (`.eh_frame`
//! or `.debug_frame`, read with gimli from the file as the target sees it,
//! through `/proc/PID/root` or `/proc/PID/map_files`), falling back to the
//! frame-pointer chain, and symbolizes each frame (ELF symbols, DWARF line
//! tables where present, C++/Rust/Cython names demangled). Then it merges:
//! walking the native frames from the innermost, each call of the
//! interpreter's evaluation loop is replaced by the Python frames it runs
//! (see `pyframes.rs`), other interpreter frames and thread start-up frames
//! are hidden, and every other frame is kept with its module's name.
//!
//! Everything is pure Rust (no libunwind), cached per binary (parsed once,
//! on first use) and per address (unwind rules, symbols). Linux x86-64.
#![deny(missing_docs)]

mod blocks;
mod elf;
mod error;
mod modules;
mod pyframes;
mod regs;
mod symbols;
mod unwind;

use std::collections::HashMap;
use std::sync::Arc;

use gimli::UnwindContext;
use pyspy_cpython::{Interpreter, RawFrame, ThreadState};
use pyspy_process::{Pid, Process};

pub use error::Error;
pub use regs::{read_registers, Registers};
pub use unwind::{End, MAX_NATIVE_FRAMES};

use blocks::Blocks;
use modules::Modules;
use pyframes::{FrameGroups, Group};
use symbols::Kind;

/// Whether native stacks can be read on this platform.
pub const SUPPORTED: bool = cfg!(all(target_os = "linux", target_arch = "x86_64"));

/// Why `--native` cannot be combined with `--nonblocking`.
pub const NONBLOCKING_REFUSAL: &str = "--native cannot be combined with --nonblocking: a thread's \
     native stack can only be read while the thread is paused (its registers come from ptrace, \
     and its stack changes with every instruction it runs)";

/// One frame of a merged stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergedFrame {
    /// The Python frame at this index of the thread's raw frames.
    Python(usize),
    /// A native frame: see [`NativeStacks::symbol`].
    Native(u32),
}

/// A native frame as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeSymbol {
    /// Function name, demangled; `0x...` (the address) when unknown.
    pub name: String,
    /// The binary's file name, e.g. `libc.so.6` or `_ext.cpython-312-x86_64-linux-gnu.so`
    /// (`?` when the address is in no mapped file).
    pub module: Arc<str>,
    /// The binary's path as the target sees it.
    pub module_path: Arc<str>,
    /// Source file, from DWARF line tables.
    pub file: Option<String>,
    /// Source line (0 when unknown).
    pub line: u32,
}

/// What one address turned into, cached.
struct AddrInfo {
    kind: Kind,
    /// Frames to show (innermost inlined function first); empty unless shown.
    symbols: Vec<u32>,
}

/// Counters, for measurements and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Threads unwound.
    pub threads: u64,
    /// Native frames unwound.
    pub frames: u64,
    /// Unwinds that stopped before the outermost frame.
    pub truncated: u64,
    /// Merges that failed.
    pub merge_failures: u64,
}

/// Native unwinding, symbolization and merging for one process.
pub struct NativeStacks {
    process: Arc<Process>,
    modules: Modules,
    blocks: Blocks,
    ctx: Box<UnwindContext<usize>>,
    /// How to group Python frames (`None` without an interpreter).
    groups: Option<FrameGroups>,
    addrs: HashMap<u64, AddrInfo>,
    symbols: Vec<NativeSymbol>,
    frames: Vec<(u64, u64)>,
    group_buf: Vec<Group>,
    stats: Stats,
}

/// Addresses remembered before the cache is cleared (bounds memory).
const MAX_ADDRS: usize = 1 << 20;

impl NativeStacks {
    /// Prepares for `process`, whose interpreter is `interpreter`. Reads
    /// the memory map; binaries are parsed on first use.
    pub fn new(process: Arc<Process>, interpreter: &Interpreter) -> NativeStacks {
        let mut interpreter_paths = vec![interpreter.binary_path.clone()];
        if let Ok(exe) = process.exe() {
            interpreter_paths.push(exe);
        }
        let mut n = NativeStacks::build(process, interpreter_paths);
        n.groups = Some(FrameGroups::new(&interpreter.layout));
        n
    }

    /// For a process that runs no Python: only [`NativeStacks::unwind`] and
    /// [`NativeStacks::symbolize`] (tests and diagnostics).
    pub fn without_python(process: Arc<Process>) -> NativeStacks {
        NativeStacks::build(process, Vec::new())
    }

    fn build(process: Arc<Process>, interpreter_paths: Vec<String>) -> NativeStacks {
        NativeStacks {
            modules: Modules::new(&process, interpreter_paths),
            blocks: Blocks::default(),
            ctx: Box::new(UnwindContext::new()),
            groups: None,
            addrs: HashMap::new(),
            symbols: Vec::new(),
            frames: Vec::new(),
            group_buf: Vec::new(),
            stats: Stats::default(),
            process,
        }
    }

    /// What the native frame at `ip` shows (innermost inlined function
    /// first); empty for a hidden frame. `leaf` for a thread's own
    /// instruction pointer, which (unlike a return address) points at the
    /// instruction itself.
    pub fn symbolize(&mut self, ip: u64, leaf: bool) -> Vec<NativeSymbol> {
        let at = if leaf { ip } else { ip.wrapping_sub(1) };
        let ids = self.addr_info(at).symbols.clone();
        ids.iter()
            .map(|&id| self.symbols[id as usize].clone())
            .collect()
    }

    /// Starts a sample: forgets the memory read for the previous one.
    pub fn begin_sample(&mut self) {
        self.blocks.clear();
    }

    /// A native frame of a merged stack.
    pub fn symbol(&self, id: u32) -> &NativeSymbol {
        &self.symbols[id as usize]
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Unwinds thread `tid` (paused by the calling thread) and merges its
    /// native frames with `python`, its Python frames (innermost first, as
    /// the stack walker read them from `thread.top_frame`). Innermost first
    /// into `out`.
    pub fn merge(
        &mut self,
        tid: Pid,
        thread: &ThreadState,
        python: &[RawFrame],
        out: &mut Vec<MergedFrame>,
    ) -> Result<(), Error> {
        out.clear();
        let regs = read_registers(self.process.pid(), tid)?;
        let mut frames = std::mem::take(&mut self.frames);
        frames.clear();
        let end = unwind::unwind(
            &self.process,
            &mut self.modules,
            &mut self.blocks,
            &mut self.ctx,
            regs,
            &mut frames,
        );
        self.stats.threads += 1;
        self.stats.frames += frames.len() as u64;
        if end == End::Truncated {
            self.stats.truncated += 1;
        }
        let mut groups = std::mem::take(&mut self.group_buf);
        let split = match self.groups.as_mut() {
            Some(g) => g.split(
                &*self.process,
                &mut self.blocks,
                thread,
                python,
                &mut groups,
            ),
            None => {
                groups.clear();
                Ok(())
            }
        };
        let result = match split {
            Err(addr) => Err(Error::Frames { tid, addr }),
            Ok(()) => self.merge_groups(tid, &frames, end, &groups, python.len(), out),
        };
        self.frames = frames;
        self.group_buf = groups;
        if result.is_err() {
            self.stats.merge_failures += 1;
            out.clear();
        }
        result
    }

    /// Only the native frames of thread `tid` (paused by the calling
    /// thread), innermost first, interpreter frames included: instruction
    /// and stack pointers, and how the unwind ended.
    pub fn unwind(&mut self, tid: Pid, out: &mut Vec<(u64, u64)>) -> Result<End, Error> {
        out.clear();
        let regs = read_registers(self.process.pid(), tid)?;
        Ok(unwind::unwind(
            &self.process,
            &mut self.modules,
            &mut self.blocks,
            &mut self.ctx,
            regs,
            out,
        ))
    }

    fn merge_groups(
        &mut self,
        tid: Pid,
        frames: &[(u64, u64)],
        end: End,
        groups: &[Group],
        python_len: usize,
        out: &mut Vec<MergedFrame>,
    ) -> Result<(), Error> {
        let merged = merge_frames(frames, end, groups, python_len, out, |at, out| {
            let info = self.addr_info(at);
            if info.kind == Kind::Shown {
                out.extend(info.symbols.iter().map(|&s| MergedFrame::Native(s)));
            }
            info.kind
        });
        merged.map_err(|evals| Error::Merge {
            tid,
            evals,
            groups: groups.len(),
        })
    }

    /// What the code at `at` becomes (cached per address).
    fn addr_info(&mut self, at: u64) -> &AddrInfo {
        if !self.addrs.contains_key(&at) {
            if self.addrs.len() >= MAX_ADDRS {
                // Symbol ids stay valid: only the address lookup is redone.
                self.addrs.clear();
            }
            let info = self.lookup(at);
            self.addrs.insert(at, info);
        }
        &self.addrs[&at]
    }

    fn lookup(&mut self, at: u64) -> AddrInfo {
        let Some(m) = self.modules.find(at) else {
            let id = self.push_symbol(NativeSymbol {
                name: format!("{at:#x}"),
                module: Arc::from("?"),
                module_path: Arc::from(""),
                file: None,
                line: 0,
            });
            return AddrInfo {
                kind: Kind::Shown,
                symbols: vec![id],
            };
        };
        let process = self.process.clone();
        let module = self.modules.get(m);
        let (interpreter, name, path) =
            (module.interpreter, module.name.clone(), module.path.clone());
        let loaded = module.elf(&process);
        let link = loaded.map_or(0, |(_, bias)| at.wrapping_sub(bias));
        let elf = loaded.map(|(e, _)| e);
        let symbol = elf.and_then(|e| e.symbol(link)).map(|(n, _)| n.to_owned());
        let kind = symbols::classify(symbol.as_deref(), interpreter, &name);
        if kind != Kind::Shown {
            return AddrInfo {
                kind,
                symbols: Vec::new(),
            };
        }
        let lines = elf.map(|e| e.lines(link)).unwrap_or_default();
        let mut ids = Vec::new();
        if lines.is_empty() {
            let shown = match &symbol {
                Some(s) => symbols::demangle(s),
                None => format!("{at:#x}"),
            };
            ids.push(self.push_symbol(NativeSymbol {
                name: shown,
                module: name,
                module_path: path,
                file: None,
                line: 0,
            }));
        } else {
            let n = lines.len();
            for (k, (function, file, line)) in lines.into_iter().enumerate() {
                // The outermost entry is the real (not inlined) function:
                // the symbol table names it when DWARF does not.
                let function = function.or_else(|| (k + 1 == n).then(|| symbol.clone()).flatten());
                let shown = match function {
                    Some(f) => symbols::demangle(&f),
                    None => format!("{at:#x}"),
                };
                ids.push(self.push_symbol(NativeSymbol {
                    name: shown,
                    module: name.clone(),
                    module_path: path.clone(),
                    file,
                    line,
                }));
            }
        }
        AddrInfo { kind, symbols: ids }
    }

    fn push_symbol(&mut self, s: NativeSymbol) -> u32 {
        self.symbols.push(s);
        (self.symbols.len() - 1) as u32
    }
}

/// Walks the native frames (instruction and stack pointers, innermost
/// first) and puts each group of Python frames where its C call is: in the
/// native frame whose stack holds the group's anchor, or, for a group
/// without one, at the next frame whose symbol is the evaluation loop.
/// Groups go innermost first, in order; a group's frames come before
/// (inside) the frame that runs it. `native(at, out)` classifies the code
/// at `at` and, for a shown frame, pushes its frames. `Err(evals)` when the
/// stacks do not fit together.
fn merge_frames(
    frames: &[(u64, u64)],
    end: End,
    groups: &[Group],
    python_len: usize,
    out: &mut Vec<MergedFrame>,
    mut native: impl FnMut(u64, &mut Vec<MergedFrame>) -> Kind,
) -> Result<(), usize> {
    let (mut g, mut next_py, mut evals) = (0usize, 0usize, 0usize);
    let emit = |g: &mut usize, next_py: &mut usize, out: &mut Vec<MergedFrame>| {
        let n = groups[*g].len;
        out.extend((*next_py..*next_py + n).map(MergedFrame::Python));
        *next_py += n;
        *g += 1;
    };
    for (i, &(ip, sp)) in frames.iter().enumerate() {
        let upper = frames.get(i + 1).map_or(u64::MAX, |f| f.1);
        let mut consumed_here = false;
        while let Some(gr) = groups.get(g) {
            let Some(a) = gr.anchor else {
                break;
            };
            if a >= upper {
                break;
            }
            if a < sp {
                // Not on this stack (3.14+'s base frame lives in the thread
                // state): fine for an empty group; a group of frames whose
                // call was never found is not.
                if gr.len > 0 {
                    return Err(evals);
                }
                g += 1;
                continue;
            }
            evals += 1;
            consumed_here = true;
            emit(&mut g, &mut next_py, out);
        }
        // A return address points after its call: name the call.
        let at = if i == 0 { ip } else { ip.wrapping_sub(1) };
        let kind = native(at, out);
        if kind == Kind::Eval
            && !consumed_here
            && groups.get(g).is_some_and(|gr| gr.anchor.is_none())
        {
            evals += 1;
            emit(&mut g, &mut next_py, out);
        }
    }
    let left: usize = groups[g..].iter().map(|gr| gr.len).sum();
    if left > 0 {
        // No evaluation frame at all (the unwind stopped in a library
        // before reaching the interpreter), or an unwind cut short: the
        // Python frames left are the outermost ones, in order.
        if evals == 0 || end == End::Truncated {
            out.extend((next_py..python_len).map(MergedFrame::Python));
        } else {
            return Err(evals);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use MergedFrame::{Native as N, Python as P};

    /// Frames at ips 1.. with stack pointers 0x100 apart; ip 9 is the
    /// evaluation loop, 8 is hidden, the rest are shown as Native(ip).
    fn run(ips: &[u64], groups: &[Group], end: End) -> Result<Vec<MergedFrame>, usize> {
        let frames: Vec<(u64, u64)> = ips
            .iter()
            .enumerate()
            .map(|(i, &ip)| (ip, 0x1000 + 0x100 * i as u64))
            .collect();
        let python_len = groups.iter().map(|g| g.len).sum();
        let mut out = Vec::new();
        let mut next = 0;
        merge_frames(&frames, end, groups, python_len, &mut out, |_, out| {
            // Called once per frame, in order.
            let ip = ips[next];
            next += 1;
            match ip {
                9 => Kind::Eval,
                8 => Kind::Hidden,
                n => {
                    out.push(N(n as u32));
                    Kind::Shown
                }
            }
        })?;
        Ok(out)
    }

    fn g(len: usize, anchor: Option<u64>) -> Group {
        Group { len, anchor }
    }

    #[test]
    fn symbols_place_groups_in_order() {
        // libc, eval(2 frames), hidden, ext, eval(1 frame), hidden
        let out = run(
            &[1, 9, 8, 3, 9, 8],
            &[g(2, None), g(1, None)],
            End::Complete,
        )
        .unwrap();
        assert_eq!(out, vec![N(1), P(0), P(1), N(3), P(2)]);
    }

    #[test]
    fn anchors_place_groups_without_symbols() {
        // Frame i covers [0x1000 + 0x100 i, 0x1000 + 0x100 (i+1)).
        let groups = [g(2, Some(0x1150)), g(1, Some(0x1450)), g(0, Some(0x10))];
        let out = run(&[1, 8, 8, 3, 8, 8], &groups, End::Complete).unwrap();
        assert_eq!(out, vec![N(1), P(0), P(1), N(3), P(2)]);
    }

    #[test]
    fn an_empty_leading_group_is_consumed_by_its_call() {
        let groups = [g(0, Some(0x1150)), g(1, Some(0x1450))];
        let out = run(&[1, 8, 8, 3, 8, 8], &groups, End::Complete).unwrap();
        assert_eq!(out, vec![N(1), N(3), P(0)]);
    }

    #[test]
    fn too_few_calls_fail_unless_the_unwind_was_cut_short() {
        let groups = [g(1, None), g(1, None)];
        assert_eq!(run(&[1, 9, 3], &groups, End::Complete), Err(1));
        let out = run(&[1, 9, 3], &groups, End::Truncated).unwrap();
        assert_eq!(out, vec![N(1), P(0), N(3), P(1)]);
    }

    #[test]
    fn no_call_found_appends_every_python_frame() {
        let out = run(&[1, 3], &[g(1, None), g(2, None)], End::Complete).unwrap();
        assert_eq!(out, vec![N(1), N(3), P(0), P(1), P(2)]);
    }

    #[test]
    fn an_anchor_below_the_stack_with_frames_fails() {
        let groups = [g(1, Some(0x10))];
        assert_eq!(run(&[1, 9], &groups, End::Complete), Err(0));
    }
}
