// The wake-up floor (issue 22): the CPU one bare timed sleep and wake-up
// costs on this machine, with no sampling in between, at 100 Hz and 1 kHz.
// At a fixed rate every sampler pays at least this per sample, so the bench
// reads pyspy-node's 100 Hz CPU per sample against it. The helper is the
// C program bench/wake_floor.c, built here with the system's `cc`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/**
 * Builds bench/wake_floor.c into `cacheDir` and measures `rates` (Hz), each
 * for `seconds`. Returns { rates: [{ rateHz, wakes, cpuNsPerWake, late }] } or { error }.
 */
export function measureWakeFloor({ cacheDir, seconds = 2, rates = [100, 1000], log = console.log }) {
  const src = path.join(HERE, 'wake_floor.c');
  const bin = path.join(cacheDir, 'wake_floor');
  fs.mkdirSync(cacheDir, { recursive: true });
  const cc = spawnSync('cc', ['-O2', '-o', bin, src], { encoding: 'utf8' });
  if (cc.status !== 0) return { error: `cc -O2 ${path.basename(src)} failed: ${(cc.stderr || cc.error?.message || '').trim().split('\n').pop()}` };
  const out = [];
  for (const rate of rates) {
    const r = spawnSync(bin, [String(rate), String(Math.max(1, Math.round(rate * seconds)))], { encoding: 'utf8', timeout: (seconds + 30) * 1000 });
    try {
      out.push(JSON.parse(r.stdout.trim()));
    } catch {
      out.push({ rateHz: rate, error: `wake_floor exited ${r.status ?? r.signal}: ${(r.stderr || '').trim().slice(0, 200)}` });
    }
    const w = out.at(-1);
    log(`wake floor: ${rate} Hz: ${w.error ?? `${(w.cpuNsPerWake / 1000).toFixed(1)} µs CPU per wake (${w.late} of ${w.wakes} wakes past the next deadline)`}`);
  }
  return { rates: out };
}

/** CPU (µs) per wake at `rateHz`, or null when not measured. */
export function wakeUs(wake, rateHz) {
  const w = wake?.rates?.find((x) => x.rateHz === rateHz && !x.error);
  return w ? w.cpuNsPerWake / 1000 : null;
}
