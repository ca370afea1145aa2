#!/usr/bin/env node
// Builds Grafana Pyroscope v1.9.0 (AGPL-3.0, so built here, never committed)
// from the Go module proxy into a per-machine cache outside the checkout, for
// the continuous-profiling e2e tests. Reuses the binary when it is there; a
// fresh machine pays ~1.6 GB of module downloads and 5-15 minutes of
// compiling once. Fails loudly (non-zero exit) when it cannot be built.
//
//   node scripts/pyroscope.mjs          print the binary's path (build if missing)
//
// PYROSCOPE_BIN=/path/to/pyroscope skips the build and uses that binary.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { header, main, seconds, StepError } from './lib.mjs';

export const PYROSCOPE_VERSION = 'v1.9.0';

/** Where the cached binary lives (XDG cache, outside any checkout). */
export function pyroscopeCacheDir() {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'pyspy-node', `pyroscope-${PYROSCOPE_VERSION}`);
}

/** The binary's path: $PYROSCOPE_BIN, else the cache (whether built or not). */
export function pyroscopeBinPath() {
  return process.env.PYROSCOPE_BIN || join(pyroscopeCacheDir(), 'pyroscope');
}

function sh(script, cwd) {
  console.log(`$ ${script}`);
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { cwd, stdio: 'inherit' });
  if (r.error) throw new StepError(`pyroscope build: ${r.error.message}`);
  if (r.status !== 0) throw new StepError(`pyroscope build failed (${r.signal ?? `exit code ${r.status}`}) at: ${script}`);
}

/** Returns the binary's path, building it first when it is missing. */
export function ensurePyroscope() {
  const bin = pyroscopeBinPath();
  if (existsSync(bin)) return bin;
  if (process.env.PYROSCOPE_BIN) throw new StepError(`PYROSCOPE_BIN=${bin} does not exist`);
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error || go.status !== 0) {
    throw new StepError('building Pyroscope for the e2e tests needs Go (`go` on PATH); or set PYROSCOPE_BIN');
  }
  const dir = pyroscopeCacheDir();
  const work = join(dir, 'build');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  header(`pyroscope: building ${PYROSCOPE_VERSION} once into ${dir} (several minutes on a fresh machine)`);
  const started = Date.now();
  // The module's go.mod replaces its api sub-module with a local folder the
  // proxy zip lacks: require the published api module instead.
  sh(
    [
      `DIR=$(go mod download -json github.com/grafana/pyroscope@${PYROSCOPE_VERSION} | sed -n 's/.*"Dir": "\\(.*\\)".*/\\1/p')`,
      'test -n "$DIR"',
      'cp -r "$DIR" src && chmod -R u+w src',
      'cd src && rm -f go.work go.work.sum',
      'go mod edit -dropreplace github.com/grafana/pyroscope/api -require github.com/grafana/pyroscope/api@v1.0.0',
      "GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' -o ../pyroscope.tmp ./cmd/pyroscope",
    ].join(' && '),
    work,
  );
  // Rename last so a half-built binary is never taken for a cached one.
  renameSync(join(work, 'pyroscope.tmp'), bin);
  rmSync(work, { recursive: true, force: true });
  console.log(`pyroscope: built ${bin} in ${seconds(Date.now() - started)}`);
  return bin;
}

/**
 * The flags that run one server on 127.0.0.1 only: its own ports, every
 * ring in memory (a single process), data under `dir`, and no calls home.
 */
export function pyroscopeArgs({ dir, http, grpc, memberlist, extraArgs = [] }) {
  const lo = '127.0.0.1';
  return [
    '-self-profiling.disable-push=true',
    '-usage-stats.enabled=false',
    '-ingester.min-ready-duration=0s',
    `-server.http-listen-address=${lo}`,
    `-server.http-listen-port=${http}`,
    `-server.grpc-listen-address=${lo}`,
    `-server.grpc-listen-port=${grpc}`,
    `-memberlist.bind-addr=${lo}`,
    `-memberlist.bind-port=${memberlist}`,
    `-memberlist.advertise-addr=${lo}`,
    ...[
      'ring.store',
      'distributor.ring.store',
      'query-scheduler.ring.store',
      'overrides-exporter.ring.store',
      'compactor.ring.store',
      'store-gateway.sharding-ring.store',
    ].map((flag) => `-${flag}=inmemory`),
    ...[
      'ingester.lifecycler.addr',
      'distributor.ring.instance-addr',
      'query-scheduler.ring.instance-addr',
      'query-frontend.instance-addr',
      'overrides-exporter.ring.instance-addr',
      'compactor.ring.instance-addr',
      'store-gateway.sharding-ring.instance-addr',
    ].map((flag) => `-${flag}=${lo}`),
    `-pyroscopedb.data-path=${join(dir, 'data')}`,
    '-storage.backend=filesystem',
    `-storage.filesystem.dir=${join(dir, 'shared')}`,
    ...extraArgs,
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main(() => {
    console.log(ensurePyroscope());
  });
}
