// `record --capture` (py-spy's hidden flag): a launched command's output goes
// to /dev/null instead of the terminal; without it the command keeps it.
import path from 'node:path';

import { afterEach, expect, it } from 'vitest';

import { hostInterpreter, killAllChildren, runCli } from '../helpers/pythons.js';
import { cleanupRecord, outputDir } from '../helpers/record.js';

afterEach(async () => {
  await cleanupRecord();
  await killAllChildren();
});

const CODE = 'import sys, time\nprint("OUT-MARKER", flush=True)\nsys.stderr.write("ERR-MARKER\\n")\nt = time.time()\nwhile time.time() - t < 1.0: pass\n';

it('--capture keeps the launched command\'s output off the terminal', { timeout: 120_000 }, async () => {
  const py = hostInterpreter().argv;
  const file = path.join(outputDir(), 'capture.txt');
  const shown = await runCli(['record', '-f', 'raw', '-o', file, '--', ...py, '-c', CODE]);
  expect(shown.code, shown.stderr).toBe(0);
  expect(shown.stdout).toContain('OUT-MARKER');
  expect(shown.stderr).toContain('ERR-MARKER');
  const captured = await runCli(['record', '--capture', '-f', 'raw', '-o', file, '--', ...py, '-c', CODE]);
  expect(captured.code, captured.stderr).toBe(0);
  expect(captured.stdout).not.toContain('OUT-MARKER');
  expect(captured.stderr).not.toContain('ERR-MARKER');
  expect(captured.stderr).toMatch(/Wrote raw stacks/);
});
