import { describe, expect, it } from 'vitest';

import { formatJson, toJsonTraces } from '../src/format/json.js';
import { inContainer, processDump, withIdleThread } from './fixtures.js';

describe('formatJson', () => {
  it("uses py-spy's field names and order, threads in the interpreter's order", () => {
    const traces = JSON.parse(formatJson(processDump)) as Record<string, unknown>[];
    expect(traces).toHaveLength(2);
    expect(Object.keys(traces[0]!)).toEqual([
      'pid',
      'thread_id',
      'thread_name',
      'os_thread_id',
      'active',
      'owns_gil',
      'attached',
      'interpreter_id',
      'status',
      'syscall',
      'frames',
      'process_info',
    ]);
    // A waiting thread names the system call it waited in; a running one has no such key.
    expect(traces[0]).toMatchObject({ status: 'gil_wait', syscall: 'futex' });
    expect(traces[1]).toEqual({
      pid: 4242,
      thread_id: 0x7f3a1d000740,
      thread_name: 'MainThread',
      os_thread_id: 4242,
      active: true,
      owns_gil: true,
      attached: true,
      interpreter_id: 0,
      status: 'running',
      frames: [
        { name: 'spin', filename: '/home/me/demo.py', module: null, short_filename: null, line: 12, locals: null },
        { name: '<module>', filename: '/home/me/demo.py', module: null, short_filename: 'demo.py', line: 0, locals: null },
      ],
      process_info: null,
    });
  });

  it('leaves attached out where it is not known (before 3.12)', () => {
    const traces = toJsonTraces(withIdleThread);
    expect(traces.map((t) => t.attached)).toEqual([false, true, undefined]);
    expect(Object.keys(traces[2]!)).not.toContain('attached');
  });

  it('includes locals with name, addr, arg and repr', () => {
    const [worker] = toJsonTraces(processDump);
    expect(worker!.frames[0]!.locals).toEqual([
      { name: 'n', addr: 0x7f3a00001000, arg: true, repr: '25' },
      { name: 'acc', addr: 0x7f3a00002000, arg: false, repr: null },
    ]);
    expect(Object.keys(worker!.frames[0]!)).toEqual(['name', 'filename', 'module', 'short_filename', 'line', 'locals']);
  });

  it('adds namespace_thread_id and namespace_pid for a target in another PID namespace', () => {
    const [worker, main] = toJsonTraces(inContainer);
    expect(Object.keys(main!)).toEqual([
      'pid',
      'thread_id',
      'thread_name',
      'os_thread_id',
      'namespace_thread_id',
      'namespace_pid',
      'active',
      'owns_gil',
      'attached',
      'interpreter_id',
      'status',
      'frames',
      'process_info',
    ]);
    expect(main).toMatchObject({ pid: 25100, os_thread_id: 25100, namespace_thread_id: 1, namespace_pid: 1 });
    expect(worker).toMatchObject({ pid: 25100, os_thread_id: 25112, namespace_thread_id: 2, namespace_pid: 1 });
  });

  it('is pretty-printed with two spaces and ends with a newline', () => {
    const text = formatJson(processDump);
    expect(text.startsWith('[\n  {\n    "pid": 4242,\n')).toBe(true);
    expect(text.endsWith(']\n')).toBe(true);
  });
});
