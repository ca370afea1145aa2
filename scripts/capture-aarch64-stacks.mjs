#!/usr/bin/env node
// Captures the arm64 stacks that pyspy-native's aarch64 unwinder tests replay
// (crates/pyspy-native/tests/aarch64_replay.rs; issue 21). qemu-user cannot
// ptrace, so the program captures itself: tests/aarch64/capture.c is built
// with aarch64-linux-gnu-gcc (static PIE, four ways: -O2 without frame
// pointers, and with; each also with -mbranch-protection=pac-ret, so return
// addresses on the stack are signed and the CFI holds
// DW_CFA_AArch64_negate_ra_state; and once captured in a leaf that keeps its
// return address in x30), run under qemu-aarch64 with an empty
// environment, and writes its registers, stack and memory map.
//
// And a real interpreter: the root's arm64 CPython 3.11 (scripts/arm64.mjs)
// recurses through map() (one C-level evaluation call per level) and calls
// os.abort(); qemu-user writes an arm64 core file, from which the main
// thread's registers (NT_PRSTATUS) and stack are taken (fixture python311:
// the memory map is the one the script wrote, the binaries python3.11 and
// libc.so.6, trimmed as below but keeping .dynsym/.dynstr: both are
// stripped; without .eh_frame_hdr, to keep the fixture small: the unwinder
// then indexes .eh_frame itself).
//
// Written to crates/pyspy-native/tests/fixtures/aarch64/ (generated: do not
// edit; run this again instead):
//   NAME.txt     registers, stack bytes (or the file holding them, gzipped),
//                the binaries' mappings (paths replaced by /capture/FILE)
//                and which fixture file holds each binary
//   NAME.elf.gz  the binary, gzipped, with every byte the unwinder does not
//                read zeroed (code, data): only the ELF and program headers,
//                section headers and names, .symtab/.strtab and, for the CFI
//                variants, .eh_frame/.eh_frame_hdr are kept. The frame-pointer
//                variants' CFI sections are removed (made SHT_NOBITS), so
//                their replay can only walk the x29 chain.
//
//   node scripts/capture-aarch64-stacks.mjs   (needs node scripts/arm64.mjs once, for qemu)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { arm64Paths } from './arm64.mjs';
import { header, main, ROOT, StepError } from './lib.mjs';

const CC = 'aarch64-linux-gnu-gcc';
const SOURCE = join(ROOT, 'crates', 'pyspy-native', 'tests', 'aarch64', 'capture.c');
const OUT = join(ROOT, 'crates', 'pyspy-native', 'tests', 'fixtures', 'aarch64');

/** Name, compiler flags, whether the fixture keeps its CFI, whether return addresses are signed. */
const VARIANTS = [
  { name: 'cfi', flags: ['-fomit-frame-pointer'], cfi: true, pac: false },
  { name: 'cfi-pac', flags: ['-fomit-frame-pointer', '-mbranch-protection=pac-ret'], cfi: true, pac: true },
  { name: 'cfi-leaf', flags: ['-fomit-frame-pointer', '-DLEAF_CAPTURE'], cfi: true, pac: false },
  { name: 'fp', flags: ['-fno-omit-frame-pointer'], cfi: false, pac: false },
  { name: 'fp-pac', flags: ['-fno-omit-frame-pointer', '-mbranch-protection=pac-ret'], cfi: false, pac: true },
];
const COMMON_FLAGS = ['-O2', '-g0', '-static-pie'];
const CFI_SECTIONS = ['.eh_frame', '.eh_frame_hdr'];
// .dynamic and the hash tables too: the ELF reader finds .dynsym and its length through them.
const KEPT_SECTIONS = ['.symtab', '.strtab', '.dynsym', '.dynstr', '.dynamic', '.gnu.hash', '.hash', '.shstrtab'];
const SHT_NOBITS = 8;

