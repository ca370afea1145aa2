#!/usr/bin/env node
// `npm start`: sets the checkout up, starts examples/demo.py, dumps its
// stacks with the pyspy-node CLI, and stops it again.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { demoPython, header, main, ROOT, run, startAndWaitFor } from './lib.mjs';
import { setup } from './setup.mjs';

await main(async () => {
  await setup({ extras: false });
  const python = demoPython();
  header(`demo: ${python.join(' ')} examples/demo.py`);
  const demo = await startAndWaitFor([...python, join(ROOT, 'examples', 'demo.py'), '120'], 'ready');
  try {
    // Let both threads get into their loops before reading them.
    await sleep(300);
    header(`pyspy-node dump --pid ${demo.pid}`);
    run(process.execPath, [join(ROOT, 'packages', 'pyspy-node', 'bin', 'pyspy-node.js'), 'dump', '--pid', String(demo.pid)]);
  } finally {
    demo.kill('SIGTERM');
  }
});
