// profileContinuously (the library's continuous-profiling handle), a server
// with authentication on (Pyroscope's multi-tenancy: a push without
// X-Scope-OrgID is answered 401), --push-retry-forever (a server that is
// not up yet at start), and https (a server whose certificate a private CA
// signed, in front of the server as a TLS-terminating ingress would be),
// all against real Grafana Pyroscope v1.9.0 servers (built once per machine
// by scripts/pyroscope.mjs).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import type { ContinuousOptions, ContinuousProfiler, ContinuousSummary, PushStats, PyspyError } from 'pyspy-node';
import { killAllChildren, loadMatrix, runCli, spawnFixture } from '../helpers/pythons.js';
import {
  eventually,
  functionTotals,
  killPyroscope,
  makeTestCa,
  newSite,
  PYROSCOPE_BUILD_TIMEOUT_MS,
  pyroscopeBinary,
  runId,
  startPyroscope,
  startTlsProxy,
  stopAllPyroscopes,
  type Pyroscope,
} from '../helpers/pyroscope.js';
import { cleanupRecord, interpreter, RECORD_FIXTURE, type RecordTargetReport } from '../helpers/record.js';

const CPU = 'process_cpu:cpu:nanoseconds:cpu:nanoseconds';
const matrix = loadMatrix();
let server: Pyroscope;
let tenanted: Pyroscope;
/** An https front (a TLS-terminating proxy, as an ingress would be) for `server`. */
let secure: string;
const caDir = mkdtempSync(path.join(os.tmpdir(), 'pyspy-test-ca-'));
const ca = makeTestCa(caDir);

beforeAll(async () => {
  const bin = pyroscopeBinary();
  [server, tenanted] = await Promise.all([
    startPyroscope(await newSite(bin)),
    startPyroscope(await newSite(bin, ['-auth.multitenancy-enabled=true'])),
  ]);
  secure = await startTlsProxy(server, ca);
}, PYROSCOPE_BUILD_TIMEOUT_MS);

afterEach(async () => {
  await cleanupRecord();
  await killAllChildren();
});

afterAll(async () => {
  await stopAllPyroscopes();
  rmSync(caDir, { recursive: true, force: true });
});

/** The built package, imported in the tests so that one that fails to load fails them, not the file. */
async function profileContinuously(options: ContinuousOptions): Promise<ContinuousProfiler> {
  return (await import('pyspy-node')).profileContinuously(options);
}

async function ratioTarget(): Promise<number> {
  const fx = await spawnFixture<RecordTargetReport>(interpreter(matrix, 'debian-3.11'), RECORD_FIXTURE, ['--mode', 'ratio'], { via: 'shell' });
  return fx.pid;
}

