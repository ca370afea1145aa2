// The floor of issue 22: what one sample cannot cost less than, measured in
// the same run as the samplers, on the same target. A small Rust helper
// (crates/pyspy-sampler/examples/read_floor.rs, a development tool that is
// not part of the package) attaches as the recorder does, counts the reads,
// bytes and allocations of one sample, records the exact ranges it reads, and
// times a tight loop of one process_vm_readv of those ranges (same bytes,
// same iovecs). pyspy-node's CPU per sample is then reported as a ratio to it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Builds the helper (release): { bin } or { error }. */
export function buildFloorHelper(root, log) {
  const bin = path.join(process.env.CARGO_TARGET_DIR ?? path.join(root, 'target'), 'release', 'examples', 'read_floor');
  log('floor: cargo build --release -p pyspy-sampler --example read_floor');
  const r = spawnSync('cargo', ['build', '--release', '-q', '-p', 'pyspy-sampler', '--example', 'read_floor'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0 || !fs.existsSync(bin)) {
    const why = (r.stderr || r.error?.message || 'no binary').trim().split('\n').slice(-3).join(' ');
    return { error: `the floor helper could not be built: ${why}` };
  }
  return { bin };
}

/**
 * One floor measurement against `pid`: `idle` as `record --idle` (no /proc
 * read of thread states), `procMem` reading through /proc/PID/mem. Returns
 * the helper's JSON (floorNs, bytesPerSample, floorIovecs, readsPerSample,
 * allocsPerSample, sampleNs, ...) or { error }.
 */
export function measureFloor(helper, pid, { idle, procMem }) {
  if (helper.error) return { error: helper.error };
  const env = { ...process.env };
  if (procMem) env.PYSPY_NODE_PROC_MEM = '1';
  else delete env.PYSPY_NODE_PROC_MEM;
  const r = spawnSync(helper.bin, [String(pid), ...(idle ? ['--idle'] : []), '--samples', '5000'], { encoding: 'utf8', env, timeout: 60000 });
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    const j = JSON.parse(line);
    return j.error ? { error: j.error } : j;
  } catch {
    return { error: `read_floor exited ${r.status ?? r.signal}: ${(r.stderr || line).trim().slice(0, 300)}` };
  }
}

/** Fields of a floor measurement whose medians the summary keeps. */
export const FLOOR_FIELDS = ['floorNs', 'sampleNs', 'bytesPerSample', 'readsPerSample', 'allocsPerSample', 'floorIovecs', 'threads'];
