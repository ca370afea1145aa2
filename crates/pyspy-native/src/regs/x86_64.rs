//! x86-64 registers in DWARF numbering (System V psABI, figure 3.36).

use super::{Arch, Registers};

/// `%rbp`.
pub(super) const RBP: u16 = 6;
/// `%rsp`.
pub(super) const RSP: u16 = 7;
/// The return-address column (the caller's `%rip`).
pub(super) const RA: u16 = 16;
/// `%rip` read as a register (CFI expressions of PLT entries do): the same
/// number as the return-address column.
pub(super) const RIP: u16 = 16;
/// Registers tracked while unwinding: rax..r15.
pub(super) const COUNT: usize = 16;

/// See [`Registers::from_user_regs`].
pub(super) fn from_user_regs(user: &[u64; 27]) -> Registers {
    // user_regs_struct index of each DWARF register 0..=15 (rax, rdx, rcx,
    // rbx, rsi, rdi, rbp, rsp, r8..r15).
    const FROM_USER: [usize; COUNT] = [10, 12, 11, 5, 13, 14, 4, 19, 9, 8, 7, 6, 3, 2, 1, 0];
    const RIP: usize = 16;
    let mut r = Registers::empty(Arch::X86_64);
    for (reg, i) in FROM_USER.into_iter().enumerate() {
        r.set(reg as u16, Some(user[i]));
    }
    r.set_ip(Some(user[RIP]));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_user_regs_to_dwarf_numbers() {
        // Word k of user_regs_struct holds 100 + k.
        let user: [u64; 27] = std::array::from_fn(|k| 100 + k as u64);
        let r = Registers::from_user_regs(&user);
        assert_eq!(r.arch(), Arch::X86_64);
        assert_eq!(r.ip(), Some(116), "rip");
        assert_eq!(r.sp(), Some(119), "rsp");
        assert_eq!(r.bp(), Some(104), "rbp");
        assert_eq!(r.get(0), Some(110), "rax");
        assert_eq!(r.get(3), Some(105), "rbx");
        assert_eq!(r.get(5), Some(114), "rdi");
        assert_eq!(r.get(8), Some(109), "r8");
        assert_eq!(r.get(15), Some(100), "r15");
        assert_eq!(r.get(RIP), Some(116), "rip reads as register 16");
    }
}
