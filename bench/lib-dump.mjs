#!/usr/bin/env node
// Times the library's dump() against a running process, from inside one Node
// process: the first call (which loads the native binding) and the calls after.
//
//   node bench/lib-dump.mjs PID [CALLS]
//
// Prints one JSON line: {"times":[ms, ...],"threads":N,"frames":N}.
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const pid = Number(process.argv[2]);
const calls = Number(process.argv[3] ?? 5);
if (!Number.isInteger(pid) || pid <= 0) {
  console.error('usage: node bench/lib-dump.mjs PID [CALLS]');
  process.exit(2);
}
const { dump } = await import(path.join(here, '..', 'packages', 'pyspy-node', 'dist', 'index.js'));
const times = [];
let last;
for (let i = 0; i < calls; i++) {
  const t0 = process.hrtime.bigint();
  last = await dump(pid);
  times.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
const frames = last.threads.reduce((sum, t) => sum + t.frames.length, 0);
console.log(JSON.stringify({ times, threads: last.threads.length, frames }));
