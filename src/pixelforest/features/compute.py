"""Compute a :class:`~pixelforest.features.spec.FeatureSpec`'s feature stack, block by block.

Every filter is a :func:`scipy.ndimage.gaussian_filter` with
``mode="reflect"`` and ``truncate=4``, computed on the spec's path: with
``precision="exact"`` by the compiled kernels of
:mod:`pixelforest.features.gaussian` (scipy's float32 bits, one filter at a
time), with ``precision="fast"`` by :mod:`pixelforest.features.fast` (float32
arithmetic, every derivative order of a scale in shared passes).  On either
path each feature at a pixel depends only on the pixels within
``spec.halo_for(ndim)`` and is computed the same way wherever the block
starts: a block cut with that margin gives, in its interior, bit for bit
the features of the whole image.

Four entry points, each for checked channel-last input (the public edge,
:func:`compute_features`, checks it):

- :func:`features_of_block`: the stack of a block (or of a ``crop`` of it);
- :func:`feature_planes_of_block`: the same, feature-major (what a forest reads);
- :func:`features_at`: the rows of a few pixels of an image (training);
- :func:`check_fits_halo`: refuse an image smaller than the halo.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np

from pixelforest._shared.threads import resolve_n_threads, run_on_pool
from pixelforest._shared.validation import check_channel_axis, check_image, to_channel_last
from pixelforest.errors import InvalidImageError, InvalidParameterError
from pixelforest.features.gaussian import gaussian_crop, grow_crop, kernel_radius
from pixelforest.features.spec import DOG_RATIO, EIGEN_FAMILIES, FeatureSpec

__all__ = ["block_side", "check_fits_halo", "compute_features", "feature_planes_of_block",
           "features_at", "features_of_block"]

def _channel_features(channel, spec, ndim, out, start, crop=None):
    """Write the features of one float32 channel into ``out[..., start:]``.

    ``crop`` (pairs ``(lo, hi)`` per axis, default the whole channel) is the
    crop whose features are written; ``out`` has its shape.  Each filter
    reads only the pixels it needs around ``crop`` (its own radius), and
    each Gaussian smoothing is computed once and shared by the families.
    """
    from skimage.feature import hessian_matrix_eigvals

    if crop is None:
        crop = tuple((0, n) for n in channel.shape)
    col = start
    spacing = spec.spacing or (1.0,) * ndim
    smooth_cache, second_cache = {}, {}

    def smooth(sigma):
        if sigma not in smooth_cache:
            smooth_cache[sigma] = gaussian_crop(channel, spec._sigma_px(sigma, ndim), 0, crop)
        return smooth_cache[sigma]

    def first(sigma, region=crop):
        grads = []
        for ax in range(ndim):
            order = [0] * ndim
            order[ax] = 1
            grad = gaussian_crop(channel, spec._sigma_px(sigma, ndim), order, region)
            if spacing[ax] != 1:
                grad /= np.float32(spacing[ax])
            grads.append(grad)
        return grads

    def second(sigma):  # upper triangle of the Hessian, row-major (skimage's order)
        if sigma not in second_cache:
            elems = []
            for i in range(ndim):
                for j in range(i, ndim):
                    order = [0] * ndim
                    order[i] += 1
                    order[j] += 1
                    elem = gaussian_crop(channel, spec._sigma_px(sigma, ndim), order, crop)
                    elems.append(elem / np.float32(spacing[i] * spacing[j]))
            second_cache[sigma] = elems
        return second_cache[sigma]

    def family(fam, sigma, dst):
        if fam == "gaussian":
            dst[..., 0] = smooth(sigma)
        elif fam == "dog":
            np.subtract(smooth(sigma * DOG_RATIO), smooth(sigma), out=dst[..., 0])
        elif fam == "gradient":
            grads = first(sigma)  # fresh arrays: squared and summed in place
            total = np.multiply(grads[0], grads[0], out=grads[0])
            for g in grads[1:]:
                total += np.multiply(g, g, out=g)
            np.sqrt(total, out=dst[..., 0])
        elif fam == "log":
            elems = second(sigma)
            diag = [elems[k] for k in _diag_indices(ndim)]
            dst[..., 0] = sum(diag[1:], diag[0].copy())
        elif fam == "hessian":
            for k, eig in enumerate(hessian_matrix_eigvals(second(sigma))):
                dst[..., k] = eig
        else:  # structure tensor: gradient at the inner scale, averaged at the outer
            inner_scale, outer_scale = spec.structure_scales
            px = spec._sigma_px(sigma * outer_scale, ndim)
            # the gradients are needed around crop as far as the averaging reaches
            region = grow_crop(crop, [kernel_radius(s) for s in px], channel.shape)
            grads = first(sigma * inner_scale, region)
            inner = tuple((lo - a, hi - a) for (lo, hi), (a, _) in zip(crop, region))
            tensor = [gaussian_crop(grads[i] * grads[j], px, 0, inner)
                      for i in range(ndim) for j in range(i, ndim)]
            for k, eig in enumerate(hessian_matrix_eigvals(tensor)):
                dst[..., k] = eig

    if "intensity" in spec.families:
        out[..., col] = channel[tuple(slice(lo, hi) for lo, hi in crop)]
        col += 1
    for fam in spec.families:
        width = ndim if fam in EIGEN_FAMILIES else 1
        for sigma in spec.sigmas_for(fam):
            family(fam, sigma, out[..., col:col + width])
            col += width
    return col


def _channel_features_fast(channel, spec, ndim, out, start, crop=None):
    """:func:`_channel_features` on the fast path (:mod:`pixelforest.features.fast`).

    Every filter of one sigma (all the derivative orders the families need
    there, over the largest region any of them needs) is computed once, in
    shared float32 passes, when a family first needs it, and dropped after
    its last use.  The columns are assembled in planes (one contiguous
    array per column, where the compiled loops vectorize) and interleaved
    into ``out`` once at the end.
    """
    from pixelforest.features import fast

    if crop is None:
        crop = tuple((0, n) for n in channel.shape)
    shape = tuple(hi - lo for lo, hi in crop)
    spacing = spec.spacing or (1.0,) * ndim
    scale = tuple(1.0 / s for s in spacing)
    zero = (0,) * ndim
    firsts = [tuple(int(i == ax) for i in range(ndim)) for ax in range(ndim)]
    seconds = [tuple((i == ax) + (j == ax) for ax in range(ndim))
               for i in range(ndim) for j in range(i, ndim)]
    diag = [seconds[k] for k in _diag_indices(ndim)]
    inner_scale, outer_scale = spec.structure_scales

    # what each (family, sigma) job needs: (sigma, orders, margin) requests
    jobs = []
    for fam in spec.families:
        for sigma in spec.sigmas_for(fam):
            if fam == "gaussian":
                reqs = [(sigma, [zero], None)]
            elif fam == "dog":
                reqs = [(sigma * DOG_RATIO, [zero], None), (sigma, [zero], None)]
            elif fam == "gradient":
                reqs = [(sigma, firsts, None)]
            elif fam == "log":
                reqs = [(sigma, diag, None)]
            elif fam == "hessian":
                reqs = [(sigma, seconds, None)]
            else:
                margin = [kernel_radius(s) for s in spec._sigma_px(sigma * outer_scale, ndim)]
                reqs = [(sigma * inner_scale, firsts, margin)]
            jobs.append((fam, sigma, reqs))
    plan, last_use = {}, {}
    for k, (_, _, reqs) in enumerate(jobs):
        for sigma, orders, margin in reqs:
            orders_set, grow = plan.setdefault(sigma, (set(), [0] * ndim))
            orders_set.update(orders)
            if margin is not None:
                grow[:] = [max(a, b) for a, b in zip(grow, margin)]
            last_use[sigma] = k
    bank = {}

    def get(sigma, order, where=crop, contiguous=False):
        if sigma not in bank:
            orders, grow = plan[sigma]
            region = grow_crop(crop, grow, channel.shape)
            bank[sigma] = (region, fast.gaussian_orders(
                channel, spec._sigma_px(sigma, ndim), orders, region, scale))
        region, res = bank[sigma]
        arr = res[order]
        if where != region:
            arr = arr[tuple(slice(lo - a, hi - a) for (lo, hi), (a, _) in zip(where, region))]
            if contiguous:
                arr = np.ascontiguousarray(arr)
        return arr

    n_cols = spec.n_features(1, ndim)
    # a feature-major ``out`` (a channel-last view of planes) takes the
    # columns straight; a channel-last one gets them interleaved at the end
    direct = _is_feature_major(out)
    planes = (np.moveaxis(out[..., start:start + n_cols], -1, 0) if direct
              else _scratch_planes((n_cols,) + shape))
    col = 0
    if "intensity" in spec.families:
        planes[col] = channel[tuple(slice(lo, hi) for lo, hi in crop)]
        col += 1
    for k, (fam, sigma, reqs) in enumerate(jobs):
        width = ndim if fam in EIGEN_FAMILIES else 1
        dst = planes[col:col + width]
        if fam == "gaussian":
            dst[0] = get(sigma, zero)
        elif fam == "dog":
            np.subtract(get(sigma * DOG_RATIO, zero), get(sigma, zero), out=dst[0])
        elif fam == "gradient":
            fast.magnitude([get(sigma, o, contiguous=True) for o in firsts], dst[0])
        elif fam == "log":
            np.add(get(sigma, diag[0]), get(sigma, diag[1]), out=dst[0])
            if ndim == 3:
                dst[0] += get(sigma, diag[2])
        elif fam == "hessian":
            fast.eigenvalues_sym([get(sigma, o, contiguous=True) for o in seconds], dst)
        else:
            margin = reqs[0][2]
            region = grow_crop(crop, margin, channel.shape)
            grads = [get(sigma * inner_scale, o, region) for o in firsts]
            inner = tuple((lo - a, hi - a) for (lo, hi), (a, _) in zip(crop, region))
            outer_px = spec._sigma_px(sigma * outer_scale, ndim)
            tensor = [fast.gaussian_orders(grads[i] * grads[j], outer_px, [zero], inner)[zero]
                      for i in range(ndim) for j in range(i, ndim)]
            fast.eigenvalues_sym(tensor, dst)
        for s, _, _ in reqs:
            if last_use.get(s) == k:
                bank.pop(s, None)
        col += width
    if not direct:
        fast.interleave(planes, out, start)
    return start + n_cols


def _is_feature_major(out):
    """True if the channel-last ``out`` is a view of feature planes (rows contiguous)."""
    return out.ndim > 1 and out.shape[-1] > 1 and out.strides[-2] == out.itemsize and \
        out.strides[-1] >= max(out.strides[:-1])


#: Largest planes buffer (bytes) a thread keeps between blocks: a fresh
#: buffer of tens of MB costs its page faults again on every block.
_KEEP_SCRATCH_BYTES = 64 << 20

_SCRATCH = threading.local()


def _scratch_planes(shape):
    """A float32 array of ``shape`` from this thread's reusable buffer (contents undefined).

    Valid until the thread's next call; the buffer is kept between calls
    when it is at most :data:`_KEEP_SCRATCH_BYTES`.
    """
    n = int(np.prod(shape, dtype=np.int64))
    if n * 4 > _KEEP_SCRATCH_BYTES:
        return np.empty(shape, dtype=np.float32)
    buf = getattr(_SCRATCH, "planes", None)
    if buf is None or buf.size < n:
        buf = _SCRATCH.planes = np.empty(n, dtype=np.float32)
    return buf[:n].reshape(shape)


def _diag_indices(ndim):
    """Positions of the diagonal terms in the row-major upper triangle."""
    idx, k = [], 0
    for i in range(ndim):
        for j in range(i, ndim):
            if i == j:
                idx.append(k)
            k += 1
    return idx


def _channel_features_of(spec):
    """The function that writes one channel's features on ``spec``'s path."""
    return _channel_features_fast if spec.precision == "fast" else _channel_features


#: Side (pixels) of the blocks a large feature stack is computed in: one
#: block's smoothings stay in cache, and blocks run on several threads.  In
#: 3D a larger block wastes less on the halo (a 128-deep stack in one block:
#: 1.7x faster than in blocks of 96, ``benchmarks/bench_features.py``'s
#: volume), but a block's stack grows with the cube of its side, so stacks
#: of more than :data:`_MANY_COLUMNS_3D` columns use blocks of at most 96.
_BLOCK_2D = 512
_BLOCK_3D = 128
_MANY_COLUMNS_3D = 16


def block_side(ndim, n_columns):
    """Side of the blocks a stack of ``n_columns`` columns with ``ndim`` spatial axes is computed in.

    A region that fits in one such block is filtered in one piece; the
    prediction pipeline cuts 3D images to fit one.

    Examples
    --------
    >>> block_side(2, 13), block_side(3, 13), block_side(3, 40)
    (512, 128, 96)
    """
    if ndim == 2:
        return _BLOCK_2D
    return _BLOCK_3D if n_columns <= _MANY_COLUMNS_3D else min(_BLOCK_3D, 96)

#: One caller at a time gets the thread pool (no oversubscription when
#: several threads, e.g. dask's, compute features at once).
_POOL_LOCK = threading.Lock()


def _float32_channels(image_cl):
    """The channels of a channel-last image as C-contiguous float32 arrays."""
    channels = []
    for c in range(image_cl.shape[-1]):
        channel = image_cl[..., c]
        if channel.dtype != np.float32 or not channel.flags.c_contiguous:
            channel = np.ascontiguousarray(channel, dtype=np.float32)
        channels.append(channel)
    return channels


def _blocks(crop, side):
    """The blocks (``(lo, hi)`` per axis, of ``side`` pixels) a region ``crop`` is computed in."""
    return [tuple((a, min(a + side, hi)) for a, (_, hi) in zip(origin, crop))
            for origin in itertools.product(*[range(lo, hi, side) for lo, hi in crop])]


def _run_blocks(work, blocks, n_threads):
    """Run ``work(block)`` for every block, on the feature thread pool if it is free."""
    n = min(len(blocks), resolve_n_threads(n_threads)) if len(blocks) > 1 else 1
    if n > 1 and _POOL_LOCK.acquire(blocking=False):
        try:
            run_on_pool(work, blocks, n, name="pf-features")
        finally:
            _POOL_LOCK.release()
    else:
        run_on_pool(work, blocks, 1)


def features_of_block(image_cl, spec, *, crop=None, n_threads=None):
    """Feature stack of a channel-last float image, no checks (block API).

    ``image_cl`` has shape ``(spatial..., C)``; the result has shape
    ``(spatial..., C * F)`` float32, in the order of ``spec.feature_names(C)``.
    Works on any block, however small: border handling is scipy's reflect.
    With ``crop`` (one slice per spatial axis) only the features of
    ``image_cl[crop]`` are computed, equal bit for bit to
    ``features_of_block(image_cl, spec)[crop]`` (each filter reads the
    block around the crop as far as its own radius).

    A region larger than :data:`_BLOCK_2D` (in 3D :data:`_BLOCK_3D`, or 96
    for more than :data:`_MANY_COLUMNS_3D` columns) pixels per side is
    computed block by block the same way (cache-friendly, the
    same numbers), the blocks on a thread pool of
    :func:`pixelforest._shared.threads.resolve_n_threads` threads (``n_threads``)
    when no other caller holds it.
    """
    shape, n_columns = _output_shape(image_cl, spec, crop)
    out = np.empty(shape + (n_columns,), dtype=np.float32)
    _fill(image_cl, spec, crop, out, n_threads)
    return out


def feature_planes_of_block(image_cl, spec, *, crop=None, n_threads=None):
    """:func:`features_of_block` feature-major: shape ``(C * F, spatial...)``.

    Plane ``k`` is column ``k`` of :func:`features_of_block`, bit for bit.
    This is the layout a forest reads (one feature of many pixels at a
    time, :func:`pixelforest.forest.inference.forest_predict_proba` takes
    ``planes.reshape(F, -1).T``): on the fast path each feature is written
    once, straight into its plane, instead of being interleaved pixel by
    pixel into a channel-last stack.

    Examples
    --------
    >>> image = np.random.default_rng(0).random((64, 48, 1), dtype=np.float32)
    >>> spec = FeatureSpec(sigmas=(1.0, 2.0))
    >>> planes = feature_planes_of_block(image, spec)
    >>> planes.shape == (spec.n_features(), 64, 48)
    True
    >>> bool(np.array_equal(np.moveaxis(planes, 0, -1), features_of_block(image, spec)))
    True
    """
    shape, n_columns = _output_shape(image_cl, spec, crop)
    planes = np.empty((n_columns,) + shape, dtype=np.float32)
    _fill(image_cl, spec, crop, np.moveaxis(planes, 0, -1), n_threads)
    return planes


def _output_shape(image_cl, spec, crop):
    """Spatial shape of ``image_cl[crop]`` and the number of feature columns."""
    ndim = image_cl.ndim - 1
    spatial = image_cl.shape[:-1]
    if crop is not None:
        spatial = tuple(hi - lo for lo, hi in (s.indices(n)[:2] for s, n in zip(crop, spatial)))
    return tuple(spatial), image_cl.shape[-1] * spec.n_features(1, ndim)


def _fill(image_cl, spec, crop, out, n_threads):
    """Write the features of ``image_cl[crop]`` into the channel-last ``out`` (any layout)."""
    ndim = image_cl.ndim - 1
    n_per_channel = spec.n_features(1, ndim)
    spatial = image_cl.shape[:-1]
    if crop is None:
        crop = tuple((0, n) for n in spatial)
    else:
        crop = tuple(s.indices(n)[:2] for s, n in zip(crop, spatial))
    channels = _float32_channels(image_cl)

    def work(block):
        dst = out[tuple(slice(a - lo, b - lo) for (a, b), (lo, _) in zip(block, crop))]
        for c, channel in enumerate(channels):
            channel_features(channel, spec, ndim, dst, c * n_per_channel, block)

    channel_features = _channel_features_of(spec)
    _run_blocks(work, _blocks(crop, block_side(ndim, out.shape[-1])), n_threads)


def features_at(image_cl, spec, index, *, n_threads=None):
    """Feature rows of some pixels of a channel-last float image, no checks.

    ``index`` holds flat (row-major) indices of spatial positions; row ``k``
    of the result, shape ``(len(index), C * F)`` float32, is the feature
    vector of pixel ``index[k]``, equal bit for bit to
    ``features_of_block(image_cl, spec).reshape(-1, C * F)[index]``.

    Only the blocks (as in :func:`features_of_block`) that hold one of
    the pixels are computed, each into a buffer its thread reuses, so the
    memory is that of a block per thread however large the image, and a
    block without pixels costs nothing.
    """
    ndim = image_cl.ndim - 1
    spatial = image_cl.shape[:-1]
    n_per_channel = spec.n_features(1, ndim)
    channels = _float32_channels(image_cl)
    index = np.asarray(index, dtype=np.intp)
    rows = np.empty((index.size, len(channels) * n_per_channel), dtype=np.float32)
    if index.size == 0:
        return rows
    coords = np.unravel_index(index, spatial)
    side = block_side(ndim, rows.shape[1])
    # group the pixels by block: blocks are numbered row-major on the grid
    grid = [-(-n // side) for n in spatial]
    piece_id = np.ravel_multi_index(tuple(c // side for c in coords), grid)
    order = np.argsort(piece_id, kind="stable")
    ids, first = np.unique(piece_id[order], return_index=True)
    groups = dict(zip(ids.tolist(), np.split(order, first[1:])))
    jobs = [(k, block) for k, block in enumerate(_blocks(tuple((0, n) for n in spatial), side))
            if k in groups]
    local = threading.local()
    channel_features = _channel_features_of(spec)

    def work(job):
        k, block = job
        shape = tuple(b - a for a, b in block)
        buf = getattr(local, "buf", None)
        if buf is None:  # feature-major: the fast path writes its planes straight in
            buf = local.buf = np.moveaxis(
                np.empty((rows.shape[1],) + (side,) * ndim, dtype=np.float32), 0, -1)
        dst = buf[tuple(slice(0, n) for n in shape)]
        for c, channel in enumerate(channels):
            channel_features(channel, spec, ndim, dst, c * n_per_channel, block)
        sel = groups[k]
        rows[sel] = dst[tuple(coord[sel] - a for coord, (a, _) in zip(coords, block))]

    _run_blocks(work, jobs, n_threads)
    return rows


def check_fits_halo(shape, halo, *, name="image"):
    """Raise InvalidImageError if a spatial axis is not longer than the halo."""
    small = [i for i, (n, h) in enumerate(zip(shape, halo)) if n <= h]
    if small:
        raise InvalidImageError(
            f"{name} has spatial shape {tuple(shape)}, not larger than the feature halo "
            f"{tuple(halo)} (the reach of the largest filter) along axes {small}; use smaller "
            "sigmas (e.g. FeatureSpec.for_object_size(diameter)) or pad the image "
            "(np.pad(image, ..., mode='reflect'))."
        )


def compute_features(image, spec=None, *, channel_axis=None):
    """Compute the named per-pixel feature stack of an image.

    Parameters
    ----------
    image : array_like
        2D ``(Y, X)`` or 3D ``(Z, Y, X)`` image, optionally with a channel
        axis.  Intensities are used as they are (as float32): normalize
        first (e.g. :func:`pixelforest.preprocess.normalize.normalize_percentile`) if
        images differ in brightness.
    spec : FeatureSpec, optional
        Which features to compute (default: ``FeatureSpec()``).
    channel_axis : int or None, optional
        Axis of ``image`` holding channels; None for a single channel.

    Returns
    -------
    features : ndarray of float32, shape ``(spatial..., F)``
        Column ``k`` is ``spec.feature_names(n_channels, ndim)[k]``.

    Raises
    ------
    InvalidImageError
        Not a 2D/3D numeric image, NaN values, spacing of the wrong length,
        or an image not larger than ``spec.halo_for(ndim)``.

    Notes
    -----
    Each Gaussian smoothing is computed once and shared (a difference of
    Gaussians reuses the smoothings of the ``gaussian`` family and of its
    neighbours), in float32; on the fast path every derivative order of a
    scale shares its passes too.  Images larger than 512 pixels per side (128
    or 96 in 3D) are computed in blocks, each filter reading its own radius
    around a block, on every core (``PIXELFOREST_NUM_THREADS`` limits
    them): the numbers are those of the whole image at once, bit for bit.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((32, 32), dtype=np.uint8)
    >>> image[10:20, 10:20] = 200
    >>> spec = FeatureSpec(families=("gaussian", "gradient"), sigmas=(1, 2))
    >>> feats = compute_features(image, spec)
    >>> feats.shape, feats.dtype
    ((32, 32, 4), dtype('float32'))
    >>> spec.names[2], round(float(feats[15, 15, 0]), 1)
    ('gradient(sigma=1)[ch0]', 200.0)
    """
    spec = FeatureSpec() if spec is None else spec
    if not isinstance(spec, FeatureSpec):
        raise InvalidParameterError(
            f"spec must be a FeatureSpec, got {type(spec).__name__}; build one with "
            "FeatureSpec(...) or FeatureSpec.preset(name)."
        )
    image = check_image(image, channel_axis=channel_axis)
    axis = check_channel_axis(channel_axis, image.ndim)
    image_cl, _ = to_channel_last(image, axis)
    ndim = image_cl.ndim - 1
    halo = spec.halo_for(ndim)
    check_fits_halo(image_cl.shape[:-1], halo)
    return features_of_block(image_cl, spec)
