"""Instance labels of images larger than memory: the in-memory segmentation, block by block.

``predict_instances`` (:func:`pixelforest.segment.instances.instances_from_probability`
on the foreground probability) needs the whole image twice over: its
statistics (the objects' typical radius, the image's foreground contrast)
are whole-image numbers, and an object is only split right when the block
that splits it sees all of it.  Out of core, the work is done in passes,
each over blocks of bounded size:

1. **Probability**: the foreground probability is predicted tiled, with
   the model's halo and the whole image's normalization statistics
   (:mod:`pixelforest.scale.engine`, bit for bit the in-memory one), and
   stored in a temporary Zarr array next to the output.
2. **Radius**: every block is read with an *overlap* on each side; each
   connected component of the foreground that lies wholly inside the
   block and whose first pixel (in raster order, its *anchor*) lies in the
   block's core gives its radius (:func:`~pixelforest.segment.instances.component_radii`),
   so every component of the image is measured once, by one block, exactly
   as in memory.  Their median is the typical radius.  Without a given
   ``overlap``, the radius pass runs with a provisional overlap and again
   with the default one, :data:`DEFAULT_OVERLAP_RADII` radii.
3. **Contrast** (``guide="image"``): the image's percentiles, the mean
   foreground and background colours (sums over the cores of the
   foreground of step 5 of ``instances_from_probability``) and the order
   statistics of the combined contrast (the exact histogram search of
   :mod:`pixelforest.scale.statistics`) give the whole image's
   :class:`~pixelforest.segment.instances.ContrastStatistics`.
4. **Objects**: each block, read with the overlap, is segmented by the
   same in-memory code given the whole-image radius and contrast
   statistics.  Each object meeting the block's core gets the label of its
   anchor pixel (its flat index in the whole image, plus one): an object
   wholly inside the block is seen whole by every block that holds any of
   its pixels, so they all label it the same, and no merge between blocks
   is needed.  An object that reaches the edge of a block's overlap (larger
   than the overlap) is cut at the core's edge, each piece labelled by its
   own first pixel.
5. **Numbering**: the labels found are renumbered 1..N in raster order of
   their anchors, and written chunk by chunk (uint32).

For every foreground component (a clump of touching objects) smaller than
the overlap the result is therefore the in-memory ``predict_instances``
up to a renumbering, with ``guide="probability"`` bit for bit.  With
``guide="image"`` the mean colours are sums over blocks (float64) where
numpy sums the whole image in float32, so the contrast may differ in its
last bits, which can move a few outline pixels.  Memory is that of one
block with its overlap per worker (the probability, the image, the
distance transform and the watershed's arrays), plus the sorted list of
object labels: with automatic chunks the object passes use the blocks of
the probability, made smaller when a block and its overlap would not fit
the memory budget (:data:`~pixelforest.scale.chunking.DEFAULT_MEMORY_BUDGET`).
The intermediate arrays live in a temporary folder beside the output
(named like the output's temporary, so that a batch re-run removes those
of a killed run), removed at the end.
"""

import math
import numbers
import shutil
import tempfile
import uuid
import warnings
import weakref
from pathlib import Path

import numpy as np

from pixelforest.errors import InvalidParameterError, LargeObjectsWarning

__all__ = ["DEFAULT_OVERLAP_RADII", "GUIDES", "InstanceOptions", "MIN_OVERLAP_RADII",
           "PROVISIONAL_OVERLAP", "check_overlap", "instances_to_store", "lazy_instances"]

#: Default overlap of the blocks, in typical object radii (eight diameters: clumps of
#: touching nuclei are several nuclei wide).
DEFAULT_OVERLAP_RADII = 16

#: Smallest overlap accepted, in typical object radii (two diameters).
MIN_OVERLAP_RADII = 4

#: Overlap (pixels) of the first radius pass when neither radius nor overlap is given.
PROVISIONAL_OVERLAP = 64

#: What separates touching objects (as ``PixelClassifier.predict_instances``).
GUIDES = ("image", "probability")

