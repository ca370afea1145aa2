# -*- coding: utf-8 -*-
"""Benchmark target: a busy loop that counts its own iterations.

    python target.py depth N      the main thread recurses until N Python frames
                                  are on its stack (<module>, N-2 recurse(), spin)
                                  and spins there
    python target.py threads N    32 threads asleep in a 50 ms sleep loop (mostly
                                  idle), plus one thread "busy" spinning at depth N;
                                  the main thread waits in join()

It prints "READY <pid> <python version>" once the loop runs, then every 50 ms
"<CLOCK_MONOTONIC ns> <iterations so far>", until killed. The harness compares
iterations per second inside the windows a profiler was attached with the
windows around them, when nothing was. Runs on 3.11-3.15.
"""
import os
import sys
import threading
import time

sys.dont_write_bytecode = True

REPORT_NS = 50_000_000
IDLE_THREADS = 32


def spin():
    """The busy loop: chunks of a small pure-Python loop, then a clock check."""
    out = sys.stdout
    clock = time.monotonic_ns
    n = 0
    last = clock()
    out.write("READY %d %s\n" % (os.getpid(), sys.version.split()[0]))
    out.flush()
    while True:
        x = 0
        for i in range(100):
            x += i
        n += 1
        now = clock()
        if now - last >= REPORT_NS:
            out.write("%d %d\n" % (now, n))
            out.flush()
            last = now


def recurse(k):
    if k <= 0:
        spin()
    else:
        recurse(k - 1)


def nap():
    while True:
        time.sleep(0.05)


def main():
    mode, depth = sys.argv[1], int(sys.argv[2])
    # Frames on the busy stack: <module>, main(), recurse() k+1 times, spin();
    # in a thread: Thread._bootstrap, _bootstrap_inner, run, recurse() k+1 times, spin.
    if mode == "depth":
        recurse(max(0, depth - 4))
    elif mode == "threads":
        for i in range(IDLE_THREADS):
            threading.Thread(target=nap, name="idle-%d" % i, daemon=True).start()
        busy = threading.Thread(target=recurse, args=(max(0, depth - 5),), name="busy", daemon=True)
        busy.start()
        busy.join()
    else:
        sys.exit("usage: target.py depth|threads N")


if __name__ == "__main__":
    main()
