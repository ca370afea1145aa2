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
// Written to crates/pyspy-native/tests/fixtures/aarch64/ (generated: do not
// edit; run this again instead):
//   NAME.txt     registers, stack bytes, the binary's mappings (its path
//                replaced by /capture/NAME)
//   NAME.elf.gz  the binary, gzipped, with every byte the unwinder does not
//                read zeroed (code, data): only the ELF and program headers,
//                section headers and names, .symtab/.strtab and, for the CFI
//                variants, .eh_frame/.eh_frame_hdr are kept. The frame-pointer
//                variants' CFI sections are removed (made SHT_NOBITS), so
//                their replay can only walk the x29 chain.
//
//   node scripts/capture-aarch64-stacks.mjs   (needs node scripts/arm64.mjs once, for qemu)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
const KEPT_SECTIONS = ['.symtab', '.strtab', '.shstrtab'];
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
function trim(elf, keepCfi) {
  const out = Buffer.alloc(elf.length);
  const keep = (start, len) => elf.copy(out, start, start, start + len);
  const phoff = Number(elf.readBigUInt64LE(0x20));
  keep(0, 64);
  keep(phoff, elf.readUInt16LE(0x36) * elf.readUInt16LE(0x38));
  const { shoff, table, list } = sections(elf);
  keep(shoff, table);
  for (const s of list) {
    if (KEPT_SECTIONS.includes(s.name) || (keepCfi && CFI_SECTIONS.includes(s.name))) keep(s.offset, s.size);
    if (!keepCfi && CFI_SECTIONS.includes(s.name)) out.writeUInt32LE(SHT_NOBITS, s.at + 4);
  }
  for (const name of [...KEPT_SECTIONS, ...(keepCfi ? CFI_SECTIONS : [])]) {
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
    `binary ${variant.name}.elf.gz`,
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
  const { qemu } = arm64Paths();
  if (!existsSync(qemu)) throw new StepError(`${qemu} is missing: run node scripts/arm64.mjs first`);
  header('aarch64 stacks for the unwinder tests');
  mkdirSync(OUT, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'pyspy-aarch64-'));
  try {
    for (const v of VARIANTS) capture(qemu, dir, v);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main(captureAll);
}