#: Bytes per pixel of a block while it is segmented (the probability, the image, the
#: distance transforms, the landscape, markers and labels), as the number of float32
#: features with the same footprint in :func:`~pixelforest.scale.chunking.choose_chunks`.
_SEGMENT_FEATURE_EQUIVALENT = 13

#: Name prefix of the tasks of the object and numbering passes.
INSTANCES_PREFIX = "pixelforest-instances"


class InstanceOptions:
    """The options of an out-of-core instance segmentation, checked once.

    Parameters
    ----------
    overlap : int, sequence of int or None
        Pixels read around each block's core, per spatial axis: at least
        the largest object (or clump of touching objects) for it to be
        split as in memory.  None: :data:`DEFAULT_OVERLAP_RADII` times the
        typical radius (estimated from the data unless ``radius`` is given).
        Must be at least :data:`MIN_OVERLAP_RADII` radii.
    spacing : float or sequence of float, optional
        Physical pixel size per spatial axis.
    guide : {"image", "probability"}
        As in ``PixelClassifier.predict_instances``.
    threshold, radius, min_size, max_size, outline
        As in :func:`~pixelforest.segment.instances.instances_from_probability`.

    Examples
    --------
    >>> InstanceOptions(overlap=48, guide="probability")
    InstanceOptions(overlap=48, spacing=None, guide='probability', threshold=0.5, \
radius=None, min_size=None, max_size=None, outline=0.4)
    """

    _FIELDS = ("overlap", "spacing", "guide", "threshold", "radius", "min_size", "max_size",
               "outline")

    def __init__(self, *, overlap=None, spacing=None, guide="image", threshold=0.5,
                 radius=None, min_size=None, max_size=None, outline=0.4):
        from pixelforest.segment import instances as seg

        if guide not in GUIDES:
            raise InvalidParameterError(
                f"guide must be 'image' or 'probability', got {guide!r}."
            )
        if overlap is not None:
            check_overlap(overlap, None)
        # the in-memory checks, once, on a tiny probability
        seg.instances_from_probability(np.zeros((2, 2), np.float32), threshold=threshold,
                                       radius=radius, min_size=min_size, max_size=max_size,
                                       outline=outline)
        self.overlap = overlap
        self.spacing = spacing
        self.guide = guide
        self.threshold = threshold
        self.radius = radius
        self.min_size = min_size
        self.max_size = max_size
        self.outline = outline

    @classmethod
    def of(cls, options):
        """``options`` as InstanceOptions (None: the defaults; a dict: its keywords)."""
        if options is None:
            return cls()
        if isinstance(options, cls):
            return options
        if isinstance(options, dict):
            unknown = sorted(set(options) - set(cls._FIELDS))
            if unknown:
                raise InvalidParameterError(
                    f"unknown instance options {unknown}; use {list(cls._FIELDS)}."
                )
            return cls(**options)
        raise InvalidParameterError(
            f"instances must be None, a dict or an InstanceOptions, got "
            f"{type(options).__name__}."
        )

    def __repr__(self):
        inner = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._FIELDS)
        return f"InstanceOptions({inner})"


def check_overlap(overlap, ndim):
    """``overlap`` as a tuple of ``ndim`` positive ints (``ndim=None``: only check it).

    Examples
    --------
    >>> check_overlap(40, 2), check_overlap((8, 32, 32), 3)
    ((40, 40), (8, 32, 32))
    """
    values = [overlap] if isinstance(overlap, numbers.Integral) else overlap
    try:
        values = list(values)
    except TypeError:
        values = None
    ok = values is not None and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in values)
    if ok and ndim is not None and len(values) not in (1, ndim):
        ok = False
    if not ok:
        raise InvalidParameterError(
            f"overlap must be a positive number of pixels or one per spatial axis, got "
            f"{overlap!r}; it should exceed the largest object (e.g. overlap=64), or "
            "leave it None to derive it from the objects' size."
        )
    if ndim is None:
        return None
    return tuple(int(v) for v in values) * (ndim if len(values) == 1 else 1)


# ---------------------------------------------------------------- blocks


def _starts(chunks):
    return [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(int) for c in chunks]


