"""Where dask computes: local threads (one shared pool), synchronously, or a distributed cluster.

:func:`open_scheduler` turns what a user passes (None, a name, an address
such as ``"tcp://host:8786"`` or a :class:`distributed.Client`) into a
:class:`Scheduler`, which computes dask collections there and can be
cancelled from another thread.

A distributed computation never waits forever: :func:`open_scheduler`
waits at most ``timeout`` seconds for the cluster to have a worker, and
:meth:`Scheduler.wait_futures` (every distributed computation goes through
it) raises :class:`~pixelforest.errors.ClusterTimeoutError` once the
cluster has made no progress for ``timeout`` seconds: none of the futures
finished and no worker is running anything (no workers left, or all idle).
"""

import concurrent.futures
import contextlib
import math
import numbers
import threading
import time

from pixelforest.errors import ClusterTimeoutError, InvalidParameterError

__all__ = ["DEFAULT_TIMEOUT", "Scheduler", "check_scheduler_address", "check_timeout",
           "check_workers", "client_threads", "open_scheduler"]

#: How long to try reaching a dask.distributed scheduler given by address.
_CONNECT_TIMEOUT = "20s"

#: Seconds a distributed computation may go without progress (CLI ``--timeout``).
DEFAULT_TIMEOUT = 60.0

#: Address schemes of dask.distributed's transports.
_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")

#: Seconds between two looks at finished futures while waiting.
_POLL = 0.05


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
        # a second Ctrl-C (or a signal) must not cut this wait short: a block still
        # running would write into a temporary output that is about to be removed
        interrupted = None
        while True:
            try:
                concurrent.futures.wait(futures)
                break
            except KeyboardInterrupt as exc:
                interrupted = exc
        if interrupted is not None:
            raise interrupted


class Scheduler:
    """How dask computes: local threads (a shared pool), a name, or a distributed client.

    ``cancel`` (a :class:`threading.Event`) stops local computations at
    their next task and distributed ones at their next finished block, with
    ``KeyboardInterrupt``, so that a batch can stop files running in threads.
    ``timeout`` is how long a distributed computation may make no progress
    before :class:`~pixelforest.errors.ClusterTimeoutError`; ``address``
    names the cluster in messages.
    """

    def __init__(self, *, client=None, pool=None, executor=None, name=None, n_workers=1,
                 cancel=None, timeout=DEFAULT_TIMEOUT, address=None):
        self.client = client
        self.pool = pool
        self.executor = executor
        self.name = name
        self.n_workers = n_workers
        self.cancel = cancel
        self.timeout = timeout
        self.address = address

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
            futures = self.client.compute(list(collections))
            self.wait_futures(futures)
            return tuple(future.result() for future in futures)
        callbacks = list(callbacks)
        if self.cancel is not None:
            callbacks.append(Callback(pretask=lambda key, dsk, state: self.check_cancel()))
        # explicit callbacks: never dask's global ones (other threads' progress bars)
        scheduler = self.executor or self.pool or self.name
        return dask.compute(*collections, scheduler=scheduler,
                            callbacks=[cb._callback for cb in callbacks])


    def wait_futures(self, futures, on_done=None):
        """Wait for distributed ``futures``; raise if the cluster stalls for ``timeout`` s.

        Progress is a future finishing or a worker running a task (the
        scheduler is asked at most once a second).  A failed future raises
        its error; on any exception (also Ctrl-C, a signal, or
        :meth:`check_cancel`) the futures not finished are cancelled.
        ``on_done(future)`` is called as each finishes.
        """
        from distributed import as_completed

        client = self.client
        remaining = len(futures)
        check_every = min(1.0, self.timeout / 4)
        last_progress = next_check = time.monotonic()
        try:
            finished = as_completed(futures, loop=client.loop)
            while remaining:
                batch = finished.next_batch(block=False)
                for future in batch:
                    remaining -= 1
                    if future.status != "finished":
                        future.result()  # raises the task's error
                    if on_done is not None:
                        on_done(future)
                self.check_cancel()
                now = time.monotonic()
                if batch:
                    last_progress = now
                    continue
                if now >= next_check:
                    if _cluster_busy(client, check_every):
                        last_progress = now
                    next_check = now + check_every
                if now - last_progress > self.timeout:
                    raise self._stalled()
                time.sleep(_POLL)
        except BaseException:
            with contextlib.suppress(Exception):
                client.cancel([f for f in futures if not f.done()])
            raise

    def _stalled(self):
        where = f"at {self.address} " if self.address else ""
        n = len(_ask(self.client, "ncores", 5.0) or {})
        why = ("lost all its workers" if n == 0 else
               f"has {n} worker{'s' * (n != 1)} but none ran anything")
        return ClusterTimeoutError(
            f"the dask cluster {where}{why}: no progress for {_seconds(self.timeout)}; "
            "start or restart workers ('dask worker SCHEDULER-ADDRESS') and run the same "
            "command again (finished outputs are skipped), or allow longer with --timeout "
            "SECONDS (timeout=)."
        )


