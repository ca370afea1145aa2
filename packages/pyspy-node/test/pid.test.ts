import { describe, expect, it } from 'vitest';

import { PyspyError } from '../src/errors.js';
import { assertPid, parsePid } from '../src/pid.js';

describe('parsePid', () => {
  it.each([
    ['1', 1],
    ['4242', 4242],
    [' 4242 ', 4242],
    ['0x10', 16],
    ['0XfF', 255],
    ['2147483647', 2147483647],
    ['0x7fffffff', 2147483647],
  ])('parses %j as %d', (text, pid) => {
    expect(parsePid(text)).toBe(pid);
  });

  it.each(['', '0', '-1', '1.5', '1e3', 'abc', '0x', '0x0', '12abc', '2147483648', '0x80000000', '99999999999999999999'])(
    'rejects %j with EINVAL',
    (text) => {
      expect(() => parsePid(text)).toThrow(expect.objectContaining({ code: 'EINVAL', name: 'PyspyError' }));
    },
  );

  it('names the bad input and the accepted forms', () => {
    expect(() => parsePid('abc')).toThrow('invalid pid "abc": expected a positive integer up to 2147483647, in decimal or 0x-hex');
  });
});

describe('assertPid', () => {
  it('accepts positive integers that fit a pid_t', () => {
    expect(() => assertPid(1)).not.toThrow();
    expect(() => assertPid(2 ** 31 - 1)).not.toThrow();
  });

  it.each([0, -1, 1.5, Number.NaN, Infinity, 2 ** 31, '42', 42n, null, undefined])('rejects %s', (pid) => {
    let error: unknown;
    try {
      assertPid(pid);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(PyspyError);
    expect(error).toMatchObject({ code: 'EINVAL' });
  });
});