def _blocks(shape, chunks, overlap):
    """Per block: (core region, extended region, core within the extended, open faces).

    The extended region is the core grown by ``overlap`` and clipped to the
    image; an *open* face (low, high per axis) is one inside the image,
    beyond which the block does not see.
    """
    import itertools

    starts = _starts(chunks)
    for index in itertools.product(*(range(len(c)) for c in chunks)):
        core, ext, inner, faces = [], [], [], []
        for axis, i in enumerate(index):
            lo = int(starts[axis][i])
            hi = lo + int(chunks[axis][i])
            elo = max(0, lo - overlap[axis])
            ehi = min(shape[axis], hi + overlap[axis])
            core.append(slice(lo, hi))
            ext.append(slice(elo, ehi))
            inner.append(slice(lo - elo, hi - elo))
            faces.append((elo > 0, ehi < shape[axis]))
        yield tuple(core), tuple(ext), tuple(inner), tuple(faces)


def _complete(boxes, ext_shape, faces):
    """Which objects (bounding boxes) stay clear of the block's open faces."""
    out = np.zeros(len(boxes), dtype=bool)
    for k, box in enumerate(boxes):
        if box is None:
            continue
        out[k] = all((not lo_open or s.start > 0) and (not hi_open or s.stop < n)
                     for s, n, (lo_open, hi_open) in zip(box, ext_shape, faces))
    return out


def _first_pixels(labels, n):
    """Flat index (in ``labels``) of the first pixel of each label 1..n, -1 if absent."""
    values, first = np.unique(labels.ravel(), return_index=True)
    out = np.full(n + 1, -1, dtype=np.int64)
    out[values] = first
    return out[1:]


def _global_flat(local_flat, local_shape, origin, shape):
    coords = np.unravel_index(local_flat, local_shape)
    coords = tuple(c + o for c, o in zip(coords, origin))
    return np.ravel_multi_index(coords, shape).astype(np.uint64)


def _in_region(local_flat, local_shape, region):
    coords = np.unravel_index(local_flat, local_shape)
    inside = np.ones(np.shape(local_flat), dtype=bool)
    for c, s in zip(coords, region):
        inside &= (c >= s.start) & (c < s.stop)
    return inside


def _read(path, region):
    import zarr

    return zarr.open_array(str(path), mode="r")[region]


def _write(path, region, block):
    import zarr

    arr = zarr.open_array(str(path), mode="r+").with_config({"write_empty_chunks": True})
    arr[region] = block


def _block_radii(prob_path, ext, inner, faces, threshold, spacing):
    """Radii of the components owned by this block, and how many it saw cut."""
    from scipy import ndimage as ndi

    from pixelforest.segment.instances import component_radii

    prob = _read(prob_path, ext)
    labels, radii = component_radii(prob > threshold, spacing=spacing)
    n = radii.size
    if n == 0:
        return radii, 0
    boxes = ndi.find_objects(labels, max_label=n)
    complete = _complete(boxes, labels.shape, faces)
    owned = _in_region(_first_pixels(labels, n), labels.shape, inner)
    in_core = np.zeros(n + 1, dtype=bool)
    in_core[np.unique(labels[inner])] = True
    cut = int(np.count_nonzero(~complete & in_core[1:]))
    keep = complete & owned & ~np.isnan(radii)
    return radii[keep], cut


def _combine_radii(*parts):
    return (np.concatenate([p[0] for p in parts]), sum(p[1] for p in parts))


def _block_mask_sums(prob_path, mask_path, core, ext, inner, image_core, radius, threshold,
                     spacing, min_size, bounds):
    """Store the core's foreground; return (n_fg, sum_fg, n_bg, sum_bg) of the stretched image."""
    from pixelforest.preprocess.normalize import apply_bounds
    from pixelforest.segment.instances import foreground_mask

    prob = _read(prob_path, ext)
    mask = foreground_mask(prob, radius=radius, threshold=threshold, spacing=spacing,
                           min_size=min_size)[inner]
    _write(mask_path, core, mask.astype(np.uint8))
    x = apply_bounds(np.asarray(image_core), bounds, channel_axis=-1)
    return (int(mask.sum()), x[mask].sum(axis=0, dtype=np.float64),
            int(mask.size - mask.sum()), x[~mask].sum(axis=0, dtype=np.float64))


