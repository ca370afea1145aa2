"""A small CPU-busy program for `npm start` to dump: two threads, a few functions."""
import sys
import threading
import time


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def crunch(stop):
    while not stop.is_set():
        fib(18)


def spin(seconds):
    deadline = time.monotonic() + seconds
    total = 0
    while time.monotonic() < deadline:
        total += sum(i * i for i in range(1000))
    return total


if __name__ == "__main__":
    stop = threading.Event()
    threading.Thread(target=crunch, args=(stop,), name="cruncher", daemon=True).start()
    print("ready", flush=True)
    spin(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0)  # exits by itself
    stop.set()
