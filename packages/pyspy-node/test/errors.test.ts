import { describe, expect, it, vi } from 'vitest';

import type { BindingDumpResult } from '../binding/binding.cjs';
import type { Binding } from '../src/binding.js';
import { bindingLoadError, platformName } from '../src/binding.js';
import { dumpWith, unwrap } from '../src/dump.js';
import { fromBindingError, PyspyError } from '../src/errors.js';
import { bindingDump, processDump } from './fixtures.js';

function fakeBinding(result: BindingDumpResult): Pick<Binding, 'dump' | 'dumpSync'> & { dump: ReturnType<typeof vi.fn> } {
  return {
    dump: vi.fn(async () => result),
    dumpSync: vi.fn(() => result),
  };
}

describe('error mapping', () => {
  it('turns a binding error into a PyspyError with the same code and message', () => {
    const err = fromBindingError({ code: 'EPERM', message: 'not allowed to read process 1' });
    expect(err).toBeInstanceOf(PyspyError);
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ name: 'PyspyError', code: 'EPERM', message: 'not allowed to read process 1' });
  });

  it('keeps codes this version does not know yet', () => {
    expect(fromBindingError({ code: 'ENEWTHING', message: 'm' }).code).toBe('ENEWTHING');
  });

  it('unwraps a successful result into the public shape', () => {
    expect(unwrap({ dump: bindingDump, error: null })).toEqual(processDump);
    expect(processDump.threads.every((t) => t.pid === 4242)).toBe(true);
  });

  it('throws when the result is an error', () => {
    expect(() => unwrap({ dump: null, error: { code: 'ENOPROCESS', message: 'no process with pid 9' } })).toThrow(
      expect.objectContaining({ code: 'ENOPROCESS', message: 'no process with pid 9' }),
    );
  });

  it('calls a result with neither dump nor error an internal error', () => {
    expect(() => unwrap({ dump: null, error: null })).toThrow(expect.objectContaining({ code: 'EINTERNAL' }));
  });
});

describe('dumpWith', () => {
  it('passes the options through with defaults', async () => {
    const binding = fakeBinding({ dump: bindingDump, error: null });
    await expect(dumpWith(binding, 4242, { locals: true })).resolves.toEqual(processDump);
    expect(binding.dump).toHaveBeenCalledWith(4242, { locals: true, localsLevel: 1, nonblocking: false, fullFilenames: false, subprocesses: false, native: false, asyncio: false });
    await dumpWith(binding, 4242, { locals: 3 });
    expect(binding.dump).toHaveBeenLastCalledWith(4242, expect.objectContaining({ locals: true, localsLevel: 3 }));
    await expect(dumpWith(binding, 4242, { locals: 1.5 })).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('rejects an invalid pid with EINVAL before calling the binding', async () => {
    const binding = fakeBinding({ dump: bindingDump, error: null });
    await expect(dumpWith(binding, -1)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(dumpWith(binding, 1.5)).rejects.toBeInstanceOf(PyspyError);
    expect(binding.dump).not.toHaveBeenCalled();
  });

  it('rejects with the binding error', async () => {
    const binding = fakeBinding({ dump: null, error: { code: 'ENOTPYTHON', message: 'process 7 is not Python' } });
    await expect(dumpWith(binding, 7)).rejects.toMatchObject({ code: 'ENOTPYTHON', message: 'process 7 is not Python' });
  });
});

describe('missing native addon', () => {
  it('names the platform and says what to do', () => {
    const cause = new Error('Cannot find native binding');
    const err = bindingLoadError(cause, 'linux-arm64-musl');
    expect(err.code).toBe('ENOBINDING');
    expect(err.cause).toBe(cause);
    expect(err.message).toContain('linux-arm64-musl');
    expect(err.message).toContain('@pyspy-node/binding-linux-arm64-musl');
    expect(err.message).toContain('npm run build');
  });

  it('names platforms as napi-rs does', () => {
    expect(platformName('linux', 'x64', 'gnu')).toBe('linux-x64-gnu');
    expect(platformName('linux', 'arm64', 'musl')).toBe('linux-arm64-musl');
    expect(platformName('darwin', 'arm64')).toBe('darwin-arm64');
    expect(platformName('win32', 'x64')).toBe('win32-x64-msvc');
  });
});
