// Types for scripts/package-install.mjs, which test/e2e/install.test.ts imports.

/** Programs that mean a Rust toolchain is reachable. */
export declare const TOOLCHAIN: readonly string[];

/** The full path of `name` on `pathVar`, or null. */
export declare function which(name: string, pathVar?: string): string | null;

/** An environment with no Rust toolchain on PATH and no registry to reach. */
export declare function isolatedEnv(workDir: string): NodeJS.ProcessEnv & { PATH: string };

/** The toolchain programs that `env` can still find (should be none). */
export declare function toolchainOnPath(env: NodeJS.ProcessEnv): string[];

/** `['/usr/bin/unshare', '-n', '--']` where a network namespace can be made, else `[]`. */
export declare function noNetworkPrefix(): string[];

export interface IsolatedResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `cmd args` with `env`, without network when possible. */
export declare function runIsolated(
  cmd: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<IsolatedResult>;

/** Packs the runtime dependencies of `manifest` from the workspace's node_modules. */
export declare function packDependencies(manifest: { dependencies?: Record<string, string> }, outDir: string): string[];

/** Creates `workDir/project` and installs `tarballs` into it with `npm install --offline`. */
export declare function installTarballs(
  workDir: string,
  tarballs: string[],
  env: NodeJS.ProcessEnv,
): Promise<IsolatedResult & { project: string }>;

/** The `.node` files under `dir`, relative to it. */
export declare function nodeFiles(dir: string): string[];

/** Writes `check.mjs` (a library `dump(PID)` that prints one JSON line) into `project`. */
export declare function writeLibraryCheck(project: string): string;