describe('profileContinuously', () => {
  it('pushes windows, reports them as pushed events and stats, and stops with a summary', { timeout: 180_000 }, async () => {
    const pid = await ratioTarget();
    const run = runId();
    const began = Date.now() - 1000;
    const profiler = await profileContinuously({ pid, server: server.url, appName: 'pyspy-lib', tags: { run }, interval: 1 });
    expect(profiler.pid).toBe(pid);
    expect(profiler.pythonVersion).toMatch(/^3\.11\./);
    const events: PushStats[] = [];
    profiler.on('pushed', (stats) => events.push(stats));
    let ended: ContinuousSummary | undefined;
    profiler.on('end', (summary) => (ended = summary));
    expect(await eventually(async () => events.length >= 3, 60_000)).toBe(true);
    // Each event says more windows went through than the one before.
    for (let i = 1; i < events.length; i++) expect(events[i]!.pushed).toBeGreaterThan(events[i - 1]!.pushed);
    expect(profiler.stats.pushed).toBeGreaterThanOrEqual(3);
    const summary = await profiler.stop();
    expect(summary.reason).toBe('stopped');
    expect(ended).toEqual(summary);
    expect(summary.push.pushed).toBeGreaterThanOrEqual(events.at(-1)!.pushed);
    expect(summary.push.dropped + summary.push.failed).toBe(0);
    // Every sample taken was pushed (the last window included).
    expect(summary.push.samples).toBe(summary.samples);
    expect(summary.samples).toBeGreaterThan(0);
    const totals = await functionTotals(server.url, CPU, `{service_name="pyspy-lib", run="${run}"}`, began, Date.now() + 1000);
    expect(totals.self.get('work_three') ?? 0, [...totals.self.keys()].join(', ')).toBeGreaterThan(0);
    expect(totals.self.get('work_one') ?? 0).toBeGreaterThan(0);
    // The signal stops it too.
    const controller = new AbortController();
    const second = await profileContinuously({ pid, server: server.url, appName: 'pyspy-lib', tags: { run }, interval: 1, signal: controller.signal });
    controller.abort();
    expect((await second.done).reason).toBe('stopped');
  });

  it('emits one error event per kind of failure while the server is down, and a recovery warning', { timeout: 180_000 }, async () => {
    const own = await startPyroscope(await newSite(server.site.bin));
    const pid = await ratioTarget();
    const profiler = await profileContinuously({ pid, server: own.url, appName: 'pyspy-lib-outage', interval: 1 });
    const errors: PyspyError[] = [];
    const warnings: string[] = [];
    profiler.on('error', (e) => errors.push(e));
    profiler.on('warning', (line) => warnings.push(line));
    expect(await eventually(async () => profiler.stats.pushed > 0, 60_000)).toBe(true);
    await killPyroscope(own);
    expect(await eventually(async () => errors.length > 0, 60_000), warnings.join('\n')).toBe(true);
    const back = await startPyroscope(own.site);
    expect(await eventually(async () => warnings.some((w) => /accepts windows again/.test(w)), 60_000), warnings.join('\n')).toBe(true);
    const summary = await profiler.stop();
    await killPyroscope(back);
    // The outage is one error, however many windows failed meanwhile.
    expect(errors, warnings.join('\n')).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf((await import('pyspy-node')).PyspyError);
    expect(errors[0]!.code).toBe('EPUSH');
    expect(errors[0]!.message).toMatch(/failed \(.*retrying with backoff/);
    expect(summary.push.retries).toBeGreaterThan(0);
    expect(summary.samples).toBeGreaterThan(0);
  });

  it('refuses a server that cannot be reached, unless retryForever, which pushes once it comes up', { timeout: 180_000 }, async () => {
    const pid = await ratioTarget();
    const site = await newSite(server.site.bin);
    const url = `http://127.0.0.1:${site.http}`;
    await expect(profileContinuously({ pid, server: url, interval: 1 })).rejects.toMatchObject({ code: 'EPUSH', message: expect.stringContaining('cannot be reached') });
    await expect(profileContinuously({ pid, server: '' })).rejects.toMatchObject({ code: 'EINVAL' });

    const profiler = await profileContinuously({ pid, server: url, appName: 'pyspy-lib-later', interval: 1, retryForever: true });
    const warnings: string[] = [];
    profiler.on('warning', (line) => warnings.push(line));
    expect(await eventually(async () => warnings.some((w) => /sampling starts anyway/.test(w)), 30_000), warnings.join('\n')).toBe(true);
    const up = await startPyroscope(site);
    expect(await eventually(async () => profiler.stats.pushed > 0, 90_000), warnings.join('\n')).toBe(true);
    const summary = await profiler.stop();
    await killPyroscope(up);
    expect(summary.push.pushed).toBeGreaterThan(0);
    expect(summary.push.failed).toBe(0);
  });
});

describe('a server with authentication on', () => {
  it('answers 401 without a tenant: a clear error at start; with --push-tenant the series lands in that tenant only', { timeout: 180_000 }, async () => {
    const pid = String(await ratioTarget());
    const refused = await runCli(['record', '-p', pid, '-d', '1', '--push', tenanted.url]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refused the credentials \(HTTP 401/);
    expect(refused.stderr).not.toContain('Sampling process');
    await expect(profileContinuously({ pid: Number(pid), server: tenanted.url })).rejects.toMatchObject({
      code: 'EPUSH',
      message: expect.stringContaining('HTTP 401'),
    });
    // retryForever does not hide a refusal: only a server that cannot answer yet.
    await expect(profileContinuously({ pid: Number(pid), server: tenanted.url, retryForever: true })).rejects.toMatchObject({ code: 'EPUSH' });

    const run = runId();
    const began = Date.now() - 1000;
    const ok = await runCli(['record', '-p', pid, '-d', '4', '--push', tenanted.url, '--push-tenant', 'team-a', '--app-name', 'pyspy-auth', '--tag', `run=${run}`, '--push-interval', '1']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/Pushed [1-9]\d* windows?/);
    const selector = `{service_name="pyspy-auth", run="${run}"}`;
    const mine = await functionTotals(tenanted.url, CPU, selector, began, Date.now() + 1000, 'team-a');
    expect(mine.self.get('work_three') ?? 0, [...mine.self.keys()].join(', ')).toBeGreaterThan(0);
    const theirs = await functionTotals(tenanted.url, CPU, selector, began, Date.now() + 1000, 'team-b');
    expect(theirs.total).toBe(0);
  });

  it('--push-retry-forever: the CLI starts with the server down, says so once, and ends with exit code 0', { timeout: 120_000 }, async () => {
    const pid = String(await ratioTarget());
    const site = await newSite(server.site.bin);
    const res = await runCli(['record', '-p', pid, '-d', '3', '--push', `http://127.0.0.1:${site.http}`, '--push-retry-forever', '--push-interval', '1']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr.match(/sampling starts anyway/g), res.stderr).toHaveLength(1);
    expect(res.stderr).toMatch(/Pushed 0 windows \(0 samples[^\n]*dropped [1-9]/);
    const without = await runCli(['record', '-p', pid, '-d', '1', '--push-retry-forever']);
    expect(without.code).toBe(1);
    expect(without.stderr).toContain('need --push <url>');
  });
});

describe('https', () => {
  it('pushes to a server whose certificate --push-ca vouches for, and refuses an untrusted one clearly', { timeout: 180_000 }, async () => {
    expect(secure).toMatch(/^https:/);
    expect(secure).not.toBe(server.url);
    const pid = String(await ratioTarget());
    // Not signed by a public root: refused at start, as a TLS problem (not "cannot be reached"), even with retry-forever.
    for (const extra of [[], ['--push-retry-forever']]) {
      const untrusted = await runCli(['record', '-p', pid, '-d', '1', '--push', secure, ...extra]);
      expect(untrusted.code, untrusted.stderr).toBe(1);
      expect(untrusted.stderr).toMatch(/TLS failed \(.*certificate.*\); check the server's certificate, or give its CA with --push-ca/i);
    }
    const notPem = await runCli(['record', '-p', pid, '-d', '1', '--push', secure, '--push-ca', ca.key.replace('server.key', 'server.ext')]);
    expect(notPem.code).toBe(1);
    expect(notPem.stderr).toContain('no PEM certificate in it');
    const plain = await runCli(['record', '-p', pid, '-d', '1', '--push', server.url, '--push-ca', ca.ca]);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain('for https:// servers only');

    const run = runId();
    const began = Date.now() - 1000;
    const ok = await runCli(['record', '-p', pid, '-d', '4', '--push', secure, '--push-ca', ca.ca, '--app-name', 'pyspy-tls', '--tag', `run=${run}`, '--push-interval', '1']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/Pushed [1-9]\d* windows? \(\d+ samples, [\d.]+ KiB\) to https:\/\/127\.0\.0\.1:\d+$/m);
    const totals = await functionTotals(secure, CPU, `{service_name="pyspy-tls", run="${run}"}`, began, Date.now() + 1000);
    expect(totals.self.get('work_three') ?? 0, [...totals.self.keys()].join(', ')).toBeGreaterThan(0);

    // The library, with caFile.
    const profiler = await profileContinuously({ pid: Number(pid), server: secure, caFile: ca.ca, interval: 1 });
    expect(await eventually(async () => profiler.stats.pushed > 0, 60_000)).toBe(true);
    expect((await profiler.stop()).push.failed).toBe(0);
  });
});
