// Types for scripts/arm64.mjs, which test/helpers/arm64.ts imports.

export const RUST_TARGET: string;
/** Where qemu-user, the arm64 root (CPython 3.11, Node) and the cross-built addon live. */
export function arm64Paths(): { qemu: string; root: string; python: string; node: string; addon: string };
/** Ensures everything `npm run test:arm64` needs (installing, fetching, cross-building); returns the paths. */
export function ensureArm64(options?: { build?: boolean }): ReturnType<typeof arm64Paths>;
/** Runs an arm64 program of the root under qemu-user; returns its stdout. */
export function underQemu(paths: ReturnType<typeof arm64Paths>, argv: string[], options?: object): string;
/** Whether this machine runs the arm64 tests under qemu-user (x86-64 Linux only). */
export function emulatesArm64(): boolean;
