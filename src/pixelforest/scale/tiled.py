"""Out-of-core prediction: images larger than memory, tile by tile, with dask.

A fitted :class:`~pixelforest.classify.classifier.PixelClassifier` is applied block
by block with :func:`dask.array.map_overlap`.  Each block is read with a
margin (the *halo*, ``clf.halo_``: the reach of the largest filter plus any
spatial post-processing) and ``boundary="none"``, so the filters see exactly
the pixels they would see on the whole image and the image border is
handled by the filters' own edge mode.  A block returns only its labels (or
class probabilities), trimmed to its interior: never a feature stack.

Normalization statistics are global: the percentiles of the *whole* image
are measured first, without loading it (:func:`lazy_percentile_bounds`,
exact order statistics from per-chunk histograms), then every block is
stretched with the same numbers.  The tiled result is therefore bit for bit
the in-memory ``clf.predict(image)``.

Computation runs on dask's local threads by default, on ``workers`` threads
if given, or on a running ``dask.distributed`` cluster (``scheduler=`` a
:class:`distributed.Client` or an address such as ``"tcp://host:8786"``).
:func:`predict_to_file` streams the result to a chunked Zarr store or a
tiled BigTIFF as blocks finish, through a temporary file renamed into place
at the end (never a half-written output, also on Ctrl-C).

Memory
------
One block holds its feature stack while it is classified::

    memory ~ workers x (chunk + 2 x halo) ** ndim x n_features x 4 bytes x 3
             + model + input and output chunks in flight

(the factor 3 covers the filters' temporaries: 2.2 to 2.7 times the stack,
measured with tracemalloc).  With ``chunks=None`` the chunk size is chosen
so that this stays within :data:`DEFAULT_MEMORY_BUDGET` for the number of
workers; pass ``chunks`` (CLI ``--chunks``) to trade memory for fewer,
larger blocks.  Measured (``benchmarks/bench_large.py``): an 8192 x 8192
uint8 Zarr with the default model on 2 workers peaks at 0.80 GB RSS.
"""

import concurrent.futures
import contextlib
import functools
import math
import numbers
import os
import shutil
import sys
import threading
import uuid
from pathlib import Path

import numpy as np

from pixelforest._shared.atomic import atomic_output, check_not_input
from pixelforest._shared.validation import check_channel_axis, check_image
from pixelforest.features.compute import check_fits_halo
from pixelforest.preprocess.normalize import _lerp, _percentile_positions
from pixelforest.errors import (
    ChannelMismatchError,
    InvalidImageError,
    InvalidParameterError,
    NotFittedError,
    UnsupportedFormatError,
)

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "choose_chunks",
    "lazy_percentile_bounds",
    "predict_tiled",
    "predict_to_file",
]

#: Bytes that the blocks in flight may use together (feature stacks and
#: their temporaries) when ``chunks=None``; split between the workers.
DEFAULT_MEMORY_BUDGET = 768 * 2**20

#: Factor between a block's feature stack and its peak memory while the
#: features are computed and classified (filter temporaries, probabilities).
_WORKING_FACTOR = 3

#: Chunk sides are rounded down to a multiple of this (when larger).
_CHUNK_ROUNDING = 64

#: Smallest automatic chunk side.
_MIN_AUTO_CHUNK = 64

#: Edge of the tiles of a BigTIFF output (a multiple of 16, as TIFF requires).
TIFF_TILE = 256

#: How long to try reaching a dask.distributed scheduler given by address.
_CONNECT_TIMEOUT = "20s"

#: Name prefix of the dask tasks that predict one block.
_PREDICT_PREFIX = "pixelforest-predict"

#: Output formats by file-name suffix.
_FORMATS = {".zarr": "zarr", ".tif": "tif", ".tiff": "tif"}

#: Values gathered (instead of histogrammed again) once an order statistic's
#: histogram bin holds at most this many pixels.
_GATHER_LIMIT = 1 << 20

#: Bins per refinement pass of the order-statistic search (floats, wide ints).
_N_BINS = 4096


# --------------------------------------------------------------------------
# schedulers
# --------------------------------------------------------------------------

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


class _Scheduler:
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
            yield _Scheduler(executor=executor, n_workers=self.n_workers, cancel=self.cancel)
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


