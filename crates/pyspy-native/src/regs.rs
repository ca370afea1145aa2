//! A thread's registers (of a paused thread, or from a core), in DWARF
//! numbering, for either architecture the unwinder knows: the registers
//! carry their [`Arch`], so an x86-64 build can unwind aarch64 stacks (core
//! files, the replay tests) and the other way round. The numbering and the
//! per-architecture facts live in `regs/x86_64.rs` and `regs/aarch64.rs`;
//! reading a live thread's registers in `regs/linux_*.rs`.

mod aarch64;
mod x86_64;

/// Which instruction set a thread runs, and so how its registers are
/// numbered and its stack is unwound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// x86-64 (System V psABI numbering).
    X86_64,
    /// AArch64 (DWARF for the Arm 64-bit architecture).
    Aarch64,
}

impl Arch {
    /// The architecture this build runs on (x86-64 for any other).
    pub const HOST: Arch = if cfg!(target_arch = "aarch64") {
        Arch::Aarch64
    } else {
        Arch::X86_64
    };

    /// From an ELF header's `e_machine`.
    pub(crate) fn from_elf_machine(machine: u16) -> Option<Arch> {
        match machine {
            goblin::elf::header::EM_X86_64 => Some(Arch::X86_64),
            goblin::elf::header::EM_AARCH64 => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// DWARF number of the stack pointer.
    pub(crate) fn sp(self) -> u16 {
        match self {
            Arch::X86_64 => x86_64::RSP,
            Arch::Aarch64 => aarch64::SP,
        }
    }

    /// DWARF number of the frame pointer.
    pub(crate) fn fp(self) -> u16 {
        match self {
            Arch::X86_64 => x86_64::RBP,
            Arch::Aarch64 => aarch64::FP,
        }
    }

    /// The CFI column of the return address (x86-64: a column of its own;
    /// aarch64: the link register, x30).
    pub(crate) fn ra_column(self) -> u16 {
        match self {
            Arch::X86_64 => x86_64::RA,
            Arch::Aarch64 => aarch64::LR,
        }
    }

    /// The DWARF number that reads as the instruction pointer (x86-64: 16,
    /// `%rip`, which is also the return-address column: CFI expressions of
    /// PLT entries read it; aarch64: 32, `pc`).
    pub(crate) fn ip_reg(self) -> u16 {
        match self {
            Arch::X86_64 => x86_64::RIP,
            Arch::Aarch64 => aarch64::PC,
        }
    }

    /// Registers tracked while unwinding: DWARF numbers `0..count`.
    pub(crate) fn count(self) -> usize {
        match self {
            Arch::X86_64 => x86_64::COUNT,
            Arch::Aarch64 => aarch64::COUNT,
        }
    }

    /// Whether a CFI row without a rule for the return-address column means
    /// the return address is still where it was (aarch64: a function that
    /// has not saved the link register) rather than that there is no caller.
    pub(crate) fn ra_default_same(self) -> bool {
        self == Arch::Aarch64
    }

    /// A return address as code uses it: aarch64 drops pointer
    /// authentication bits (see `regs/aarch64.rs`).
    pub(crate) fn strip_return_address(self, ra: u64) -> u64 {
        match self {
            Arch::X86_64 => ra,
            Arch::Aarch64 => aarch64::strip_pac(ra),
        }
    }

    /// Whether a zero frame pointer ends the frame-pointer chain (the
    /// AArch64 procedure call standard says so; on x86-64 `rbp` may be a
    /// general register holding 0).
    pub(crate) fn zero_fp_ends_chain(self) -> bool {
        self == Arch::Aarch64
    }
}

/// Most registers tracked by any architecture (aarch64: x0..x30, sp).
const MAX_REGS: usize = 32;

/// The registers an unwind needs; `None` when not known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registers {
    arch: Arch,
    ip: Option<u64>,
    regs: [Option<u64>; MAX_REGS],
}

impl Registers {
    /// Nothing known yet, for `arch`.
    pub fn empty(arch: Arch) -> Registers {
        Registers {
            arch,
            ip: None,
            regs: [None; MAX_REGS],
        }
    }
    /// The architecture.
    pub fn arch(&self) -> Arch {
        self.arch
    }
    /// The instruction pointer.
    pub fn ip(&self) -> Option<u64> {
        self.ip
    }
    /// The stack pointer.
    pub fn sp(&self) -> Option<u64> {
        self.get(self.arch.sp())
    }
    /// The frame pointer.
    pub fn bp(&self) -> Option<u64> {
        self.get(self.arch.fp())
    }
    /// A register by DWARF number (`None` beyond the tracked ones).
    pub(crate) fn get(&self, reg: u16) -> Option<u64> {
        if reg == self.arch.ip_reg() {
            return self.ip;
        }
        if usize::from(reg) >= self.arch.count() {
            return None;
        }
        self.regs.get(reg as usize).copied().flatten()
    }
    pub(crate) fn set(&mut self, reg: u16, value: Option<u64>) {
        if usize::from(reg) < self.arch.count() {
            self.regs[reg as usize] = value;
        }
    }
    pub(crate) fn set_ip(&mut self, ip: Option<u64>) {
        self.ip = ip;
    }

    /// Only instruction and stack pointer (and optionally the frame
    /// pointer), of a thread of this build's architecture.
    pub fn from_ip_sp(ip: u64, sp: u64, bp: Option<u64>) -> Registers {
        let arch = Arch::HOST;
        let mut r = Registers::empty(arch);
        r.ip = Some(ip);
        r.set(arch.sp(), Some(sp));
        r.set(arch.fp(), bp);
        r
    }

    /// From an x86-64 `user_regs_struct` as 27 words in its order (`r15`,
    /// `r14`, `r13`, `r12`, `rbp`, `rbx`, `r11`, `r10`, `r9`, `r8`, `rax`,
    /// `rcx`, `rdx`, `rsi`, `rdi`, `orig_rax`, `rip`, `cs`, `eflags`, `rsp`,
    /// ...): what an x86-64 core's `NT_PRSTATUS` note holds (`pr_reg`). Any
    /// host can read an x86-64 core, so this is not limited to x86-64 builds.
    pub fn from_user_regs(user: &[u64; 27]) -> Registers {
        x86_64::from_user_regs(user)
    }

    /// From an aarch64 `user_pt_regs` as 34 words (`x0`..`x30`, `sp`, `pc`,
    /// `pstate`): what `PTRACE_GETREGSET`/`NT_PRSTATUS` answers and an
    /// aarch64 core's `NT_PRSTATUS` note holds. Any host.
    pub fn from_aarch64_user_regs(user: &[u64; 34]) -> Registers {
        aarch64::from_user_regs(user)
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[path = "regs/linux_x86_64.rs"]
mod ptrace;
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
#[path = "regs/linux_aarch64.rs"]
mod ptrace;
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
#[path = "regs/unsupported.rs"]
mod ptrace;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod syscall_file;

pub use ptrace::read_registers;
