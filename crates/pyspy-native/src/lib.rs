//! Native stacks of paused threads (or of threads captured in a core file),
//! merged with their Python frames
//! (`--native`).
//!
//! [`NativeStacks`] belongs to one target: an attached process, or a core
//! file (anything that is a [`pyspy_process::Target`]). For each thread of a
//! sample, [`NativeStacks::merge`] takes the thread's registers (from
//! [`read_registers`] while the process is paused *by the calling thread*,
//! since ptrace requests are answered to the tracer thread only; from a
//! core's `NT_PRSTATUS` note through [`Registers::from_user_regs`]), unwinds
//! its native stack from the target's memory with the call-frame
//! information of each mapped binary (`.eh_frame` or `.debug_frame`, read
//! with gimli from the file as the target sees it: through `/proc/PID/root`
//! or `/proc/PID/map_files`, or where a core's binaries are found), falling
//! back to the frame-pointer chain, and symbolizes each frame (ELF symbols,
//! DWARF line tables where present, C++/Rust/Cython names demangled). Then
//! it merges:
//! walking the native frames from the innermost, each call of the
//! interpreter's evaluation loop is replaced by the Python frames it runs
//! (see `pyframes.rs`), other interpreter frames and thread start-up frames
//! are hidden, and every other frame is kept with its module's name.
//!
//! Everything is pure Rust (no libunwind), cached per binary (parsed once,
//! on first use) and per address (unwind rules, symbols). Live threads on
//! Linux x86-64 and aarch64; the unwinder itself follows the registers'
//! architecture ([`Arch`]), so any build unwinds either (cores, tests).
#![deny(missing_docs)]

mod blocks;
mod cfi;
mod elf;
mod error;
mod merge;
mod modules;
mod pyframes;
mod regs;
mod symbols;
mod unwind;

use std::collections::HashMap;
use std::sync::Arc;

use gimli::UnwindContext;
use pyspy_cpython::{Interpreter, RawFrame, ThreadState};
use pyspy_process::{Pid, Target};

pub use error::Error;
pub use regs::{read_registers, Arch, Registers};
pub use unwind::{End, MAX_NATIVE_FRAMES};

use blocks::Blocks;
use merge::merge_frames;
use modules::Modules;
use pyframes::{FrameGroups, Group};
use symbols::Kind;

/// Whether native stacks can be read on this platform.
pub const SUPPORTED: bool = cfg!(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
));

/// Why `--native` is refused where [`SUPPORTED`] is false.
pub const UNSUPPORTED_REASON: &str = if cfg!(windows) {
    "--native reads native stacks on Linux (x86-64 and arm64) only, not on Windows yet: Python \
     stacks work without it, so leave --native out"
} else {
    "--native reads native stacks on Linux (x86-64 and arm64) only: other platforms lack the \
     register reads it needs; Python stacks work there without --native"
};

/// Why `--native` cannot be combined with `--nonblocking`.
pub const NONBLOCKING_REFUSAL: &str = "--native cannot be combined with --nonblocking: a thread's \
     native stack can only be read while the thread is paused (its registers come from ptrace, \
     and its stack changes with every instruction it runs)";

/// What native frames are read from: a live process, or a core file.
pub type SharedTarget = Arc<dyn Target + Send + Sync>;

/// How one merge went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merged {
    /// How the native unwind ended.
    pub end: End,
    /// Index of the merged stack where the native frames ended: frames
    /// from there on are Python frames placed without the C call that runs
    /// them (a short unwind leaves them outermost, in order).
    pub cut: usize,
}

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

/// Native unwinding, symbolization and merging for one target.
pub struct NativeStacks {
    target: SharedTarget,
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
    /// Prepares for `target`, whose interpreter is `interpreter`. Reads
    /// the memory map; binaries are parsed on first use.
    pub fn new(target: SharedTarget, interpreter: &Interpreter) -> NativeStacks {
        let mut interpreter_paths = vec![interpreter.binary_path.clone()];
        if let Ok(exe) = target.exe() {
            interpreter_paths.push(exe);
        }
        let mut n = NativeStacks::build(target, interpreter_paths);
        n.groups = Some(FrameGroups::new(&interpreter.layout));
        n
    }