def _block_contrast_values(mask_path, core, image_core, bounds, weights, foreground):
    """The combined contrast of the core's foreground (or background) pixels, ``(n, 1)``."""
    from pixelforest.preprocess.normalize import apply_bounds

    mask = _read(mask_path, core).astype(bool)
    c = apply_bounds(np.asarray(image_core), bounds, channel_axis=-1) @ weights
    return np.ascontiguousarray(c[mask if foreground else ~mask])[:, np.newaxis]


def _block_instances(prob_path, ids_path, core, ext, inner, faces, shape, image_ext, kwargs):
    """Segment the extended block, label the core's objects by their anchors, store them."""
    from scipy import ndimage as ndi

    from pixelforest.segment.instances import instances_from_probability

    prob = _read(prob_path, ext)
    image = None if image_ext is None else np.asarray(image_ext)
    labels = instances_from_probability(prob, image=image,
                                        channel_axis=None if image is None else -1, **kwargs)
    n = int(labels.max())
    ids = np.zeros(n + 1, dtype=np.uint64)
    n_cut = 0
    if n:
        origin = tuple(s.start for s in ext)
        whole = _complete(ndi.find_objects(labels, max_label=n), labels.shape, faces)
        first = _first_pixels(labels, n)
        present = first >= 0
        ids[1:][present] = _global_flat(first[present], labels.shape, origin, shape) + 1
        if not whole.all():
            # larger than the overlap: each core keeps its own piece, named by its first pixel
            core_labels = labels[inner]
            core_first = _first_pixels(core_labels, n)
            cut = ~whole & (core_first >= 0)
            n_cut = int(np.count_nonzero(cut))
            core_origin = tuple(s.start for s in core)
            ids[1:][cut] = _global_flat(core_first[cut], core_labels.shape, core_origin,
                                        shape) + 1
    block = ids[labels[inner]]
    _write(ids_path, core, block)
    found = np.unique(block)
    return found[found > 0], n_cut


def _relabel(block, ids):
    """Labels 1..N: the rank of each anchor label among all of them."""
    out = np.searchsorted(ids, block).astype(np.uint32) + np.uint32(1)
    out[block == 0] = 0
    return out


# ------------------------------------------------------------ the passes


def _compute(delayeds, sched, bar=None, prefix=None):
    """Compute a list of delayed values on ``sched`` (a bar step per task named ``prefix``)."""
    from pixelforest.scale.writers import block_counter

    if sched.is_distributed:
        futures = sched.client.compute(delayeds)
        sched.wait_futures(futures, on_done=(lambda f: bar.update(1)) if bar is not None
                           else None)
        return [f.result() for f in futures]
    callbacks = [block_counter(bar, prefix)] if bar is not None else []
    (results,) = sched.compute(delayeds, callbacks=callbacks)
    return list(results)


def _reduce(delayeds, combine, sched):
    from pixelforest.scale.statistics import _tree_reduce

    (result,) = sched.compute(_tree_reduce(list(delayeds), combine))
    return result


def _radius_pass(prob_path, shape, chunks, overlap, threshold, spacing, sched):
    import dask

    step = dask.delayed(_block_radii, pure=False)
    parts = [step(str(prob_path), ext, inner, faces, threshold, spacing)
             for _, ext, inner, faces in _blocks(shape, chunks, overlap)]
    return _reduce(parts, _combine_radii, sched)


def _segment_chunks(shape, chunks, overlap, workers):
    """The blocks of the object passes: those of the probability, smaller if a block and
    its overlap would not fit the memory budget while segmented."""
    from pixelforest.scale.chunking import block_chunks, choose_chunks

    budget = choose_chunks(shape, n_features=_SEGMENT_FEATURE_EQUIVALENT, halo=overlap,
                           workers=workers)
    sides = tuple(min(c[0], b) for c, b in zip(chunks, budget))
    return block_chunks(shape, sides, (1,) * len(shape))


