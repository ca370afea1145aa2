import { fileURLToPath } from 'node:url';

import { defineConfig } from 'vitest/config';

// The Windows tests run under Wine, set up by scripts/windows.mjs: `npm run
// test:windows` (and a step of `npm test`) runs them with this config; the
// main config leaves test/windows out.
export default defineConfig({
  test: {
    include: ['test/windows/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // A temporary directory of the run's own, removed at its end (test/tmp-scope.ts).
    globalSetup: [fileURLToPath(new URL('../tmp-scope.ts', import.meta.url))],
    // One Wine prefix, one wineserver: files run one after another.
    fileParallelism: false,
  },
});
