/**
 * A real Grafana Pyroscope server for the push tests: built once per machine
 * by scripts/pyroscope.mjs (cached outside the checkout), started on
 * 127.0.0.1 only with its data in a temporary directory, and queried through
 * its Connect JSON API. {@link stopAllPyroscopes} (call it in `afterAll`)
 * stops every server started here and removes its directory, pass or fail.
 *
 * @module
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { pyroscopeArgs } from '../../scripts/pyroscope.mjs';
import { killChild } from './children.js';
import { REPO_ROOT } from './pythons.js';

/** How long the first build may take on a fresh machine (module downloads and compiling). */
export const PYROSCOPE_BUILD_TIMEOUT_MS = 40 * 60_000;

/**
 * The server binary, building it when the cache lacks it. Throws (the tests
 * fail loudly) when it cannot be had.
 */
export function pyroscopeBinary(): string {
  const out = execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts/pyroscope.mjs')], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: PYROSCOPE_BUILD_TIMEOUT_MS,
  });
  const lines = out.trim().split('\n');
  return lines[lines.length - 1]!;
}

/** A free TCP port on loopback (bound, read, released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A server's fixed identity: ports and data directory survive a restart. */
export interface PyroscopeSite {
  bin: string;
  dir: string;
  http: number;
  grpc: number;
  memberlist: number;
  /** More server flags, e.g. `-auth.multitenancy-enabled=true`. */
  extraArgs: string[];
}

/** A private CA and a server certificate for 127.0.0.1 it signed (PEM files). */
export interface TestCa {
  ca: string;
  cert: string;
  key: string;
}

/** CA certificates by origin, for this module's own requests to https servers. */
const trusted = new Map<string, Buffer>();

/**
 * Makes a private CA and a server certificate for `127.0.0.1` (EC P-256,
 * valid two days) with openssl, in `dir`.
 */
export function makeTestCa(dir: string): TestCa {
  const f = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=pyspy-node test CA');
  openssl('req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('server.ext'));
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}

/** A request to a server of this module (https ones trusted through their CA). */
function request(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ ok: boolean; status: number; text: string }> {
  const target = new URL(url);
  const ca = trusted.get(target.origin);
  const lib = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(target, { method: init.method ?? 'GET', headers: init.headers, ...(ca ? { ca } : {}) }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ ok: (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300, status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`${url}: no answer within 30 s`)));
    req.end(init.body);
  });
}

/** A running server. */
export interface Pyroscope {
  site: PyroscopeSite;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  child: ChildProcess;
  /** Its log so far (stdout and stderr), for failure messages. */
  log(): string;
}

const running = new Set<Pyroscope>();
const sites = new Set<PyroscopeSite>();

/** Reserves ports and a temporary data directory for a server. */
export async function newSite(bin: string, extraArgs: string[] = []): Promise<PyroscopeSite> {
  const site = {
    bin,
    dir: mkdtempSync(path.join(os.tmpdir(), 'pyspy-pyroscope-')),
    http: await freePort(),
    grpc: await freePort(),
    memberlist: await freePort(),
    extraArgs,
  };
  sites.add(site);
  return site;
}