def _check_workers(workers):
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
def _scheduler(scheduler=None, workers=None):
    """Yield a :class:`_Scheduler` for ``scheduler`` (None, name, address or Client).

    Local computations run on a thread pool owned here, which is shut down
    (waiting for the running blocks) before the context exits, so that
    nothing writes into a temporary output after it has been removed.
    """
    from concurrent.futures import ThreadPoolExecutor

    from pixelforest._shared.threads import available_cores

    workers = _check_workers(workers)
    if scheduler is None or scheduler in ("threads", "threading"):
        n = workers or available_cores()
        pool = ThreadPoolExecutor(n, thread_name_prefix="pixelforest")
        try:
            yield _Scheduler(pool=pool, n_workers=n)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    if isinstance(scheduler, str) and scheduler in ("synchronous", "sync", "single-threaded"):
        yield _Scheduler(name="synchronous", n_workers=1)
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
            yield _Scheduler(client=client, n_workers=_client_threads(client))
        finally:
            client.close()
        return
    if type(scheduler).__name__ == "Client" and hasattr(scheduler, "compute"):
        yield _Scheduler(client=scheduler, n_workers=_client_threads(scheduler))
        return
    raise InvalidParameterError(
        f"scheduler must be None, a scheduler name, an address such as "
        f"'tcp://host:8786' or a distributed.Client, got {type(scheduler).__name__}."
    )


def _client_threads(client):
    """Threads of the busiest worker (memory per worker scales with it)."""
    try:
        nthreads = client.nthreads()
    except Exception:  # pragma: no cover - scheduler went away
        return 1
    return max(nthreads.values(), default=1)


# --------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------

def _as_dask_channel_last(image, channel_axis, *, name="image"):
    """Return ``(dask array with channels last, source path or None)``."""
    import dask.array as da

    source = None
    if isinstance(image, (str, os.PathLike)):
        from pixelforest.io.images import imread_lazy

        source = Path(os.path.abspath(image))  # workers elsewhere may have another cwd
        image = imread_lazy(source)
    if isinstance(image, da.Array):
        if image.dtype == bool:
            image = image.astype(np.uint8)
        if not (np.issubdtype(image.dtype, np.integer)
                or np.issubdtype(image.dtype, np.floating)):
            raise InvalidImageError(
                f"{name} has dtype {image.dtype}, which is not a number type; "
                "convert it to an integer or float array first."
            )
        axis = check_channel_axis(channel_axis, image.ndim, name=name)
        n_spatial = image.ndim - (axis is not None)
        if n_spatial not in (2, 3):
            hint = (" If an axis holds channels, train the model with channel_axis."
                    if axis is None and image.ndim == 4 else "")
            raise InvalidImageError(
                f"{name} must have 2-D or 3-D spatial dimensions, got shape {image.shape}"
                f"{' with channel_axis=' + str(axis) if axis is not None else ''}.{hint}"
            )
        if image.size == 0:
            raise InvalidImageError(
                f"{name} is empty (shape {image.shape}); check that the file or slice "
                "holds pixels."
            )
        image_cl = image[..., np.newaxis] if axis is None else da.moveaxis(image, axis, -1)
    else:
        arr = check_image(image, channel_axis=channel_axis, name=name)
        axis = check_channel_axis(channel_axis, arr.ndim, name=name)
        arr_cl = arr[..., np.newaxis] if axis is None else np.moveaxis(arr, axis, -1)
        image_cl = da.from_array(arr_cl, chunks=arr_cl.shape)
    return image_cl, source


# --------------------------------------------------------------------------
# exact percentiles of a dask array
# --------------------------------------------------------------------------

def _tree_reduce(parts, combine, *, split=8):
    """Combine delayed ``parts`` pairwise-ish into one delayed (a tree, not a list)."""
    import dask

    combine = dask.delayed(combine, pure=True)
    while len(parts) > 1:
        parts = [combine(*parts[i:i + split]) for i in range(0, len(parts), split)]
    return parts[0]


def _chunk_extrema(block):
    flat = block.reshape(-1, block.shape[-1])
    if np.issubdtype(flat.dtype, np.floating):
        finite = np.isfinite(flat)
        n_bad = int(flat.size - np.count_nonzero(finite))
        if n_bad:
            return None, None, n_bad
    return flat.min(axis=0), flat.max(axis=0), 0


def _combine_extrema(*parts):
    n_bad = sum(p[2] for p in parts)
    if n_bad:
        return None, None, n_bad
    return (np.min([p[0] for p in parts], axis=0),
            np.max([p[1] for p in parts], axis=0), 0)


def _chunk_int_histogram(block, offset, n_bins):
    flat = block.reshape(-1, block.shape[-1])
    out = np.empty((flat.shape[1], n_bins), dtype=np.int64)
    for c in range(flat.shape[1]):
        values = flat[:, c].astype(np.int64) - offset
        out[c] = np.bincount(values, minlength=n_bins)
    return out


def _combine_sum(*parts):
    return sum(parts[1:], parts[0].copy())


def _chunk_refine(block, targets):
    """Per target ``(channel, lo, hi, edges)``: a histogram of the values in
    ``[lo, hi]`` over bins ``[edges[i], edges[i + 1])``, or, when ``edges``
    is None, those values themselves."""
    flat = block.reshape(-1, block.shape[-1])
    out = []
    for c, lo, hi, edges in targets:
        values = flat[:, c]
        values = values[(values >= lo) & (values <= hi)]
        if edges is None:
            out.append(values.copy())
        else:
            idx = np.searchsorted(edges, values, side="right") - 1
            out.append(np.bincount(idx, minlength=len(edges)))
    return out


