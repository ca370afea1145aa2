import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // Run by their own steps of `npm test`: under Wine (`npm run test:windows`,
    // test/windows/vitest.config.ts) and under qemu-user (`npm run test:arm64`).
    exclude: ['**/node_modules/**', 'test/windows/**', 'test/arm64/**'],
    // End-to-end tests start Python programs and build nothing themselves,
    // but a loaded 2-core machine can still be slow to spawn interpreters.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Native addons and child processes are safer in forked workers than
    // in worker threads.
    pool: 'forks',
    // A temporary directory of the run's own, removed at its end (test/tmp-scope.ts).
    globalSetup: ['test/tmp-scope.ts'],
  },
});
