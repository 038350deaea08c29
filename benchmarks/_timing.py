"""Timing helper shared by the benchmark scripts (run them from the repo root)."""

import time


def best_time(fn, repeats):
    """Return ``(best seconds, last result)`` of ``repeats`` calls of ``fn``.

    The minimum is the least noisy estimate on a shared machine: other work
    only ever makes a run slower.
    """
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result
