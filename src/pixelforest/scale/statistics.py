"""Exact whole-image normalization statistics of a dask or Zarr array, without loading it.

The order statistics that ``np.percentile`` interpolates between are found
from per-chunk histograms summed over the image, so the bounds equal those
of :func:`pixelforest.preprocess.normalize.percentile_bounds` on the image in
memory, bit for bit, and memory stays bounded for any image size.
"""

import functools
import math

import numpy as np

from pixelforest.errors import InvalidImageError
from pixelforest.preprocess.normalize import lerp, percentile_positions
from pixelforest.scale.inputs import as_dask_channel_last
from pixelforest.scale.scheduler import open_scheduler

__all__ = ["bounds_of_dask", "lazy_percentile_bounds", "lazy_statistics", "robust_bounds_of_dask"]

#: Values gathered (instead of histogrammed again) once an order statistic's
#: histogram bin holds at most this many pixels.
_GATHER_LIMIT = 1 << 20

#: Bins per refinement pass of the order-statistic search (floats, wide ints).
_N_BINS = 4096


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
    from pixelforest.preprocess.normalize import check_percentiles

    check_percentiles(low, high)
    image_cl, _ = as_dask_channel_last(image, channel_axis)
    with open_scheduler(scheduler) as sched:
        return bounds_of_dask(image_cl, low, high, sched)


def bounds_of_dask(image_cl, low, high, sched):
    """Percentile bounds of a channel-last dask image (see lazy_percentile_bounds)."""
    n = math.prod(image_cl.shape[:-1])
    n_channels = image_cl.shape[-1]
    image_cl = image_cl.rechunk({image_cl.ndim - 1: -1})
    prev_idx, next_idx, gamma = percentile_positions(n, low, high)
    ranks = [sorted({*prev_idx.tolist(), *next_idx.tolist()})] * n_channels
    blocks = list(image_cl.to_delayed().ravel())
    stats = _order_statistics(blocks, n_channels, image_cl.dtype, ranks, sched)
    prev_vals = np.array([[stats[c, int(i)] for c in range(n_channels)] for i in prev_idx],
                         dtype=image_cl.dtype)
    next_vals = np.array([[stats[c, int(i)] for c in range(n_channels)] for i in next_idx],
                         dtype=image_cl.dtype)
    result = lerp(prev_vals, next_vals, gamma)
    return np.ascontiguousarray(result.T, dtype=np.float64)


def _chunk_bin_histogram(block, lows, highs):
    from pixelforest.preprocess.normalize import bin_histograms

    return bin_histograms(block.reshape(-1, block.shape[-1]), lows, highs)


def robust_bounds_of_dask(image_cl, sched, *, warn=True):
    """The robust statistics of a channel-last dask image, ``(n_channels, 4)``.

    Those of :func:`~pixelforest.preprocess.normalize.robust_statistics_channel_last`:

    The same histograms as in memory (exact per-value counts of 8/16-bit
    integers; otherwise the same bins between the same extrema), summed
    over the chunks, give the same statistics, bit for bit.
    """
    import dask

    from pixelforest.preprocess.normalize import (
        bounds_from_histograms,
        histogram_kind,
        histogram_values,
        warn_constant_regions,
    )

    n_channels = image_cl.shape[-1]
    dtype = np.dtype(image_cl.dtype)
    blocks = list(image_cl.rechunk({image_cl.ndim - 1: -1}).to_delayed().ravel())
    if histogram_kind(dtype) == "values":
        offset = int(np.iinfo(dtype).min)
        n_bins = 1 << (8 * dtype.itemsize)
        parts = [dask.delayed(_chunk_int_histogram, pure=True)(b, offset, n_bins)
                 for b in blocks]
        (counts,) = sched.compute(_tree_reduce(parts, _combine_sum))
        values = histogram_values(dtype, n_channels=n_channels)
    else:
        parts = [dask.delayed(_chunk_extrema, pure=True)(b) for b in blocks]
        ((lows, highs, n_bad),) = sched.compute(_tree_reduce(parts, _combine_extrema))
        if n_bad:
            raise InvalidImageError(
                f"image contains {n_bad} NaN or infinite values; replace them first "
                "(e.g. image = da.nan_to_num(image)) or crop them away."
            )
        parts = [dask.delayed(_chunk_bin_histogram, pure=True)(b, lows, highs) for b in blocks]
        (counts,) = sched.compute(_tree_reduce(parts, _combine_sum))
        values = histogram_values(dtype, lows, highs, n_channels)
    minima = None if histogram_kind(dtype) == "values" else lows
    bounds, constant, fill = bounds_from_histograms(values, counts, minima)
    if warn:
        warn_constant_regions(constant, stacklevel=4)
    return np.concatenate([bounds, fill], axis=1)


def lazy_statistics(pipeline, image_cl, sched):
    """:meth:`PredictionPipeline.statistics <pixelforest.classify.pipeline.PredictionPipeline.statistics>`
    of a checked channel-last dask image, computed on ``sched`` without loading it."""
    if pipeline.normalize == "robust":
        return robust_bounds_of_dask(image_cl, sched)
    q = pipeline.percentiles
    if q is None:
        return None
    return bounds_of_dask(image_cl, *q, sched)