function check(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...options });
  if (r.error) throw new StepError(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new StepError(`\`${[cmd, ...args].join(' ')}\` failed (exit ${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** The section headers of a 64-bit little-endian ELF: name, type, offset, size, and where the header sits. */
function sections(elf) {
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  const raw = [];
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * shentsize;
    raw.push({
      at,
      nameOffset: elf.readUInt32LE(at),
      type: elf.readUInt32LE(at + 4),
      offset: Number(elf.readBigUInt64LE(at + 0x18)),
      size: Number(elf.readBigUInt64LE(at + 0x20)),
    });
  }
  const names = raw[shstrndx];
  const nameAt = (off) => {
    const start = names.offset + off;
    return elf.toString('latin1', start, elf.indexOf(0, start));
  };
  return { shoff, table: shnum * shentsize, list: raw.map((s) => ({ ...s, name: nameAt(s.nameOffset) })) };
}

/** The binary with everything the unwinder does not read zeroed (see the header). */
function trim(elf, keepCfi, needSymtab = true, keepHdr = true) {
  const cfi = keepCfi ? (keepHdr ? CFI_SECTIONS : ['.eh_frame']) : [];
  const out = Buffer.alloc(elf.length);
  const keep = (start, len) => elf.copy(out, start, start, start + len);
  const phoff = Number(elf.readBigUInt64LE(0x20));
  keep(0, 64);
  keep(phoff, elf.readUInt16LE(0x36) * elf.readUInt16LE(0x38));
  const { shoff, table, list } = sections(elf);
  keep(shoff, table);
  for (const s of list) {
    if (KEPT_SECTIONS.includes(s.name) || cfi.includes(s.name)) keep(s.offset, s.size);
    else if (CFI_SECTIONS.includes(s.name)) out.writeUInt32LE(SHT_NOBITS, s.at + 4);
  }
  for (const name of [...(needSymtab ? ['.symtab', '.strtab'] : ['.dynsym', '.dynstr']), ...cfi]) {
    if (!list.some((s) => s.name === name)) throw new StepError(`the binary has no ${name}`);
  }
  return out;
}

/** Words of the stack whose bits above the 48 of an address are set: signed return addresses. */
function signedWords(stackHex) {
  const bytes = Buffer.from(stackHex, 'hex');
  let n = 0;
  for (let i = 0; i + 8 <= bytes.length; i += 8) {
    const w = bytes.readBigUInt64LE(i);
    if (w >> 48n !== 0n && (w & 0xffffffffffffn) >> 40n !== 0n) n++;
  }
  return n;
}

function capture(qemu, dir, variant) {
  const flags = [...COMMON_FLAGS, ...variant.flags];
  const exe = join(dir, variant.name);
  check(CC, [...flags, '-o', exe, SOURCE]);
  const raw = join(dir, `${variant.name}.out`);
  check(qemu, [exe], { env: { CAPTURE_OUT: raw } });
  const lines = readFileSync(raw, 'utf8').trim().split('\n');
  const regs = lines.find((l) => l.startsWith('regs '));
  const stack = lines.find((l) => l.startsWith('stack '));
  const maps = lines
    .filter((l) => l.startsWith('map ') && l.trimEnd().endsWith(` ${exe}`))
    .map((l) => l.trimEnd().replace(/ +\S+$/, ` /capture/${variant.name}`));
  if (!regs || !stack || maps.length === 0) throw new StepError(`${variant.name}: incomplete capture:\n${lines.join('\n').slice(0, 2000)}`);
  const signed = signedWords(stack.split(' ')[2]);
  if (variant.pac && signed === 0) throw new StepError(`${variant.name}: no signed return address on the stack (qemu without pointer authentication?)`);
  const text = [
    `# Generated by scripts/capture-aarch64-stacks.mjs from tests/aarch64/capture.c (${CC} ${flags.join(' ')}); do not edit.`,
    `binary /capture/${variant.name} ${variant.name}.elf.gz`,
    regs,
    stack,
    ...maps,
    '',
  ].join('\n');
  const elf = gzipSync(trim(readFileSync(exe), variant.cfi), { level: 9 });
  writeFileSync(join(OUT, `${variant.name}.txt`), text);
  writeFileSync(join(OUT, `${variant.name}.elf.gz`), elf);
  console.log(`${variant.name}: ${stack.split(" ")[2].length / 2} stack bytes, ${signed} signed words, binary ${elf.length} bytes gzipped`);
}

