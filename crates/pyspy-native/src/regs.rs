//! A thread's registers (of a paused thread, or from a core), in DWARF
//! numbering (x86-64 psABI).

/// DWARF register numbers of x86-64 (System V psABI, figure 3.36).
pub(crate) mod dwarf {
    /// `%rbp`.
    pub const RBP: u16 = 6;
    /// `%rsp`.
    pub const RSP: u16 = 7;
    /// The return-address column: `%rip` of the caller.
    pub const RA: u16 = 16;
    /// Registers tracked while unwinding: rax..r15 and the return address.
    pub const COUNT: usize = 17;
}

/// The registers an unwind needs; `None` when not known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Registers {
    pub(crate) regs: [Option<u64>; dwarf::COUNT],
}

impl Registers {
    /// The instruction pointer.
    pub fn ip(&self) -> Option<u64> {
        self.regs[dwarf::RA as usize]
    }
    /// The stack pointer.
    pub fn sp(&self) -> Option<u64> {
        self.regs[dwarf::RSP as usize]
    }
    /// The frame pointer.
    pub fn bp(&self) -> Option<u64> {
        self.regs[dwarf::RBP as usize]
    }
    /// A register by DWARF number (0..=16).
    pub(crate) fn get(&self, reg: u16) -> Option<u64> {
        self.regs.get(reg as usize).copied().flatten()
    }
    pub(crate) fn set(&mut self, reg: u16, value: Option<u64>) {
        if let Some(r) = self.regs.get_mut(reg as usize) {
            *r = value;
        }
    }

    /// Only instruction and stack pointer (and optionally the frame pointer).
    pub fn from_ip_sp(ip: u64, sp: u64, bp: Option<u64>) -> Registers {
        let mut r = Registers::default();
        r.regs[dwarf::RA as usize] = Some(ip);
        r.regs[dwarf::RSP as usize] = Some(sp);
        r.regs[dwarf::RBP as usize] = bp;
        r
    }

    /// From an x86-64 `user_regs_struct` as 27 words in its order (`r15`,
    /// `r14`, `r13`, `r12`, `rbp`, `rbx`, `r11`, `r10`, `r9`, `r8`, `rax`,
    /// `rcx`, `rdx`, `rsi`, `rdi`, `orig_rax`, `rip`, `cs`, `eflags`, `rsp`,
    /// ...): what a core's `NT_PRSTATUS` note holds (`pr_reg`). Any host can
    /// read an x86-64 core, so this is not limited to x86-64 builds.
    pub fn from_user_regs(user: &[u64; 27]) -> Registers {
        // user_regs_struct index of each DWARF register 0..=16 (rax, rdx,
        // rcx, rbx, rsi, rdi, rbp, rsp, r8..r15, rip).
        const FROM_USER: [usize; dwarf::COUNT] =
            [10, 12, 11, 5, 13, 14, 4, 19, 9, 8, 7, 6, 3, 2, 1, 0, 16];
        let mut r = Registers::default();
        for (slot, i) in r.regs.iter_mut().zip(FROM_USER) {
            *slot = Some(user[i]);
        }
        r
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[path = "regs/linux_x86_64.rs"]
mod ptrace;
#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
#[path = "regs/unsupported.rs"]
mod ptrace;

pub use ptrace::read_registers;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_user_regs_to_dwarf_numbers() {
        // Word k of user_regs_struct holds 100 + k.
        let user: [u64; 27] = std::array::from_fn(|k| 100 + k as u64);
        let r = Registers::from_user_regs(&user);
        assert_eq!(r.ip(), Some(116), "rip");
        assert_eq!(r.sp(), Some(119), "rsp");
        assert_eq!(r.bp(), Some(104), "rbp");
        assert_eq!(r.get(0), Some(110), "rax");
        assert_eq!(r.get(3), Some(105), "rbx");
        assert_eq!(r.get(5), Some(114), "rdi");
        assert_eq!(r.get(8), Some(109), "r8");
        assert_eq!(r.get(15), Some(100), "r15");
    }
}