def _combine_refine(gathered, *parts):
    """Sum the histograms and concatenate the gathered values of ``parts``."""
    return [np.concatenate(items) if g else sum(items[1:], items[0].copy())
            for g, items in zip(gathered, zip(*parts))]


def _bin_edges(lo, hi, dtype):
    """Strictly increasing bin starts in ``dtype``: ``lo`` first and ``hi`` last.

    The last bin, ``[hi, hi]``, holds one value, so every refinement pass
    either narrows the bracket or settles the order statistic.
    """
    if np.issubdtype(dtype, np.integer):
        span = int(hi) - int(lo)
        step = max(1, -(-(span + 1) // _N_BINS))
        edges = list(range(int(lo), int(hi) + 1, step))
    else:
        t = np.linspace(0.0, 1.0, _N_BINS + 1)
        # lo * (1 - t) + hi * t never overflows, unlike lo + (hi - lo) * t
        edges = np.clip(float(lo) * (1 - t) + float(hi) * t, float(lo), float(hi))
        edges = np.unique(edges.astype(dtype)).tolist()
    edges = sorted({*edges, lo.item() if hasattr(lo, "item") else lo,
                    hi.item() if hasattr(hi, "item") else hi})
    return np.array(edges, dtype=dtype)


def _next_below(value, dtype):
    if np.issubdtype(dtype, np.integer):
        return dtype.type(int(value) - 1)
    return np.nextafter(dtype.type(value), dtype.type(-np.inf))


def _order_statistics(blocks, n_channels, dtype, ranks, sched):
    """Exact order statistics of each channel of a chunked image.

    ``blocks``: delayed channel-last blocks; ``ranks``: per channel, the
    0-based ranks wanted.  Returns ``{(c, rank): value}`` in ``dtype``.
    """
    import dask

    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer) and dtype.itemsize <= 2:
        offset = int(np.iinfo(dtype).min)
        n_bins = 1 << (8 * dtype.itemsize)
        parts = [dask.delayed(_chunk_int_histogram, pure=True)(b, offset, n_bins)
                 for b in blocks]
        (hist,) = sched.compute(_tree_reduce(parts, _combine_sum))
        cum = np.cumsum(hist, axis=1)
        return {(c, r): dtype.type(int(np.searchsorted(cum[c], r, side="right")) + offset)
                for c in range(n_channels) for r in ranks[c]}

    parts = [dask.delayed(_chunk_extrema, pure=True)(b) for b in blocks]
    ((lows, highs, n_bad),) = sched.compute(_tree_reduce(parts, _combine_extrema))
    if n_bad:
        raise InvalidImageError(
            f"image contains {n_bad} NaN or infinite values; replace them first "
            "(e.g. image = da.nan_to_num(image)) or crop them away."
        )
    # state per target: [channel, rank, lo, hi, n_below, n_in, value]
    state = {(c, r): [c, r, lows[c], highs[c], 0, None, None]
             for c in range(n_channels) for r in ranks[c]}
    for st in state.values():
        if st[2] == st[3]:
            st[6] = st[2]
    while True:
        todo = [st for st in state.values() if st[6] is None]
        if not todo:
            break
        # order statistics whose brackets coincide (e.g. ranks k and k + 1) share one
        # histogram or gather
        targets, index = [], {}
        for c, r, lo, hi, n_below, n_in, _ in todo:
            gather = n_in is not None and n_in <= _GATHER_LIMIT
            key = (c, lo.item(), hi.item(), gather)
            if key not in index:
                index[key] = len(targets)
                targets.append((c, lo, hi, None if gather else _bin_edges(lo, hi, dtype)))
        parts = [dask.delayed(_chunk_refine, pure=True)(b, targets) for b in blocks]
        combine = functools.partial(_combine_refine, [t[3] is None for t in targets])
        (unique_results,) = sched.compute(_tree_reduce(parts, combine))
        which = [index[(st[0], st[2].item(), st[3].item(),
                        st[5] is not None and st[5] <= _GATHER_LIMIT)] for st in todo]
        for st, target, result in zip(todo, [targets[i] for i in which],
                                      [unique_results[i] for i in which]):
            c, r, lo, hi, n_below = st[:5]
            edges = target[3]
            if edges is None:
                values = np.sort(np.asarray(result))
                st[6] = values[r - n_below]
                continue
            cum = np.cumsum(result)
            j = int(np.searchsorted(cum, r - n_below, side="right"))
            st[4] = n_below + (int(cum[j - 1]) if j else 0)
            st[5] = int(result[j])
            st[2] = edges[j]
            st[3] = _next_below(edges[j + 1], dtype) if j + 1 < len(edges) else hi
            if st[2] == st[3]:
                st[6] = st[2]
    return {key: dtype.type(st[6]) for key, st in state.items()}


def lazy_percentile_bounds(image, low=1.0, high=99.8, *, channel_axis=None, scheduler=None):
    """Exactly :func:`~pixelforest.preprocess.normalize.percentile_bounds`, without loading the image.

    The order statistics that ``np.percentile`` interpolates between are
    found from per-chunk histograms summed over the image: for 8- and
    16-bit integers one exact histogram pass suffices; for floats and wider
    integers the bin holding each order statistic is narrowed down by a few
    more passes until its values can be gathered.  Only histograms and a
    few values travel, so memory stays bounded for any image size.

    Parameters
    ----------
    image : array_like or dask.array.Array
        2D or 3D image, with channels along ``channel_axis`` if given.
    low, high : float, optional
        Percentiles (0 to 100, ``low < high``).
    channel_axis : int or None, optional
        Axis holding channels; None for a single-channel image.
    scheduler : None, str or distributed.Client, optional
        Where to compute (see :func:`predict_tiled`).

    Returns
    -------
    bounds : ndarray of float64, shape (n_channels, 2)
        Identical to ``percentile_bounds(np.asarray(image), low, high)``.

    Raises
    ------
    InvalidImageError
        Empty, non-numeric or wrongly shaped image, or NaN/infinite values.
    InvalidParameterError
        ``low`` and ``high`` are not percentiles with ``low < high``.

    Examples
    --------
    >>> import dask.array as da
    >>> image = da.arange(101, dtype="uint8", chunks=13).reshape(1, 101)
    >>> lazy_percentile_bounds(image, 10, 90, scheduler="synchronous")
    array([[10., 90.]])
    """
    from pixelforest.preprocess.normalize import _check_percentiles

    _check_percentiles(low, high)
    image_cl, _ = _as_dask_channel_last(image, channel_axis)
    with _scheduler(scheduler) as sched:
        return _bounds_cl(image_cl, low, high, sched)


def _bounds_cl(image_cl, low, high, sched):
    """Percentile bounds of a channel-last dask image (see lazy_percentile_bounds)."""
    n = math.prod(image_cl.shape[:-1])
    n_channels = image_cl.shape[-1]
    image_cl = image_cl.rechunk({image_cl.ndim - 1: -1})
    prev_idx, next_idx, gamma = _percentile_positions(n, low, high)
    ranks = [sorted({*prev_idx.tolist(), *next_idx.tolist()})] * n_channels
    blocks = list(image_cl.to_delayed().ravel())
    stats = _order_statistics(blocks, n_channels, image_cl.dtype, ranks, sched)
    prev_vals = np.array([[stats[c, int(i)] for c in range(n_channels)] for i in prev_idx],
                         dtype=image_cl.dtype)
    next_vals = np.array([[stats[c, int(i)] for c in range(n_channels)] for i in next_idx],
                         dtype=image_cl.dtype)
    result = _lerp(prev_vals, next_vals, gamma)
    return np.ascontiguousarray(result.T, dtype=np.float64)


# --------------------------------------------------------------------------
# chunking
# --------------------------------------------------------------------------

def _as_tuple(value, ndim, name):
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (int(value),) * ndim
    try:
        value = tuple(value)
    except TypeError:
        value = None
    if (value is None or len(value) != ndim
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0
                       for v in value)):
        raise InvalidParameterError(
            f"{name} must be a positive integer or one per spatial axis ({ndim} values), "
            f"got {value!r}; e.g. chunks=1024."
        )
    return tuple(int(v) for v in value)