function captureAll() {
  const { qemu, root } = arm64Paths();
  if (!existsSync(qemu)) throw new StepError(`${qemu} is missing: run node scripts/arm64.mjs first`);
  header('aarch64 stacks for the unwinder tests');
  mkdirSync(OUT, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'pyspy-aarch64-'));
  try {
    for (const v of VARIANTS) capture(qemu, dir, v);
    capturePython(qemu, root, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const PYTHON_SCRIPT = `
import os
with open("maps.txt", "w") as out, open("/proc/self/maps") as maps:
    out.write(maps.read())
def level(n):
    if n == 0:
        os.abort()
    return list(map(level, [n - 1]))
level(3)
`;
/** The binaries of the python311 fixture: the interpreter and the C library. */
const PYTHON_BINARIES = ['python3.11', 'libc.so.6'];
const PT_LOAD = 1;
const PT_NOTE = 4;
const NT_PRSTATUS = 1;
/** Where pr_reg (user_pt_regs: 34 words) sits in an aarch64 elf_prstatus. */
const PRSTATUS_REG = 112;

/** The program headers of a 64-bit little-endian ELF. */
function programHeaders(elf) {
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const size = elf.readUInt16LE(0x36);
  return Array.from({ length: elf.readUInt16LE(0x38) }, (_, i) => {
    const at = phoff + i * size;
    return {
      type: elf.readUInt32LE(at),
      offset: Number(elf.readBigUInt64LE(at + 8)),
      vaddr: Number(elf.readBigUInt64LE(at + 0x10)),
      filesz: Number(elf.readBigUInt64LE(at + 0x20)),
    };
  });
}

/** The first thread's registers from a core's NT_PRSTATUS note, as 34 hex words. */
function coreRegisters(core, phdrs) {
  for (const note of phdrs.filter((p) => p.type === PT_NOTE)) {
    for (let at = note.offset; at + 12 <= note.offset + note.filesz; ) {
      const [namesz, descsz, type] = [core.readUInt32LE(at), core.readUInt32LE(at + 4), core.readUInt32LE(at + 8)];
      const desc = at + 12 + Math.ceil(namesz / 4) * 4;
      if (type === NT_PRSTATUS) {
        return Array.from({ length: 34 }, (_, k) => core.readBigUInt64LE(desc + PRSTATUS_REG + 8 * k).toString(16));
      }
      at = desc + Math.ceil(descsz / 4) * 4;
    }
  }
  throw new StepError('the core has no NT_PRSTATUS note');
}

function capturePython(qemu, root, dir) {
  writeFileSync(join(dir, 'level.py'), PYTHON_SCRIPT);
  const python = join(root, 'usr', 'bin', 'python3.11');
  // qemu-user writes qemu_<program>_<time>_<pid>.core into the working directory.
  const r = spawnSync('sh', ['-c', 'ulimit -c unlimited; exec env -i "$@"', 'sh', qemu, '-L', root, python, '-I', '-S', 'level.py'], { cwd: dir, env: {}, encoding: 'utf8' });
  const coreName = readdirSync(dir).find((f) => f.endsWith('.core'));
  if (!coreName) throw new StepError(`python3.11 under qemu left no core (exit ${r.status}, signal ${r.signal}): ${r.stderr}`);
  const core = readFileSync(join(dir, coreName));
  const phdrs = programHeaders(core);
  const regs = coreRegisters(core, phdrs);
  const sp = Number(BigInt(`0x${regs[31]}`));
  const seg = phdrs.find((p) => p.type === PT_LOAD && p.vaddr <= sp && sp < p.vaddr + p.filesz);
  if (!seg) throw new StepError(`the core holds no stack at sp ${sp.toString(16)}`);
  const stack = core.subarray(seg.offset + (sp - seg.vaddr), seg.offset + seg.filesz);
  const maps = [];
  const paths = new Map();
  for (const line of readFileSync(join(dir, 'maps.txt'), 'utf8').trim().split('\n')) {
    const path = line.trimEnd().split(/ +/)[5] ?? '';
    const file = PYTHON_BINARIES.find((b) => path.endsWith(`/${b}`));
    if (!file) continue;
    paths.set(file, path);
    maps.push(`map ${line.trimEnd().replace(/ +\S+$/, ` /capture/${file}`)}`);
  }
  if (paths.size !== PYTHON_BINARIES.length) throw new StepError(`python3.11's maps lack one of ${PYTHON_BINARIES}: ${[...paths.keys()]}`);
  const text = [
    '# Generated by scripts/capture-aarch64-stacks.mjs: the arm64 root\'s usr/bin/python3.11 (Debian bookworm) under qemu-aarch64 running level(3) below, from its core; do not edit.',
    ...PYTHON_SCRIPT.trim().split('\n').map((l) => `#   ${l}`),
    ...PYTHON_BINARIES.map((b) => `binary /capture/${b} python311-${b}.elf.gz`),
    `regs ${regs.join(' ')}`,
    `stack-file ${sp.toString(16)} python311.stack.gz`,
    ...maps,
    '',
  ].join('\n');
  writeFileSync(join(OUT, 'python311.txt'), text);
  writeFileSync(join(OUT, 'python311.stack.gz'), gzipSync(stack, { level: 9 }));
  for (const b of PYTHON_BINARIES) {
    const elf = gzipSync(trim(readFileSync(paths.get(b)), true, false, false), { level: 9 });
    writeFileSync(join(OUT, `python311-${b}.elf.gz`), elf);
    console.log(`python311: ${b} ${elf.length} bytes gzipped`);
  }
  console.log(`python311: ${stack.length} stack bytes`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main(captureAll);
}