def _seconds(timeout):
    return f"{timeout:g} s"


def _ask(client, what, timeout):
    """Ask the scheduler ``what`` (an RPC such as 'processing'), None if it does not answer."""
    try:
        return client.sync(getattr(client.scheduler, what), callback_timeout=timeout)
    except Exception:
        return None


def _cluster_busy(client, timeout):
    """True when some worker of the cluster is running a task."""
    processing = _ask(client, "processing", max(1.0, timeout))
    return bool(processing) and any(len(keys) for keys in processing.values())


def check_timeout(timeout):
    """Check a timeout in seconds (a positive finite number); return it as a float."""
    if (isinstance(timeout, bool) or not isinstance(timeout, numbers.Real)
            or not math.isfinite(timeout) or timeout <= 0):
        raise InvalidParameterError(
            f"timeout must be a positive number of seconds, got {timeout!r}; pass e.g. "
            f"timeout={DEFAULT_TIMEOUT:g} (CLI --timeout {DEFAULT_TIMEOUT:g})."
        )
    return float(timeout)


def check_scheduler_address(address):
    """Refuse an address that no dask.distributed transport speaks (e.g. the dashboard's)."""
    scheme = address.split("://", 1)[0].lower()
    if scheme in ("http", "https"):
        raise InvalidParameterError(
            f"{address} is not a scheduler address: that looks like the dashboard "
            "address; the scheduler's is tcp://HOST:8786 (printed by 'dask scheduler' "
            "as 'Scheduler at')."
        )
    if scheme not in _SCHEMES:
        raise InvalidParameterError(
            f"{address} is not a dask scheduler address (unknown scheme {scheme!r}://); "
            "use tcp://HOST:8786 (or tls://, inproc://, ucx://, ws://, wss://)."
        )


def _wait_for_workers(client, timeout, address):
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise ClusterTimeoutError(
            f"the dask scheduler at {address} has no workers (waited "
            f"{_seconds(timeout)}); start some with 'dask worker {address}', or allow "
            "longer with --timeout SECONDS (timeout=)."
        ) from None


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
def open_scheduler(scheduler=None, workers=None, *, timeout=DEFAULT_TIMEOUT):
    """Yield a :class:`Scheduler` for ``scheduler`` (None, name, address or Client).

    Local computations run on a thread pool owned here, which is shut down
    (waiting for the running blocks) before the context exits, so that
    nothing writes into a temporary output after it has been removed.  A
    distributed cluster must have a worker within ``timeout`` seconds
    (:class:`~pixelforest.errors.ClusterTimeoutError` otherwise), and its
    computations fail after ``timeout`` seconds without progress.
    """
    from concurrent.futures import ThreadPoolExecutor

    from pixelforest._shared.threads import available_cores

    workers = check_workers(workers)
    timeout = check_timeout(timeout)
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
        check_scheduler_address(scheduler)
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
            _wait_for_workers(client, timeout, scheduler)
            yield Scheduler(client=client, n_workers=client_threads(client), timeout=timeout,
                            address=scheduler)
        finally:
            client.close()
        return
    if type(scheduler).__name__ == "Client" and hasattr(scheduler, "compute"):
        address = getattr(getattr(scheduler, "scheduler", None), "address", None)
        address = address or "the client's scheduler"
        _wait_for_workers(scheduler, timeout, address)
        yield Scheduler(client=scheduler, n_workers=client_threads(scheduler), timeout=timeout,
                        address=address)
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
