"""How an image is cut into blocks: a block size that fits a memory budget, and the
dask chunks of blocks that each see their whole halo."""

import numbers

from pixelforest.errors import InvalidParameterError

__all__ = ["DEFAULT_MEMORY_BUDGET", "as_tuple", "block_chunks", "choose_chunks"]

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


def as_tuple(value, ndim, name):
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


def block_chunks(spatial_shape, chunks, halo):
    return tuple(_chunks_along(n, c, h, i)
                 for i, (n, c, h) in enumerate(zip(spatial_shape, chunks, halo)))
