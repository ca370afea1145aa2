// Types for scripts/pyroscope.mjs, which test/helpers/pyroscope.ts imports.

export const PYROSCOPE_VERSION: string;
/** Where the cached binary lives (XDG cache, outside any checkout). */
export function pyroscopeCacheDir(): string;
/** The binary's path: $PYROSCOPE_BIN, else the cache (whether built or not). */
export function pyroscopeBinPath(): string;
/** Returns the binary's path, building it first when it is missing. */
export function ensurePyroscope(): string;
/** The flags that run one server on 127.0.0.1 only, data under `dir`. */
export function pyroscopeArgs(site: { dir: string; http: number; grpc: number; memberlist: number; extraArgs?: string[] }): string[];
