#!/usr/bin/env node
// End-to-end check for machines the vitest suite cannot run on (it needs
// Linux x86-64's /proc and the Debian interpreters): the release workflow's
// macOS and linux-arm64 jobs run it with the runner's own python3 (not a
// SIP-protected one on macOS, and as root there: task_for_pid needs it).
// Node built-ins only; it uses no /proc.
//   1. dump --json of test/fixtures/dump_target.py equals the stacks the
//      fixture reports from sys._current_frames(), frame by frame;
//   2. record of test/fixtures/record_target.py --mode ratio splits
//      work_three:work_one 3:1 within ±5 points;
//   3. on Linux (arm64 in the workflow: the only run of --native on a live
//      arm64 process), dump --native --json: the same Python frames once the
//      native ones are taken out, and the C library's nanosleep under the
//      sleeper thread.
//
//   node scripts/e2e-platform.mjs [--python python3] [--cli "node packages/pyspy-node/bin/pyspy-node.js"]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { main, ROOT, StepError } from './lib.mjs';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}

const python = arg('--python', 'python3');
const cli = arg('--cli', `${process.execPath} ${join(ROOT, 'packages/pyspy-node/bin/pyspy-node.js')}`).split(' ');

/** Starts a fixture and resolves with the child and its report once it prints READY. */
function startFixture(script, args, dir) {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [join(ROOT, 'test/fixtures', script), ...args], {
      env: { ...process.env, TMPDIR: dir, PYTHONDONTWRITEBYTECODE: '1', PYTHONUTF8: '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new StepError(`${script} printed no READY within 60 s`));
    }, 60_000);
    child.once('exit', (code) => reject(new StepError(`${script} exited (${code}) before READY`)));
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d;
      const m = /^READY (.+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        // Threads that end right after READY (the reporter) have a moment to go.
        setTimeout(() => resolve({ child, report: JSON.parse(readFileSync(m[1].trim(), 'utf8')) }), 500);
      }
    });
  });
}

function runCli(args) {
  const r = spawnSync(cli[0], [...cli.slice(1), ...args], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new StepError(`pyspy-node ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stderr}`);
  return r;
}

function check(ok, what) {
  if (!ok) throw new StepError(what);
}

const shown = (f) => f.qualname ?? f.name;

function checkDump(report, threads) {
  check(
    JSON.stringify(threads.map((t) => t.thread_id).sort()) === JSON.stringify(report.threads.map((t) => t.ident).sort()),
    `thread ids: ${threads.map((t) => t.thread_id)} vs ${report.threads.map((t) => t.ident)}`,
  );
  for (const want of report.threads) {
    const got = threads.find((t) => t.thread_id === want.ident);
    check(got.thread_name === want.name, `thread ${want.ident}: name ${got.thread_name} vs ${want.name}`);
    const actual = got.frames.map((f) => `${f.name} ${f.filename}:${f.line}`);
    const expected = want.frames.map((f) => `${shown(f)} ${f.filename}:${f.line}`);
    if (want.ident === report.busy.ident) {
      const [lo, hi] = report.busy.line_range;
      const line = got.frames[0]?.line;
      check(got.frames[0]?.name === report.busy.shown && line >= lo && line <= hi, `busy thread's top frame: ${actual[0]}`);
      actual.shift();
      expected.shift();
    }
    check(JSON.stringify(actual) === JSON.stringify(expected), `thread "${want.name}" frames:\n  got ${actual.join('\n      ')}\n  want ${expected.join('\n       ')}`);
  }
  console.log(`dump: ${threads.length} threads, every frame as the fixture reported it`);
}

async function withFixture(script, args, fn) {
  const dir = mkdtempSync(join(tmpdir(), 'pyspy-e2e-'));
  const { child, report } = await startFixture(script, args, dir);
  try {
    await fn(report, child.pid, dir);
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

await main(async () => {
  await withFixture('dump_target.py', [], async (report, pid) => {
    checkDump(report, JSON.parse(runCli(['dump', '--pid', String(pid), '--json']).stdout));
  });
  await withFixture('record_target.py', ['--mode', 'ratio'], async (_report, pid, dir) => {
    const file = join(dir, 'out.txt');
    runCli(['record', '-p', String(pid), '-o', file, '-f', 'raw', '-r', '100', '-d', '5']);
    const counts = { work_three: 0, work_one: 0 };
    for (const line of readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
      const n = Number(line.slice(line.lastIndexOf(' ') + 1));
      const leaf = /(work_three|work_one) \(/.exec(line.slice(line.lastIndexOf(';') + 1));
      if (leaf) counts[leaf[1]] += n;
    }
    const total = counts.work_three + counts.work_one;
    const share = (100 * counts.work_three) / total;
    console.log(`record: work_three ${share.toFixed(1)}% of ${total} samples in the two functions`);
    check(total >= 200 && share >= 70 && share <= 80, `record split ${JSON.stringify(counts)}: want 75 ± 5 %`);
  });
  if (process.platform === 'linux') {
    await withFixture('dump_target.py', [], async (report, pid) => {
      const threads = JSON.parse(runCli(['dump', '--pid', String(pid), '--native', '--json']).stdout);
      checkDump(report, threads.map((t) => ({ ...t, frames: t.frames.filter((f) => f.module === null) })));
      const native = threads.find((t) => t.thread_name === 'sleeper').frames.filter((f) => f.module !== null);
      const names = native.map((f) => `${f.name} [${f.module}]`);
      check(native.some((f) => f.module.startsWith('libc.so') && /nanosleep/.test(f.name)), `the sleeper's native frames: ${names.join(', ')}`);
      console.log(`dump --native: the sleeper's native frames ${names.join(', ')}`);
    });
  }
  console.log(`e2e on ${process.platform}-${process.arch}: passed`);
});

export const E2E_SCRIPT = fileURLToPath(import.meta.url);
