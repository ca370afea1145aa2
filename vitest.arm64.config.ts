import { defineConfig } from 'vitest/config';

// `npm run test:arm64`: Linux arm64 under qemu-user (see scripts/arm64.mjs).
export default defineConfig({
  test: {
    include: ['test/arm64/**/*.test.ts'],
    // Emulated interpreters start slowly; the limits only turn a hang into a failure.
    testTimeout: 180_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // A temporary directory of the run's own, removed at its end (test/tmp-scope.ts).
    globalSetup: ['test/tmp-scope.ts'],
    // One file, its tests one after another: each runs two emulated processes.
    fileParallelism: false,
  },
});