/** Starts the server of `site` and waits for `/ready`. */
export async function startPyroscope(site: PyroscopeSite, readyTimeoutMs = 60_000): Promise<Pyroscope> {
  const lo = '127.0.0.1';
  const args = pyroscopeArgs(site);
  const child = spawn(site.bin, args, { cwd: site.dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const server: Pyroscope = { site, url: `http://${lo}:${site.http}`, child, log: () => log };
  running.add(server);
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`pyroscope exited before it was ready (${child.exitCode ?? child.signalCode}):\n${log}`);
    }
    try {
      const res = await request(`${server.url}/ready`);
      if (res.ok && res.text.trim() === 'ready') return server;
    } catch {
      // not listening yet
    }
    if (Date.now() - started > readyTimeoutMs) {
      throw new Error(`pyroscope was not ready within ${readyTimeoutMs} ms:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

const proxies = new Set<https.Server>();

/**
 * An https front for `server` on 127.0.0.1, with `ca`'s server certificate:
 * what a TLS-terminating ingress does. (Pyroscope's own TLS flags do not
 * fit a single-binary server: its parts call each other on the same port
 * without TLS.) Closed by {@link stopAllPyroscopes}.
 */
export async function startTlsProxy(server: Pyroscope, ca: TestCa): Promise<string> {
  const upstream = new URL(server.url);
  const proxy = https.createServer({ key: readFileSync(ca.key), cert: readFileSync(ca.cert) }, (req, res) => {
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    out.on('error', () => {
      res.writeHead(502);
      res.end('upstream down');
    });
    req.pipe(out);
  });
  proxies.add(proxy);
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const address = proxy.address();
  if (typeof address !== 'object' || address === null) throw new Error('the TLS proxy has no address');
  const url = `https://127.0.0.1:${address.port}`;
  trusted.set(url, readFileSync(ca.ca));
  return url;
}

/** Kills `server` (SIGKILL: as abrupt as a crash) and waits for it to be gone. */
export async function killPyroscope(server: Pyroscope): Promise<void> {
  await killChild(server.child);
  running.delete(server);
}

/** Stops every server started here and removes their data directories. */
export async function stopAllPyroscopes(): Promise<void> {
  await Promise.all([...proxies].map((p) => new Promise((resolve) => p.close(resolve))));
  proxies.clear();
  await Promise.all([...running].map((s) => killPyroscope(s)));
  for (const site of sites) rmSync(site.dir, { recursive: true, force: true });
  sites.clear();
}

process.once('exit', () => {
  for (const s of running) s.child.kill('SIGKILL');
  for (const site of sites) rmSync(site.dir, { recursive: true, force: true });
});

/** POSTs a Connect JSON call and returns the parsed answer; throws on a non-2xx status. */
export async function connectCall<T>(url: string, method: string, body: unknown, tenant?: string): Promise<T> {
  const res = await request(`${url}/${method}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(tenant !== undefined ? { 'X-Scope-OrgID': tenant } : {}) },
    body: JSON.stringify(body),
  });
  const text = res.text;
  if (!res.ok) throw new Error(`${method}: HTTP ${res.status}: ${text}`);
  return JSON.parse(text) as T;
}

/** Self and total sample values per function name, from a merged flame graph. */
export interface FunctionTotals {
  self: Map<string, number>;
  total: number;
}

interface FlameGraph {
  flamegraph?: { names: string[]; levels: { values: (string | number)[] }[]; total?: string | number };
}

/**
 * Queries `SelectMergeStacktraces` for `selector` over [startMs, endMs] and
 * sums each function's self value (levels hold [offset, total, self, name] quads).
 */
export async function functionTotals(
  url: string,
  profileTypeID: string,
  selector: string,
  startMs: number,
  endMs: number,
  tenant?: string,
): Promise<FunctionTotals> {
  const answer = await connectCall<FlameGraph>(
    url,
    'querier.v1.QuerierService/SelectMergeStacktraces',
    { profileTypeID, labelSelector: selector, start: startMs, end: endMs },
    tenant,
  );
  const self = new Map<string, number>();
  const fg = answer.flamegraph;
  if (!fg) return { self, total: 0 };
  for (const level of fg.levels) {
    const v = level.values.map(Number);
    for (let i = 0; i + 3 < v.length; i += 4) {
      const name = fg.names[v[i + 3]!]!;
      self.set(name, (self.get(name) ?? 0) + v[i + 2]!);
    }
  }
  return { self, total: Number(fg.total ?? 0) };
}

/** The values of label `name` among series matching `selector`. */
export async function labelValues(url: string, name: string, selector: string, startMs: number, endMs: number): Promise<string[]> {
  const answer = await connectCall<{ names?: string[] }>(url, 'querier.v1.QuerierService/LabelValues', {
    name,
    matchers: [selector],
    start: startMs,
    end: endMs,
  });
  return answer.names ?? [];
}

/** A label value unique to one test run, so that queries see only its series. */
export function runId(): string {
  return `r${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls `check` every 200 ms until it is true; gives up (false) after
 * `limitMs`. A limit, not a timing: it only turns a hang into a failure.
 */
export async function eventually(check: () => Promise<boolean>, limitMs: number): Promise<boolean> {
  const until = Date.now() + limitMs;
  while (Date.now() < until) {
    if (await check().catch(() => false)) return true;
    await sleep(200);
  }
  return false;
}
