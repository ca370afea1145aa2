// Types for scripts/arm64.mjs, which test/helpers/arm64.ts imports.

export const RUST_TARGET: string;
/** One arm64 Debian CPython: its version, the suite it comes from, and the root (that suite's) it runs in. */
export interface Arm64PythonPaths {
  version: string;
  suite: string;
  root: string;
  python: string;
}
/** The arm64 Debian CPythons the tests run, with their suites. */
export const ARM64_PYTHONS: readonly { version: string; suite: string }[];
/**
 * Where qemu-user, Node's arm64 root (`root`, bookworm's), arm64 Node, the
 * cross-built addon and every arm64 Python (each in its suite's root) live.
 */
export function arm64Paths(): { qemu: string; root: string; node: string; addon: string; pythons: Arm64PythonPaths[] };
/** Ensures everything `npm run test:arm64` needs (installing, fetching, cross-building); returns the paths. */
export function ensureArm64(options?: { build?: boolean }): ReturnType<typeof arm64Paths>;
/** Runs an arm64 program of `root` under qemu-user; returns its stdout. */
export function underQemu(qemu: string, root: string, argv: string[], options?: object): string;
/** Whether this machine runs the arm64 tests under qemu-user (x86-64 Linux only). */
export function emulatesArm64(): boolean;
