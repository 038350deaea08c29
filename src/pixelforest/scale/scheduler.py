"""Where dask computes: local threads (one shared pool), synchronously, or a distributed cluster.

:func:`open_scheduler` turns what a user passes (None, a name, an address
such as ``"tcp://host:8786"`` or a :class:`distributed.Client`) into a
:class:`Scheduler`, which computes dask collections there and can be
cancelled from another thread.
"""

import concurrent.futures
import contextlib
import numbers
import threading

from pixelforest.errors import InvalidParameterError

__all__ = ["Scheduler", "check_workers", "client_threads", "open_scheduler"]

#: How long to try reaching a dask.distributed scheduler given by address.
_CONNECT_TIMEOUT = "20s"


class _TrackingExecutor(concurrent.futures.Executor):
    """Submits to a shared thread pool and remembers what it submitted.

    dask's local scheduler runs on it (``_max_workers`` blocks at a time);
    :meth:`drain` cancels what has not started and waits for what has, so
    that no block of this computation still runs (and writes) afterwards.
    """

    def __init__(self, pool, max_workers):
        self._pool = pool
        self._max_workers = max_workers
        self._futures = set()
        self._lock = threading.Lock()

    def submit(self, fn, /, *args, **kwargs):
        future = self._pool.submit(fn, *args, **kwargs)
        with self._lock:
            self._futures = {f for f in self._futures if not f.done()}
            self._futures.add(future)
        return future

    def drain(self):
        with self._lock:
            futures = list(self._futures)
        for future in futures:
            future.cancel()
        concurrent.futures.wait(futures)


class Scheduler:
    """How dask computes: local threads (a shared pool), a name, or a distributed client.

    ``cancel`` (a :class:`threading.Event`) stops local computations at
    their next task and distributed ones at their next finished block, with
    ``KeyboardInterrupt``, so that a batch can stop files running in threads.
    """

    def __init__(self, *, client=None, pool=None, executor=None, name=None, n_workers=1,
                 cancel=None):
        self.client = client
        self.pool = pool
        self.executor = executor
        self.name = name
        self.n_workers = n_workers
        self.cancel = cancel

    @property
    def is_distributed(self):
        return self.client is not None

    def check_cancel(self):
        if self.cancel is not None and self.cancel.is_set():
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def session(self):
        """A view for one output whose local blocks are all finished on exit."""
        if self.pool is None:
            yield self
            return
        executor = _TrackingExecutor(self.pool, self.n_workers)
        try:
            yield Scheduler(executor=executor, n_workers=self.n_workers, cancel=self.cancel)
        finally:
            executor.drain()

    def compute(self, *collections, callbacks=()):
        import dask
        from dask.callbacks import Callback

        self.check_cancel()
        if self.client is not None:
            return dask.compute(*collections, scheduler=self.client)
        callbacks = list(callbacks)
        if self.cancel is not None:
            callbacks.append(Callback(pretask=lambda key, dsk, state: self.check_cancel()))
        # explicit callbacks: never dask's global ones (other threads' progress bars)
        scheduler = self.executor or self.pool or self.name
        return dask.compute(*collections, scheduler=scheduler,
                            callbacks=[cb._callback for cb in callbacks])


def check_workers(workers):
    if workers is None:
        return None
    if (isinstance(workers, bool) or not isinstance(workers, numbers.Integral)
            or workers < 1):
        raise InvalidParameterError(
            f"workers must be a positive integer (threads on this machine), got "
            f"{workers!r}; pass e.g. workers=2, or leave it None to use every core."
        )
    return int(workers)


@contextlib.contextmanager
def open_scheduler(scheduler=None, workers=None):
    """Yield a :class:`Scheduler` for ``scheduler`` (None, name, address or Client).

    Local computations run on a thread pool owned here, which is shut down
    (waiting for the running blocks) before the context exits, so that
    nothing writes into a temporary output after it has been removed.
    """
    from concurrent.futures import ThreadPoolExecutor

    from pixelforest._shared.threads import available_cores

    workers = check_workers(workers)
    if scheduler is None or scheduler in ("threads", "threading"):
        n = workers or available_cores()
        pool = ThreadPoolExecutor(n, thread_name_prefix="pixelforest")
        try:
            yield Scheduler(pool=pool, n_workers=n)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    if isinstance(scheduler, str) and scheduler in ("synchronous", "sync", "single-threaded"):
        yield Scheduler(name="synchronous", n_workers=1)
        return
    if isinstance(scheduler, str):
        if "://" not in scheduler:
            raise InvalidParameterError(
                f"scheduler={scheduler!r} is neither a scheduler address nor a local "
                "scheduler name; pass an address such as 'tcp://host:8786', a "
                "distributed.Client, 'threads', 'synchronous', or None."
            )
        from distributed import Client

        try:
            client = Client(scheduler, timeout=_CONNECT_TIMEOUT, set_as_default=False)
        except OSError as exc:
            raise OSError(
                f"cannot reach the dask scheduler at {scheduler} ({exc}); start one with "
                "'dask scheduler' (and 'dask worker ADDRESS' on each machine) or check "
                "the address."
            ) from exc
        try:
            yield Scheduler(client=client, n_workers=client_threads(client))
        finally:
            client.close()
        return
    if type(scheduler).__name__ == "Client" and hasattr(scheduler, "compute"):
        yield Scheduler(client=scheduler, n_workers=client_threads(scheduler))
        return
    raise InvalidParameterError(
        f"scheduler must be None, a scheduler name, an address such as "
        f"'tcp://host:8786' or a distributed.Client, got {type(scheduler).__name__}."
    )


def client_threads(client):
    """Threads of the busiest worker (memory per worker scales with it)."""
    try:
        nthreads = client.nthreads()
    except Exception:  # pragma: no cover - scheduler went away
        return 1
    return max(nthreads.values(), default=1)
