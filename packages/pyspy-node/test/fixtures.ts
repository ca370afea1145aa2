// A hand-made dump, shaped like what the native binding returns, for tests
// that must not need the addon.
import type { BindingProcessDump } from '../binding/binding.cjs';
import { toProcessDump } from '../src/dump.js';
import type { ProcessDump } from '../src/types.js';

/** Two threads, newest first as the interpreter lists them. */
export const bindingDump: BindingProcessDump = {
  parentPid: undefined,
  subprocesses: [],
  pid: 4242,
  commandLine: 'python3 demo.py --fast',
  executable: '/usr/bin/python3.12',
  pythonVersion: '3.12.1',
  freeThreaded: false,
  gilEnabled: true,
  threads: [
    {
      threadId: 0x7f3a1c2b3640,
      osThreadId: null,
      namespaceThreadId: null,
      interpreterId: 0,
      threadName: 'worker-1',
      active: true,
      status: 'gil_wait',
      syscall: 'futex',
      ownsGil: false,
      attached: false,
      frames: [
        {
          name: 'fib',
          filename: '/home/me/demo.py',
          shortFilename: 'demo.py',
          line: 7,
          module: null,
          locals: [
            { name: 'n', addr: 0x7f3a00001000, arg: true, repr: '25' },
            { name: 'acc', addr: 0x7f3a00002000, arg: false, repr: null },
          ],
        },
        { name: 'run', filename: '/usr/lib/python3.12/threading.py', shortFilename: 'threading.py', line: 1010, module: null, locals: [] },
      ],
    },
    {
      threadId: 0x7f3a1d000740,
      osThreadId: 4242,
      namespaceThreadId: null,
      interpreterId: 0,
      threadName: 'MainThread',
      active: true,
      status: 'running',
      syscall: null,
      ownsGil: true,
      attached: true,
      frames: [
        { name: 'spin', filename: '/home/me/demo.py', shortFilename: null, line: 12, module: null, locals: null },
        { name: '<module>', filename: '/home/me/demo.py', shortFilename: 'demo.py', line: 0, module: null, locals: null },
      ],
    },
  ],
};

export const processDump: ProcessDump = toProcessDump(bindingDump);

/** The same dump with one idle, unnamed thread added (oldest, listed last). */
export const withIdleThread: ProcessDump = {
  ...processDump,
  threads: [
    ...processDump.threads,
    { pid: 4242, threadId: 0xabc, osThreadId: null, namespaceThreadId: null, threadName: null, interpreterId: 0, active: false, status: 'idle', syscall: 'clock_nanosleep', ownsGil: false, attached: null, frames: [] },
  ],
};

/**
 * The same dump as seen from the host when the target runs in a container:
 * pid 25100 is 1 inside, the main thread's tid 25100 is 1 and a worker's
 * 25112 is 2.
 */
export const inContainer: ProcessDump = {
  ...processDump,
  pid: 25100,
  namespacePid: 1,
  threads: processDump.threads.map((t, i) => ({
    ...t,
    pid: 25100,
    osThreadId: i === 0 ? 25112 : 25100,
    namespaceThreadId: i === 0 ? 2 : 1,
    active: i === 0 ? false : t.active,
    status: i === 0 ? 'idle' : t.status,
    syscall: i === 0 ? 'futex' : t.syscall,
  })),
};
