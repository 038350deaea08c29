"""Timing helper shared by the benchmark scripts (run them from the repo root)."""

import time


def best_time(fn, repeats):
    """Return ``(best seconds, last result)`` of ``repeats`` calls of ``fn``.

    The minimum is the least noisy estimate on a shared machine: other work
    only ever makes a run slower.
    """
    best, result = float("inf"), None
    for _ in range(repeats):
        # the previous result is freed first, so that every call starts from
        # the same memory: on a virtual machine, memory the process touches
        # for the first time costs page faults that reused memory does not
        result = None
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result
