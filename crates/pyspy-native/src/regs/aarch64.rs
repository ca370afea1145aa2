//! AArch64 registers in DWARF numbering ("DWARF for the Arm 64-bit
//! architecture": x0..x30 are 0..30, sp is 31), and pointer authentication.

use super::{Arch, Registers};

/// x29, the frame pointer.
pub(super) const FP: u16 = 29;
/// x30, the link register: the return-address column.
pub(super) const LR: u16 = 30;
/// sp.
pub(super) const SP: u16 = 31;
/// pc, read as a register.
pub(super) const PC: u16 = 32;
/// Registers tracked while unwinding: x0..x30 and sp.
pub(super) const COUNT: usize = 32;

/// Bits of a user-space address: Linux gives user space 48 bits of virtual
/// address (52-bit kernels too, unless a program asks for more with mmap
/// hints, which neither CPython nor C libraries do).
const VA_BITS: u32 = 48;

/// Strips pointer authentication: with `-mbranch-protection=pac-ret` a
/// function signs its return address (`paciasp`) before saving it, putting
/// a code in the bits above the virtual address (and in the top byte, as
/// instruction addresses get no top-byte-ignore). Only the address bits
/// are the return address.
pub(super) fn strip_pac(addr: u64) -> u64 {
    addr & ((1u64 << VA_BITS) - 1)
}

/// See [`Registers::from_aarch64_user_regs`].
pub(super) fn from_user_regs(user: &[u64; 34]) -> Registers {
    const PC: usize = 32;
    let mut r = Registers::empty(Arch::Aarch64);
    for (reg, v) in user[..COUNT].iter().enumerate() {
        r.set(reg as u16, Some(*v));
    }
    r.set_ip(Some(user[PC]));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_user_pt_regs_to_dwarf_numbers() {
        let user: [u64; 34] = std::array::from_fn(|k| 100 + k as u64);
        let r = Registers::from_aarch64_user_regs(&user);
        assert_eq!(r.arch(), Arch::Aarch64);
        assert_eq!(r.ip(), Some(132), "pc");
        assert_eq!(r.sp(), Some(131), "sp");
        assert_eq!(r.bp(), Some(129), "x29");
        assert_eq!(r.get(0), Some(100), "x0");
        assert_eq!(r.get(LR), Some(130), "x30");
        assert_eq!(r.get(PC), Some(132), "pc reads as register 32");
        assert_eq!(r.get(33), None);
    }

    #[test]
    fn strips_authentication_codes() {
        assert_eq!(strip_pac(0x0022_7fdf_5f95_8e70), 0x7fdf_5f95_8e70);
        assert_eq!(strip_pac(0xff7f_0000_aaaa_0004), 0x0000_aaaa_0004);
        assert_eq!(strip_pac(0x5555_1234), 0x5555_1234, "unsigned: unchanged");
    }
}