def _default_overlap(radius, spacing):
    return tuple(max(1, math.ceil(DEFAULT_OVERLAP_RADII * radius / s)) for s in spacing)


def _resolve_radius(opts, prob_path, shape, chunks, spacing, sched):
    """The typical radius and the overlap: given, or measured as in memory."""
    from pixelforest.segment.instances import radius_from_radii

    ndim = len(shape)
    overlap = None if opts.overlap is None else check_overlap(opts.overlap, ndim)
    if opts.radius is not None:
        radius = float(opts.radius)
        return radius, overlap or _default_overlap(radius, spacing), 0
    measured = overlap or tuple(max(1, math.ceil(PROVISIONAL_OVERLAP * min(spacing) / s))
                                for s in spacing)
    radius = cut = None
    for _ in range(3):
        radii, cut = _radius_pass(prob_path, shape, chunks, measured, opts.threshold,
                                  spacing, sched)
        radius = radius_from_radii(radii, spacing=spacing)
        if overlap is not None:
            break
        wanted = _default_overlap(radius, spacing)
        if all(w <= m for w, m in zip(wanted, measured)):
            break
        measured = tuple(max(w, m) for w, m in zip(wanted, measured))
    return radius, overlap or measured, cut


def _check_overlap_fits(overlap, radius, spacing, given):
    least = tuple(math.ceil(MIN_OVERLAP_RADII * radius / s) for s in spacing)
    if given and any(o < m for o, m in zip(overlap, least)):
        raise InvalidParameterError(
            f"overlap={list(overlap)} pixels is less than two object diameters "
            f"({list(least)} pixels for the typical radius {radius:.3g}), so objects would "
            f"be cut between blocks; pass overlap of at least {max(least)} (or None: "
            f"{DEFAULT_OVERLAP_RADII} radii)."
        )


def _exact_order_value(blocks, n, sched, *, median):
    """np.median (``median``) or np.percentile(..., 99) of the values of float32 ``blocks``."""
    from pixelforest.preprocess.normalize import lerp, percentile_positions
    from pixelforest.scale.statistics import _order_statistics

    if median:
        ranks = [n // 2] if n % 2 else [n // 2 - 1, n // 2]
        found = _order_statistics(blocks, 1, np.float32, [ranks], sched)
        values = np.array([found[0, r] for r in ranks], dtype=np.float32)
        return float(np.mean(values))  # np.median: the mean of the middle value(s)
    prev_idx, next_idx, gamma = percentile_positions(n, 99, 99)
    ranks = sorted({int(prev_idx[0]), int(next_idx[0])})
    found = _order_statistics(blocks, 1, np.float32, [ranks], sched)
    prev_vals = np.array([found[0, int(prev_idx[0])]], dtype=np.float32)
    next_vals = np.array([found[0, int(next_idx[0])]], dtype=np.float32)
    # a scalar percentile: numpy interpolates with a Python-float weight, in float32
    return float(lerp(prev_vals, next_vals, float(gamma[0, 0]))[0])


def _contrast_pass(prob_path, mask_path, image_cl, shape, chunks, overlap, radius, opts,
                   spacing, sched):
    """The whole image's ContrastStatistics (None: no contrast), and whether any foreground."""
    import dask
    import zarr

    from pixelforest.scale.statistics import bounds_of_dask
    from pixelforest.segment.instances import ContrastStatistics

    bounds = bounds_of_dask(image_cl, 1.0, 99.8, sched)
    zarr.create_array(store=str(mask_path), shape=shape, dtype=np.uint8, fill_value=0,
                      chunks=tuple(c[0] for c in chunks))
    step = dask.delayed(_block_mask_sums, pure=False)
    parts = [step(str(prob_path), str(mask_path), core, ext, inner, image_cl[core],
                  radius, opts.threshold, spacing, opts.min_size, bounds)
             for core, ext, inner, _ in _blocks(shape, chunks, overlap)]
    sums = _compute(parts, sched)  # one small tuple per block
    n_fg, n_bg = sum(p[0] for p in sums), sum(p[2] for p in sums)
    s_fg, s_bg = sum(p[1] for p in sums), sum(p[3] for p in sums)
    if n_fg == 0:
        return None, False
    if n_bg == 0:
        return None, True
    direction = ((s_fg / n_fg).astype(np.float32) - (s_bg / n_bg).astype(np.float32))
    norm = float(np.abs(direction).sum())
    if norm == 0:
        return None, True
    weights = (direction / norm).astype(np.float32)
    values = dask.delayed(_block_contrast_values, pure=True)

    def blocks(foreground):
        # only blocks holding such pixels (the order-statistic search needs values)
        return [values(str(mask_path), core, image_cl[core], bounds, weights, foreground)
                for (core, _, _, _), part in zip(_blocks(shape, chunks, overlap), sums)
                if part[0 if foreground else 2]]

    low = _exact_order_value(blocks(False), n_bg, sched, median=True)
    high = _exact_order_value(blocks(True), n_fg, sched, median=False)
    if high <= low:
        return None, True
    return ContrastStatistics(bounds, weights, low, high), True


class _Scratch:
    """A temporary folder of intermediate arrays, removed when the last user lets go.

    A copy sent to another process (a distributed worker) only names the
    folder; only the original removes it.
    """

    def __init__(self, parent=None):
        parent = Path(parent) if parent is not None else Path(tempfile.gettempdir())
        parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=".pixelforest-instances-", dir=parent))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)

    def __reduce__(self):
        return (_ScratchRef, (str(self.path),))

    def remove(self):
        self._finalizer()