def choose_chunks(spatial_shape, *, n_features, halo, workers=1,
                  memory_budget=DEFAULT_MEMORY_BUDGET, base_chunks=None):
    """Chunk size per spatial axis that keeps the blocks in flight within a budget.

    Each of ``workers`` blocks holds, with its halo, a float32 feature
    stack of ``n_features`` columns (times a working factor of 3 for the
    filters' temporaries); the chunk side is the largest that fits
    ``memory_budget / workers``, rounded down to a multiple of 64 (and of
    ``base_chunks``, the chunks of the stored input, when they are smaller)
    and never smaller than the halo.

    Parameters
    ----------
    spatial_shape : tuple of int
        Image shape without the channel axis.
    n_features : int
        Features per pixel (``clf.n_features_in_``).
    halo : tuple of int
        Margin per spatial axis (``clf.halo_``).
    workers : int, optional
        Blocks computed at the same time.
    memory_budget : int, optional
        Bytes for all blocks in flight.
    base_chunks : tuple of int, optional
        Chunks of the stored input, to align with.

    Returns
    -------
    chunks : tuple of int
        Chunk side per spatial axis (at most the axis length).

    Examples
    --------
    >>> choose_chunks((8192, 8192), n_features=30, halo=(16, 16), workers=2)
    (1024, 1024)
    >>> choose_chunks((20, 4096, 4096), n_features=30, halo=(8, 16, 16), workers=2)
    (20, 192, 192)
    """
    ndim = len(spatial_shape)
    halo = tuple(int(h) for h in halo)
    per_block = memory_budget / max(1, workers)
    pixels = per_block / (4 * max(1, n_features) * _WORKING_FACTOR)
    chunks = [None] * ndim
    # axes shorter than the even share are taken whole; the rest share what is left
    order = sorted(range(ndim), key=lambda i: spatial_shape[i])
    remaining = pixels
    for k, i in enumerate(order):
        share = remaining ** (1.0 / (ndim - k))
        if spatial_shape[i] + 0 <= share - 2 * halo[i]:
            chunks[i] = spatial_shape[i]
            remaining /= spatial_shape[i]
            continue
        side = int(share) - 2 * halo[i]
        step = _CHUNK_ROUNDING
        if base_chunks is not None and base_chunks[i] < side:
            step = base_chunks[i] * max(1, _CHUNK_ROUNDING // base_chunks[i])
        if side >= step:
            side -= side % step
        side = max(side, _MIN_AUTO_CHUNK, halo[i])
        chunks[i] = min(side, spatial_shape[i])
        remaining /= (chunks[i] + 2 * halo[i])
    return tuple(chunks)


def _chunks_along(length, chunk, halo, axis):
    """Chunks of one axis; a last chunk thinner than the halo joins its neighbour."""
    if chunk >= length:
        return (length,)
    if chunk < halo:
        raise InvalidParameterError(
            f"chunks={chunk} along axis {axis} is smaller than the model's halo ({halo} "
            f"pixels), so a block could not see all the pixels its filters reach; use "
            f"chunks of at least {halo} (larger chunks are also much faster)."
        )
    sizes = [chunk] * (length // chunk)
    rest = length - chunk * len(sizes)
    if rest:
        if rest < halo:
            sizes[-1] += rest
        else:
            sizes.append(rest)
    return tuple(sizes)


def _block_chunks(spatial_shape, chunks, halo):
    return tuple(_chunks_along(n, c, h, i)
                 for i, (n, c, h) in enumerate(zip(spatial_shape, chunks, halo)))


# --------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------

def _map_tiles(func, image_cl, *, halo, chunks, n_out, dtype, func_kwargs=None, name=None):
    """Apply ``func(block_with_halo, **func_kwargs)`` to every block and trim the halo.

    ``image_cl`` is channel-last; ``chunks`` a chunk tuple per spatial axis
    (from :func:`_block_chunks`).  ``func`` returns ``block.shape[:-1]`` (if
    ``n_out`` is None) or ``block.shape[:-1] + (n_out,)``.
    """
    import dask.array as da

    ndim = image_cl.ndim - 1
    x = image_cl.rechunk(tuple(chunks) + (image_cl.shape[-1],))
    depth = {i: int(h) for i, h in enumerate(halo)}
    depth[ndim] = 0
    kwargs = dict(func_kwargs or {}, dtype=dtype, name=name)
    if n_out is None:
        kwargs["drop_axis"] = ndim
        kwargs["meta"] = np.empty((0,) * ndim, dtype=dtype)
    else:
        overlapped = tuple(
            tuple(c + h * ((j > 0) + (j < len(cs) - 1)) for j, c in enumerate(cs))
            for cs, h in zip(chunks, halo))
        kwargs["chunks"] = overlapped + ((n_out,),)
        kwargs["meta"] = np.empty((0,) * (ndim + 1), dtype=dtype)
        if all(h == 0 for h in halo):
            kwargs["chunks"] = tuple(chunks) + ((n_out,),)
    return da.map_overlap(func, x, depth=depth, boundary="none", trim=True,
                          allow_rechunk=False, **kwargs)


def _predict_block(block_cl, *, clf, bounds, probabilities):
    proba = clf._proba_from_block(block_cl, bounds)
    if probabilities:
        return proba
    return clf.classes_[np.argmax(proba, axis=-1)]


def _check_fitted(clf):
    for attr in ("classes_", "halo_", "n_channels_", "n_features_in_"):
        if not hasattr(clf, attr):
            raise NotFittedError(
                f"this {type(clf).__name__} is not fitted yet; call fit(images, labels) "
                "or load a trained model with pixelforest.load_model(path) first."
            )


def _model_bounds(clf, image_cl, sched):
    """The model's global normalization statistics of a channel-last dask image.

    The same numbers as ``clf._normalization_bounds(image)`` on the whole
    image in memory (percentile_bounds), computed without loading it.
    """
    from pixelforest.classify.classifier import _PERCENTILES

    mode = clf.normalize
    if mode is None:
        return None
    low, high = _PERCENTILES if mode == "percentile" else (0.0, 100.0)
    return _bounds_cl(image_cl, low, high, sched)


def _prepare(clf, image, chunks, sched):
    """Validate and return (image_cl, block chunks, bounds, source path)."""
    _check_fitted(clf)
    image_cl, source = _as_dask_channel_last(image, getattr(clf, "channel_axis", None))
    n_channels = image_cl.shape[-1]
    if n_channels != clf.n_channels_:
        axis = getattr(clf, "channel_axis", None)
        raise ChannelMismatchError(
            f"the image has {n_channels} channel(s) (channel_axis={axis}) but the model "
            f"was trained on {clf.n_channels_}; pass an image with the same channels as "
            "the training images, in the same order."
        )
    spatial = image_cl.shape[:-1]
    halo = tuple(int(h) for h in clf.halo_)
    if len(halo) != len(spatial):
        raise InvalidImageError(
            f"the image has {len(spatial)} spatial axes but the model was trained on "
            f"{len(halo)}-D images; predict on {len(halo)}-D images or retrain."
        )
    check_fits_halo(spatial, halo)
    if chunks is None:
        base = tuple(c[0] for c in image_cl.chunks[:-1])
        chunks = choose_chunks(spatial, n_features=clf.n_features_in_, halo=halo,
                               workers=sched.n_workers, base_chunks=base)
    else:
        chunks = _as_tuple(chunks, len(spatial), "chunks")
    block_chunks = _block_chunks(spatial, chunks, halo)
    bounds = _model_bounds(clf, image_cl, sched)
    return image_cl, block_chunks, halo, bounds, source


def _lazy_prediction(clf, image_cl, block_chunks, halo, bounds, probabilities):
    import dask

    model = dask.delayed(clf, pure=False)
    if probabilities:
        n_out, dtype = len(clf.classes_), np.float32
    else:
        n_out, dtype = None, np.asarray(clf.classes_).dtype
    name = f"{_PREDICT_PREFIX}-{uuid.uuid4().hex}"
    return _map_tiles(_predict_block, image_cl, halo=halo, chunks=block_chunks,
                      n_out=n_out, dtype=dtype,
                      func_kwargs={"clf": model, "bounds": bounds,
                                   "probabilities": probabilities},
                      name=name)


def predict_tiled(clf, image, *, chunks=None, probabilities=False, scheduler=None,
                  workers=None):
    """Predict labels or probabilities block by block (lazily, with dask).

    The image is never loaded whole: its global normalization statistics
    are measured first (one pass over the data), then each block is
    classified with its halo by ``dask.array.map_overlap``.  The result
    equals ``clf.predict(image)`` (or ``clf.predict_proba``) bit for bit.

    Parameters
    ----------
    clf : PixelClassifier
        A fitted classifier.
    image : ndarray, dask.array.Array, str or Path
        The image, in the channel convention the model was trained with
        (``clf.channel_axis``); a path is opened lazily with
        :func:`pixelforest.io.images.imread_lazy` (Zarr, OME-Zarr, TIFF).
    chunks : int or tuple of int, optional
        Block side per spatial axis, without the halo.  None picks the
        largest that keeps memory within :data:`DEFAULT_MEMORY_BUDGET`
        (see :func:`choose_chunks`).  Must be at least the halo.
    probabilities : bool, optional
        Return class probabilities ``(spatial..., n_classes)`` float32
        instead of labels.
    scheduler : None, str or distributed.Client, optional
        Where the statistics pass runs (the returned array is computed
        wherever you compute it): None for local threads, an address such
        as ``"tcp://host:8786"``, or a :class:`distributed.Client`.
    workers : int, optional
        Local threads (default: every core); also sets how many blocks
        the automatic chunk size plans for.

    Returns
    -------
    result : dask.array.Array
        Labels (``clf.classes_`` dtype, the image's spatial shape) or
        probabilities, not yet computed.

    Raises
    ------
    NotFittedError
        The classifier is not fitted.
    ChannelMismatchError
        The image has a different number of channels than the model.
    InvalidParameterError
        ``chunks`` is not positive or is smaller than ``clf.halo_``.
    InvalidImageError
        Empty, non-numeric, non-finite or wrongly shaped image.

    Notes
    -----
    Memory ~ ``workers x (chunk + 2 halo) ** ndim x n_features x 4 bytes x 3``
    plus the model: halve ``chunks`` (CLI ``--chunks``) to divide the
    feature memory by 4 in 2D.

    Examples
    --------
    >>> import numpy as np
    >>> from pixelforest.classify.classifier import PixelClassifier
    >>> from pixelforest.features import FeatureSpec
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(size=(60, 50)).astype(np.float32)
    >>> image[20:40, 10:30] += 3
    >>> scribbles = np.zeros(image.shape, np.uint8)
    >>> scribbles[2:5, 2:40], scribbles[28:31, 15:25] = 1, 2
    >>> clf = PixelClassifier(FeatureSpec(sigmas=(1.0, 2.0))).fit(image, scribbles)
    >>> lazy = predict_tiled(clf, image, chunks=(23, 17), scheduler="synchronous")
    >>> bool((lazy.compute(scheduler="synchronous") == clf.predict(image)).all())
    True
    """
    with _scheduler(scheduler, workers) as sched:
        image_cl, block_chunks, halo, bounds, _ = _prepare(clf, image, chunks, sched)
    return _lazy_prediction(clf, image_cl, block_chunks, halo, bounds, probabilities)


# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------

def _output_format(output, format=None):
    if format is not None:
        fmt = {"tif": "tif", "tiff": "tif", "zarr": "zarr"}.get(str(format).lower())
        if fmt is None:
            raise UnsupportedFormatError(
                f"unknown output format {format!r}; use 'tif' (tiled BigTIFF) or 'zarr'."
            )
        return fmt
    fmt = _FORMATS.get(Path(output).suffix.lower())
    if fmt is None:
        raise UnsupportedFormatError(
            f"cannot tell the output format of {output} from its extension; name it "
            "*.zarr (chunked Zarr) or *.tif (tiled BigTIFF)."
        )
    return fmt


def _auto_progress(progress):
    if progress is not None:
        return bool(progress)
    if os.environ.get("CI"):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # pragma: no cover - closed stream
        return False


def _block_counter(bar, prefix):
    """A dask callback advancing ``bar`` each time a task whose name starts with
    ``prefix`` ends (dask may fuse tasks, which keeps the prefix)."""
    from dask.callbacks import Callback

    def posttask(key, result, dsk, state, id):
        if str(key[0] if isinstance(key, tuple) else key).startswith(prefix):
            bar.update(1)

    return Callback(posttask=posttask)


def _write_zarr_block(block, path, region):
    import zarr

    path = Path(path)
    if not path.exists():
        # abandoned (an error or Ctrl-C elsewhere: then nobody waits for this), or
        # created where this worker cannot see it
        raise OSError(
            f"the output store {path} does not exist on this worker; on a cluster the "
            "output must be on a file system shared by every worker (same path)."
        )
    arr = zarr.open_array(str(path), mode="r+")
    arr[region] = block
    if not path.exists():  # pragma: no cover - removed while this block was written
        shutil.rmtree(path, ignore_errors=True)
    return 1


def _regions(chunks):
    """Slices of every block of a dask chunk tuple, in dask's C order."""
    import itertools

    starts = [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(int) for c in chunks]
    for index in itertools.product(*(range(len(c)) for c in chunks)):
        yield index, tuple(slice(int(s[i]), int(s[i]) + int(c[i]))
                           for s, c, i in zip(starts, chunks, index))


def _store_zarr(result, tmp, sched, bar, attrs):
    import dask
    import zarr

    zarr_chunks = tuple(c[0] for c in result.chunks)
    arr = zarr.create_array(store=str(tmp), shape=result.shape, chunks=zarr_chunks,
                            dtype=result.dtype, fill_value=0, attributes=attrs)
    del arr
    blocks = result.to_delayed()
    name = f"pixelforest-write-{uuid.uuid4().hex}"
    writes = []
    for i, (index, region) in enumerate(_regions(result.chunks)):
        writes.append(dask.delayed(_write_zarr_block, pure=False)(
            blocks[index], str(tmp), region, dask_key_name=f"{name}-{i}"))
    if sched.is_distributed:
        _compute_distributed(writes, sched, bar)
    else:
        sched.compute(writes, callbacks=[_block_counter(bar, name)])


def _compute_distributed(delayeds, sched, bar):
    from distributed import as_completed

    client = sched.client
    futures = client.compute(delayeds)
    try:
        for future in as_completed(futures, loop=client.loop):
            future.result()
            bar.update(1)
            sched.check_cancel()
    except BaseException:
        client.cancel(futures)
        raise


def _tiles_2d(arr, tile):
    th, tw = tile
    for y in range(0, arr.shape[0], th):
        for x in range(0, arr.shape[1], tw):
            yield arr[y:y + th, x:x + tw]


def _iter_tiff_tiles(result, spatial_ndim, sched, bar):
    """Compute ``result`` slab by slab (first axis) and yield TIFF tiles in order."""
    starts = np.concatenate([[0], np.cumsum(result.chunks[0])]).astype(int)
    n_blocks_per_slab = math.prod(len(c) for c in result.chunks[1:])
    buffer = None
    for k in range(len(result.chunks[0])):
        slab_da = result[starts[k]:starts[k + 1]]
        if sched.is_distributed:
            (slab,) = sched.compute(slab_da)
            bar.update(n_blocks_per_slab)
        else:
            (slab,) = sched.compute(slab_da, callbacks=[_block_counter(bar, _PREDICT_PREFIX)])
        if spatial_ndim == 3:
            for plane in slab:
                yield from _tiles_2d(plane, (TIFF_TILE, TIFF_TILE))
            continue
        buffer = slab if buffer is None else np.concatenate([buffer, slab])
        last = k == len(result.chunks[0]) - 1
        while buffer.shape[0] >= TIFF_TILE or (last and buffer.shape[0]):
            yield from _tiles_2d(buffer[:TIFF_TILE], (TIFF_TILE, TIFF_TILE))
            buffer = buffer[TIFF_TILE:]


def _store_tiff(result, tmp, sched, bar, spatial_ndim, attrs):
    import tifffile

    extra = {}
    if result.ndim > spatial_ndim:  # probabilities: classes as samples
        extra = {"photometric": "minisblack", "planarconfig": "contig"}
    with tifffile.TiffWriter(tmp, bigtiff=True) as tif:
        tif.write(_iter_tiff_tiles(result, spatial_ndim, sched, bar), shape=result.shape,
                  dtype=result.dtype, tile=(TIFF_TILE, TIFF_TILE), compression="zlib",
                  metadata=attrs, **extra)


def predict_to_file(clf, image, output, *, chunks=None, probabilities=False,
                    scheduler=None, workers=None, overwrite=False, progress=None,
                    format=None):
    """Predict an image block by block and stream the result to Zarr or BigTIFF.

    Blocks are written as they finish into a temporary store next to
    ``output``, renamed into place once complete: a failure or Ctrl-C
    leaves no partial output and no temporary file behind.

    Parameters
    ----------
    clf : PixelClassifier
        A fitted classifier.
    image : ndarray, dask.array.Array, str or Path
        As for :func:`predict_tiled`.
    output : str or Path
        ``*.zarr`` (a Zarr store chunked like the blocks) or ``*.tif`` /
        ``*.tiff`` (a tiled, zlib-compressed BigTIFF).
    chunks, probabilities, scheduler, workers
        As for :func:`predict_tiled`.  On a distributed cluster the Zarr
        blocks are written by the workers, so ``output`` must be on a file
        system they share; a TIFF is written by this process.
    overwrite : bool, optional
        Replace an existing ``output``; otherwise
        :class:`~pixelforest.errors.OutputExistsError` is raised.
    progress : bool or None, optional
        Show a progress bar of blocks on stderr; None shows it only on a
        terminal outside CI.
    format : {'zarr', 'tif'} or None, optional
        Output format; None infers it from the extension.

    Returns
    -------
    output : Path
        Where the result was written.

    Raises
    ------
    OutputExistsError
        ``output`` exists and ``overwrite`` is False, or it is the input.
    UnsupportedFormatError
        ``output`` is neither Zarr nor TIFF.

    Examples
    --------
    >>> import tempfile, pathlib, zarr, numpy as np
    >>> from pixelforest.classify.classifier import PixelClassifier
    >>> from pixelforest.features import FeatureSpec
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(size=(60, 50)).astype(np.float32)
    >>> image[20:40, 10:30] += 3
    >>> scribbles = np.zeros(image.shape, np.uint8)
    >>> scribbles[2:5, 2:40], scribbles[28:31, 15:25] = 1, 2
    >>> clf = PixelClassifier(FeatureSpec(sigmas=(1.0, 2.0))).fit(image, scribbles)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "labels.zarr"
    >>> predict_to_file(clf, image, out, chunks=32, workers=1)  # doctest: +ELLIPSIS
    PosixPath('.../labels.zarr')
    >>> bool((zarr.open_array(str(out))[:] == clf.predict(image)).all())
    True
    """
    with _scheduler(scheduler, workers) as sched:
        return _predict_to_file(clf, image, output, sched=sched, chunks=chunks,
                                probabilities=probabilities, overwrite=overwrite,
                                progress=progress, format=format)


def _predict_to_file(clf, image, output, *, sched, chunks=None, probabilities=False,
                     overwrite=False, progress=None, format=None):
    """:func:`predict_to_file` on an open :class:`_Scheduler` (shared by a batch)."""
    from tqdm.auto import tqdm

    given = Path(output)
    output = Path(os.path.abspath(output))  # workers elsewhere may have another cwd
    fmt = _output_format(output, format)
    if isinstance(image, (str, os.PathLike)):
        check_not_input(output, [image])
    with atomic_output(output, overwrite=overwrite) as tmp:
        # the session ends (every local block finished) before the temporary
        # output is renamed, or removed after an error or Ctrl-C
        with sched.session() as session:
            image_cl, block_chunks, halo, bounds, _ = _prepare(clf, image, chunks, session)
            result = _lazy_prediction(clf, image_cl, block_chunks, halo, bounds,
                                      probabilities)
            attrs = {"pixelforest": {
                "kind": "probabilities" if probabilities else "labels",
                "classes": np.asarray(clf.classes_).tolist(),
            }}
            n_blocks = math.prod(len(c) for c in block_chunks)
            with tqdm(total=n_blocks, unit="block", desc=output.name, file=sys.stderr,
                      disable=not _auto_progress(progress), leave=False) as bar:
                if fmt == "zarr":
                    _store_zarr(result, tmp, session, bar, attrs)
                else:
                    _store_tiff(result, tmp, session, bar, len(block_chunks), attrs)
    return given
