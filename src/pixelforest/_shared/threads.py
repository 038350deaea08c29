"""One place that decides how many threads pixelforest's compiled code uses.

The number of threads comes, in this order, from an explicit ``n_threads``
argument, the ``PIXELFOREST_NUM_THREADS`` environment variable, or the number
of CPU cores this process may run on.  While a numba parallel kernel runs,
the BLAS thread pools (OpenBLAS, MKL) are limited to one thread with
:mod:`threadpoolctl`, so the two pools never oversubscribe the cores.
"""

import contextlib
import os

from pixelforest.errors import InvalidParameterError

__all__ = ["ENV_VAR", "available_cores", "resolve_n_threads", "limit_blas_threads"]

#: Environment variable read when no ``n_threads`` is given.
ENV_VAR = "PIXELFOREST_NUM_THREADS"


def available_cores():
    """Return the number of CPU cores this process may run on (at least 1).

    Examples
    --------
    >>> available_cores() >= 1
    True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def _parse(value, source):
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = None
    if n is None or isinstance(value, bool) or (isinstance(value, float) and value != n):
        raise InvalidParameterError(
            f"{source} must be a positive integer or -1 (all cores), got {value!r}; "
            "pass e.g. n_threads=2 or unset it to use every core."
        )
    if n == -1:
        return available_cores()
    if n < 1:
        raise InvalidParameterError(
            f"{source} must be a positive integer or -1 (all cores), got {n}; "
            "pass e.g. n_threads=2 or unset it to use every core."
        )
    return n


def resolve_n_threads(n_threads=None, *, maximum=None):
    """Return the number of threads to use.

    Parameters
    ----------
    n_threads : int or None, optional
        Explicit number of threads; -1 means all available cores.  None reads
        the ``PIXELFOREST_NUM_THREADS`` environment variable, and falls back
        to the number of available cores when it is unset or empty.
    maximum : int or None, optional
        Upper bound (e.g. the size of numba's thread pool).

    Returns
    -------
    n : int
        At least 1, at most ``maximum``.

    Raises
    ------
    InvalidParameterError
        ``n_threads`` or the environment variable is not a positive integer
        or -1.

    Examples
    --------
    >>> resolve_n_threads(1)
    1
    >>> resolve_n_threads(8, maximum=2)
    2
    """
    if n_threads is not None:
        n = _parse(n_threads, "n_threads")
    else:
        env = os.environ.get(ENV_VAR, "").strip()
        n = _parse(env, ENV_VAR) if env else available_cores()
    if maximum is not None:
        n = min(n, max(1, int(maximum)))
    return n


@contextlib.contextmanager
def limit_blas_threads(limit=1):
    """Limit the BLAS thread pools to ``limit`` threads inside the block.

    Only BLAS pools are limited: an OpenMP runtime may be the one running
    numba's own threads, and limiting it would starve the kernel.

    Examples
    --------
    >>> with limit_blas_threads(1):
    ...     pass
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        # scanning the loaded libraries costs milliseconds: once per process
        # (BLAS is loaded with NumPy, before any call can get here)
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    with _CONTROLLER.limit(limits=limit, user_api="blas"):
        yield


#: The threadpoolctl controller of :func:`limit_blas_threads`, made on first use.
_CONTROLLER = None


def run_on_pool(work, items, n_threads, *, name="pf-pool"):
    """Call ``work(item)`` for every item, on ``n_threads`` threads.

    With one thread (or one item) the calls run here, in order.  Otherwise
    one :class:`~concurrent.futures.ThreadPoolExecutor` runs them; the
    first exception is re-raised and the calls not yet started are
    cancelled (Ctrl-C included).

    Examples
    --------
    >>> seen = []
    >>> run_on_pool(seen.append, range(4), 2)
    >>> sorted(seen)
    [0, 1, 2, 3]
    """
    import concurrent.futures

    items = list(items)
    if n_threads <= 1 or len(items) <= 1:
        for item in items:
            work(item)
        return
    pool = concurrent.futures.ThreadPoolExecutor(min(n_threads, len(items)),
                                                 thread_name_prefix=name)
    try:
        for future in [pool.submit(work, item) for item in items]:
            future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