class _ScratchRef:
    def __init__(self, path):
        self.path = Path(path)


def _foreground_probability(proba, column):
    # as PixelClassifier.predict_instances: the summed column(s), clipped
    return np.clip(proba[..., [column]].sum(axis=-1), 0, 1)


def instances_to_store(pipeline, image, workdir, sched, *, chunks=None, options=None,
                       foreground=None, channel_axis="training", bar=None):
    """Passes 1-4 of the module docstring into ``workdir``; the facts for pass 5.

    Returns a dict: ``ids`` (path of the uint64 Zarr of anchor labels),
    ``anchors`` (their sorted values), ``chunks`` (the blocks), ``shape``,
    ``radius`` and ``overlap`` used, ``cut`` (how often a block met a component
    or object larger than the overlap; 0 when none) and ``contrast`` (the ContrastStatistics, or None).
    """
    import dask

    from pixelforest.scale.engine import lazy_prediction, prepare
    from pixelforest.scale.outputs import resolve_foreground
    from pixelforest.scale.writers import write_zarr
    from pixelforest.segment.instances import check_spacing

    opts = InstanceOptions.of(options)
    workdir = Path(workdir)
    foreground = resolve_foreground(pipeline.classes, foreground)
    column = int(np.flatnonzero(pipeline.classes == foreground)[0])
    automatic = chunks is None
    image_cl, chunks, stats = prepare(pipeline, image, chunks, sched,
                                      channel_axis=channel_axis)
    shape = tuple(int(n) for n in image_cl.shape[:-1])
    ndim = len(shape)
    spacing = check_spacing(opts.spacing, ndim)
    if bar is not None and hasattr(bar, "reset"):
        # the probability, the objects and the numbered output, a step per block each
        bar.reset(total=3 * math.prod(len(c) for c in chunks))

    # 1. the foreground probability, stored
    proba = lazy_prediction(pipeline, image_cl, chunks, stats, "probabilities", foreground)
    prob = proba.map_blocks(_foreground_probability, column, drop_axis=ndim,
                            dtype=np.float32, meta=np.empty((0,) * ndim, np.float32))
    prob_path = workdir / "probability.zarr"
    write_zarr(prob, prob_path, sched, bar if bar is not None else _NoBar(), {})

    # 2. the typical radius, the overlap
    radius, overlap, cut = _resolve_radius(opts, prob_path, shape, chunks, spacing, sched)
    _check_overlap_fits(overlap, radius, spacing, opts.overlap is not None)
    if automatic:
        chunks = _segment_chunks(shape, chunks, overlap, sched.n_workers)

    # 3. the whole image's contrast
    contrast, any_foreground = None, True
    if opts.guide == "image":
        contrast, any_foreground = _contrast_pass(
            prob_path, workdir / "mask.zarr", image_cl, shape, chunks, overlap, radius,
            opts, spacing, sched)

    # 4. objects, labelled by their anchors
    import zarr

    ids_path = workdir / "anchors.zarr"
    zarr.create_array(store=str(ids_path), shape=shape, dtype=np.uint64, fill_value=0,
                      chunks=tuple(c[0] for c in chunks))
    kwargs = dict(spacing=spacing, threshold=opts.threshold, radius=radius,
                  min_size=opts.min_size, max_size=opts.max_size, outline=opts.outline,
                  contrast_statistics=contrast)
    use_image = contrast is not None
    name = f"{INSTANCES_PREFIX}-{uuid.uuid4().hex}"
    tasks = []
    if any_foreground:
        for i, (core, ext, inner, faces) in enumerate(_blocks(shape, chunks, overlap)):
            tasks.append(dask.delayed(_block_instances, pure=False)(
                str(prob_path), str(ids_path), core, ext, inner, faces, shape,
                image_cl[ext] if use_image else None, kwargs,
                dask_key_name=f"{name}-{i}"))
    results = _compute(tasks, sched, bar, name)
    cut += sum(r[1] for r in results)
    if cut:
        warnings.warn(
            f"some foreground components are larger than the blocks' overlap "
            f"({list(overlap)} pixels): their objects are cut at block edges and may differ "
            "from in-memory predict_instances (the typical radius too); pass a larger "
            "overlap (CLI --overlap) to keep them whole.",
            LargeObjectsWarning, stacklevel=3)
    found = [r[0] for r in results]
    anchors = np.unique(np.concatenate(found)) if found else np.zeros(0, np.uint64)
    if anchors.size >= np.iinfo(np.uint32).max:
        raise InvalidParameterError(
            f"{anchors.size} objects do not fit uint32 labels; split the image.")
    return {"ids": ids_path, "anchors": anchors.astype(np.uint64), "chunks": chunks,
            "shape": shape, "spacing": spacing, "radius": radius, "overlap": overlap,
            "cut": cut, "contrast": contrast}