    /// For a process that runs no Python: only [`NativeStacks::unwind`] and
    /// [`NativeStacks::symbolize`] (tests and diagnostics).
    pub fn without_python(target: SharedTarget) -> NativeStacks {
        NativeStacks::build(target, Vec::new())
    }

    fn build(target: SharedTarget, interpreter_paths: Vec<String>) -> NativeStacks {
        NativeStacks {
            modules: Modules::new(&*target, interpreter_paths),
            blocks: Blocks::default(),
            ctx: Box::new(UnwindContext::new()),
            groups: None,
            addrs: HashMap::new(),
            symbols: Vec::new(),
            frames: Vec::new(),
            group_buf: Vec::new(),
            stats: Stats::default(),
            target,
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

    /// The symbol table's name of the function at `ip` (mangled), whether
    /// its frame is shown or hidden (start-up code, the interpreter):
    /// diagnostics and tests. `leaf` as for [`NativeStacks::symbolize`].
    pub fn function_name(&mut self, ip: u64, leaf: bool) -> Option<String> {
        let at = if leaf { ip } else { ip.wrapping_sub(1) };
        let m = self.modules.find(at)?;
        let (elf, bias) = self.modules.get(m).elf(&*self.target)?;
        elf.symbol(at.wrapping_sub(bias)).map(|(n, _)| n.to_owned())
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

    /// Unwinds thread `tid` from `regs` (its registers: the thread is
    /// paused, or captured in a core) and merges its native frames with
    /// `python`, its Python frames (innermost first, as the stack walker
    /// read them from `thread.top_frame`). Innermost first into `out`.
    pub fn merge(
        &mut self,
        tid: Pid,
        regs: Registers,
        thread: &ThreadState,
        python: &[RawFrame],
        out: &mut Vec<MergedFrame>,
    ) -> Result<Merged, Error> {
        out.clear();
        let mut frames = std::mem::take(&mut self.frames);
        frames.clear();
        let end = unwind::unwind(
            &*self.target,
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
            Some(g) => g.split(&*self.target, &mut self.blocks, thread, python, &mut groups),
            None => {
                groups.clear();
                Ok(())
            }
        };
        let result = match split {
            Err(addr) => Err(Error::Frames { tid, addr }),
            Ok(()) => self
                .merge_groups(tid, &frames, end, &groups, python.len(), out)
                .map(|cut| Merged { end, cut }),
        };
        self.frames = frames;
        self.group_buf = groups;
        if result.is_err() {
            self.stats.merge_failures += 1;
            out.clear();
        }
        result
    }

    /// Only the native frames of a thread whose registers are `regs`,
    /// innermost first, interpreter frames included: instruction and stack
    /// pointers, and how the unwind ended.
    pub fn unwind(&mut self, regs: Registers, out: &mut Vec<(u64, u64)>) -> End {
        out.clear();
        unwind::unwind(
            &*self.target,
            &mut self.modules,
            &mut self.blocks,
            &mut self.ctx,
            regs,
            out,
        )
    }

    /// The native frames of the last [`NativeStacks::merge`], innermost
    /// first: instruction and stack pointers.
    pub fn unwound(&self) -> &[(u64, u64)] {
        &self.frames
    }

    /// The path of the binary mapped at `ip` when it could not be read or
    /// parsed (so its frames have no symbols and no unwind rules): why an
    /// unwind that stopped there stopped.
    pub fn unreadable_binary(&mut self, ip: u64) -> Option<Arc<str>> {
        let m = self.modules.find(ip)?;
        let module = self.modules.get(m);
        let path = module.path.clone();
        module.elf(&*self.target).is_none().then_some(path)
    }

    fn merge_groups(
        &mut self,
        tid: Pid,
        frames: &[(u64, u64)],
        end: End,
        groups: &[Group],
        python_len: usize,
        out: &mut Vec<MergedFrame>,
    ) -> Result<usize, Error> {
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
        let target = self.target.clone();
        let module = self.modules.get(m);
        let (interpreter, name, path) =
            (module.interpreter, module.name.clone(), module.path.clone());
        let loaded = module.elf(&*target);
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
