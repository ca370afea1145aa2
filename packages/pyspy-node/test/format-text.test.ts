import { describe, expect, it } from 'vitest';

import { formatText, formatThreadId, threadStatus } from '../src/format/text.js';
import { inContainer, processDump, withIdleThread } from './fixtures.js';

describe('formatText', () => {
  it('prints like py-spy dump: header, then threads oldest first, innermost frame first', () => {
    expect(formatText(processDump)).toBe(
      [
        'Process 4242: python3 demo.py --fast',
        'Python v3.12.1 (/usr/bin/python3.12)',
        '',
        'Thread 4242 (active+gil): "MainThread"',
        '    spin (/home/me/demo.py:12)',
        '    <module> (demo.py)',
        '',
        'Thread 0x7F3A1C2B3640 (active, waiting for GIL): "worker-1"',
        '    fib (demo.py:7)',
        '        Arguments:',
        '            n: 25',
        '        Locals:',
        '            acc: ?',
        '    run (threading.py:1010)',
        '',
      ].join('\n'),
    );
  });

  it('uses full filenames when asked', () => {
    const text = formatText(processDump, { fullFilenames: true });
    expect(text).toContain('    fib (/home/me/demo.py:7)\n');
    expect(text).toContain('    run (/usr/lib/python3.12/threading.py:1010)\n');
  });

  it('prints an idle thread without a name and without frames', () => {
    const text = formatText(withIdleThread);
    expect(text.split('\n').slice(3, 5)).toEqual(['Thread 0xABC (idle)', '']);
  });

  it('shows the ids inside a container next to the host ones', () => {
    const lines = formatText(inContainer).split('\n');
    expect(lines[0]).toBe('Process 25100 (ns 1): python3 demo.py --fast');
    expect(lines).toContain('Thread 25100 (ns 1) (active+gil): "MainThread"');
    expect(lines).toContain('Thread 25112 (ns 2) (idle): "worker-1"');
  });

  it('says when the build is free-threaded, and whether its GIL was on', () => {
    const ft = { ...processDump, pythonVersion: '3.13.5', executable: '/opt/bin/python3.13t', freeThreaded: true };
    const second = (gilEnabled: boolean | null) => formatText({ ...ft, gilEnabled }).split('\n')[1];
    expect(second(false)).toBe('Python v3.13.5, free-threaded, GIL disabled (/opt/bin/python3.13t)');
    expect(second(true)).toBe('Python v3.13.5, free-threaded, GIL enabled (/opt/bin/python3.13t)');
    expect(second(null)).toBe('Python v3.13.5, free-threaded, GIL state unknown (/opt/bin/python3.13t)');
  });

  it('prints a process with no threads as just the header', () => {
    expect(formatText({ ...processDump, threads: [] })).toBe(
      'Process 4242: python3 demo.py --fast\nPython v3.12.1 (/usr/bin/python3.12)\n\n',
    );
  });
});

describe('thread header parts', () => {
  it('names each thread\'s interpreter only when there are several', () => {
    // One interpreter: the header lines are unchanged.
    expect(formatText(processDump)).not.toContain('[interpreter');
    const [worker, main] = processDump.threads;
    const sub = { ...worker!, threadName: 'sub-1', interpreterId: 1 };
    const lines = formatText({ ...processDump, threads: [sub, worker!, main!] }).split('\n');
    expect(lines.filter((l) => l.startsWith('Thread '))).toEqual([
      'Thread 4242 (active+gil): "MainThread" [interpreter 0]',
      'Thread 0x7F3A1C2B3640 (active, waiting for GIL): "worker-1" [interpreter 0]',
      'Thread 0x7F3A1C2B3640 (active, waiting for GIL): "sub-1" [interpreter 1]',
    ]);
  });

  it('prefers the OS thread id, in decimal', () => {
    expect(formatThreadId({ threadId: 255, osThreadId: 17 })).toBe('17');
    expect(formatThreadId({ threadId: 255, osThreadId: null })).toBe('0xFF');
  });

  it('names the status as py-spy does', () => {
    expect(threadStatus({ active: false, ownsGil: true, status: 'idle' })).toBe('idle');
    expect(threadStatus({ active: true, ownsGil: false, status: 'running' })).toBe('active');
    expect(threadStatus({ active: true, ownsGil: true, status: 'running' })).toBe('active+gil');
    expect(threadStatus({ active: true, ownsGil: false, status: 'gil_wait' })).toBe('active, waiting for GIL');
  });
});

describe('formatText with subprocesses', () => {
  it('prints every process once, each child under its own header', () => {
    const child = { ...processDump, pid: 5000, parentPid: 4242, commandLine: 'python3 worker.py', subprocesses: [] };
    const text = formatText({ ...processDump, subprocesses: [child] });
    expect(text.match(/^Process 4242: /gm)).toHaveLength(1);
    expect(text.match(/^Process 5000: python3 worker\.py$/gm)).toHaveLength(1);
    expect(text).toMatch(/^-{80}\nParent Process 4242\nProcess 5000: /m);
    expect(text.indexOf('Process 4242')).toBeLessThan(text.indexOf('Process 5000'));
  });
});