class _NoBar:
    n = total = 0

    def update(self, n=1):
        pass


def lazy_instances(facts, *, keep=None):
    """The uint32 labels 1..N of :func:`instances_to_store`'s result, lazily (pass 5).

    ``keep``: an object the tasks hold on to (the scratch folder's owner),
    so that the folder outlives every array computed from this one.
    """
    import dask
    import dask.array as da

    from pixelforest.scale.engine import PREDICT_PREFIX

    ids = da.from_zarr(str(facts["ids"]))
    ids = ids.rechunk(facts["chunks"])
    anchors = dask.delayed(facts["anchors"], pure=True)

    def relabel(block, anchors, keep=None):
        return _relabel(block, anchors)

    return ids.map_blocks(relabel, anchors, keep=keep, dtype=np.uint32,
                          name=f"{PREDICT_PREFIX}-instances-{uuid.uuid4().hex}",
                          meta=np.empty((0,) * ids.ndim, np.uint32))


def instance_metadata(classes, foreground, facts):
    """The ``"pixelforest"`` metadata of an instance output (kind, objects, radius...)."""
    from pixelforest.scale.outputs import output_metadata

    attrs = output_metadata(classes, "instances", foreground)
    attrs["pixelforest"].update({
        "n_objects": int(facts["anchors"].size),
        "radius": float(facts["radius"]),
        "overlap": [int(o) for o in facts["overlap"]],
        "block": [int(c[0]) for c in facts["chunks"]],
    })
    return attrs


def scratch_folder(parent=None):
    """A :class:`_Scratch` folder (in ``parent``, default the system's temporary folder)."""
    return _Scratch(parent)

