"""Runs a command under a seccomp filter that makes some system calls fail.

    python3 seccomp_exec.py SYSCALL=ERRNO [SYSCALL=ERRNO ...] -- CMD [ARGS...]

e.g. `process_vm_readv=EPERM -- node cli.js dump --pid 42`: what an older
Docker seccomp profile does to a profiler (ENOSYS is what gVisor and
qemu-user answer). The filter is installed on this process (with
no_new_privs, so no privilege is needed) and kept across the exec, by the
command and all its threads and children. x86-64 only; any other
architecture's calls are refused with ENOSYS so a mismatch cannot pass
silently.
"""
import ctypes
import errno
import os
import struct
import sys

SYSCALLS = {"process_vm_readv": 310, "process_vm_writev": 311, "ptrace": 101}
AUDIT_ARCH_X86_64 = 0xC000003E
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
LD_W_ABS = 0x20
JEQ_K = 0x15
RET_K = 0x06


def insn(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)


def main():
    sep = sys.argv.index("--")
    rules = [a.split("=", 1) for a in sys.argv[1:sep]]
    command = sys.argv[sep + 1:]
    if not rules or not command:
        sys.exit("usage: seccomp_exec.py SYSCALL=ERRNO ... -- CMD [ARGS...]")
    prog = [
        insn(LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        insn(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        insn(RET_K, 0, 0, RET_ERRNO | errno.ENOSYS),
        insn(LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
    ]
    for name, err in rules:
        prog.append(insn(JEQ_K, 0, 1, SYSCALLS[name]))
        prog.append(insn(RET_K, 0, 0, RET_ERRNO | getattr(errno, err)))
    prog.append(insn(RET_K, 0, 0, RET_ALLOW))
    code = b"".join(prog)
    buf = ctypes.create_string_buffer(code, len(code))

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Fprog(len(prog), ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        sys.exit("prctl(PR_SET_NO_NEW_PRIVS): %s" % os.strerror(ctypes.get_errno()))
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        sys.exit("prctl(PR_SET_SECCOMP): %s" % os.strerror(ctypes.get_errno()))
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
