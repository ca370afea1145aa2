/*
 * Captured arm64 stacks for the unwinder's replay tests (aarch64_replay.rs);
 * built and run under qemu-user by scripts/capture-aarch64-stacks.mjs.
 *
 * main calls walk_a(2): walk_a -> walk_b -> walk_c -> walk_a ... three
 * rounds, then capture_here stores every register (x0..x30, sp, pc, nzcv:
 * the order of user_pt_regs, as NT_PRSTATUS holds it) and write_fixture
 * writes them, the stack from the captured sp up to where _start found it
 * (__libc_stack_end: nothing above is needed to unwind to _start, and the
 * environment and auxiliary vector up there stay out of the fixture), and
 * the memory map, to the file $CAPTURE_OUT.
 *
 * Built with -DLEAF_CAPTURE, capture_here calls grab_registers instead, a
 * leaf that never saves its link register (its CFI has no rule for x30: the
 * return address is still in x30), and the registers are grab_registers'.
 *
 * Each walk_* uses its callee's result after the call, so none is a tail
 * call and every one keeps its frame.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

extern void *__libc_stack_end;

static uint64_t regs[34];
volatile int sink;

__attribute__((noinline)) void prep(void) { sink++; }

__attribute__((noinline)) static void write_fixture(void) {
  FILE *f = fopen(getenv("CAPTURE_OUT"), "w");
  if (!f) exit(2);
  fprintf(f, "regs");
  for (int i = 0; i < 34; i++) fprintf(f, " %lx", (unsigned long)regs[i]);
  uint64_t sp = regs[31], top = (uint64_t)__libc_stack_end;
  fprintf(f, "\nstack %lx ", (unsigned long)sp);
  for (uint64_t a = sp; a < top; a++) fprintf(f, "%02x", *(volatile unsigned char *)a);
  fprintf(f, "\n");
  FILE *m = fopen("/proc/self/maps", "r");
  if (!m) exit(3);
  char line[512];
  while (fgets(line, sizeof line, m)) fprintf(f, "map %s", line);
  fclose(m);
  if (fclose(f) != 0) exit(4);
}

#ifdef LEAF_CAPTURE
/* grab_registers(out): stores x0..x30, sp, pc into out[0..33] and returns;
 * no frame, sp untouched. */
void grab_registers(uint64_t *out);
__asm__(
    ".text\n"
    ".global grab_registers\n"
    ".type grab_registers, %function\n"
    "grab_registers:\n"
    ".cfi_startproc\n"
    "stp x0, x1, [x0, #0]\n"
    "stp x2, x3, [x0, #16]\n"
    "stp x4, x5, [x0, #32]\n"
    "stp x6, x7, [x0, #48]\n"
    "stp x8, x9, [x0, #64]\n"
    "stp x10, x11, [x0, #80]\n"
    "stp x12, x13, [x0, #96]\n"
    "stp x14, x15, [x0, #112]\n"
    "stp x16, x17, [x0, #128]\n"
    "stp x18, x19, [x0, #144]\n"
    "stp x20, x21, [x0, #160]\n"
    "stp x22, x23, [x0, #176]\n"
    "stp x24, x25, [x0, #192]\n"
    "stp x26, x27, [x0, #208]\n"
    "stp x28, x29, [x0, #224]\n"
    "str x30, [x0, #240]\n"
    "mov x9, sp\n"
    "str x9, [x0, #248]\n"
    "adr x9, .\n"
    "str x9, [x0, #256]\n"
    "ret\n"
    ".cfi_endproc\n"
    ".size grab_registers, .-grab_registers\n");
#endif

/* The leaf (or grab_registers' caller). Its frame exists from before prep() until after write_fixture(),
 * so the stores sit where the function's CFI describes its body. */
__attribute__((noinline)) void capture_here(void) {
  prep();
#ifdef LEAF_CAPTURE
  grab_registers(regs);
#else
  __asm__ volatile(
      "stp x0, x1, [%0, #0]\n\t"
      "stp x2, x3, [%0, #16]\n\t"
      "stp x4, x5, [%0, #32]\n\t"
      "stp x6, x7, [%0, #48]\n\t"
      "stp x8, x9, [%0, #64]\n\t"
      "stp x10, x11, [%0, #80]\n\t"
      "stp x12, x13, [%0, #96]\n\t"
      "stp x14, x15, [%0, #112]\n\t"
      "stp x16, x17, [%0, #128]\n\t"
      "stp x18, x19, [%0, #144]\n\t"
      "stp x20, x21, [%0, #160]\n\t"
      "stp x22, x23, [%0, #176]\n\t"
      "stp x24, x25, [%0, #192]\n\t"
      "stp x26, x27, [%0, #208]\n\t"
      "stp x28, x29, [%0, #224]\n\t"
      "str x30, [%0, #240]\n\t"
      "mov x9, sp\n\t"
      "str x9, [%0, #248]\n\t"
      "adr x9, .\n\t"
      "str x9, [%0, #256]\n\t"
      "mrs x9, nzcv\n\t"
      "str x9, [%0, #264]\n\t"
      :
      : "r"(regs)
      : "x9", "memory");
#endif
  write_fixture();
}

int walk_a(int n);
int walk_b(int n);
int walk_c(int n);

__attribute__((noinline)) int walk_c(int n) {
  int r;
  if (n > 0) {
    r = walk_a(n - 1);
  } else {
    capture_here();
    r = 0;
  }
  sink += r;
  return r + 3;
}

__attribute__((noinline)) int walk_b(int n) {
  int r = walk_c(n);
  sink += r;
  return r + 2;
}

__attribute__((noinline)) int walk_a(int n) {
  int r = walk_b(n);
  sink += r;
  return r + 1;
}

int main(void) {
  int r = walk_a(2);
  sink += r;
  return 0;
}
