"""Interactive training without Qt: retrain from growing scribbles, predict what is in view first.

:class:`LiveTrainer` is the engine behind the napari widget (and
``benchmarks/bench_live.py``); it imports neither napari nor Qt.  It fits
exactly the model :meth:`PixelClassifier.fit
<pixelforest.classify.classifier.PixelClassifier.fit>` fits from the same
images and scribbles, but keeps, per image, what does not change between
two strokes:

* the image checked and channel-last, its whole-image normalization
  statistics and its normalized float32 copy (computed once per image);
* the feature rows of every pixel ever labelled (so a new stroke costs the
  features of its own pixels only; an erased pixel's row stays cached but
  is no longer used, its features do not depend on its label);
* the feature rows of the seeded pixel sample that places the forest's
  splits (``split_placement="valley"``), computed once per image and number
  of labelled images;
* the feature stacks of the blocks of a fixed grid over the image (512 x
  512 pixels in 2D, 8 x 256 x 256 in 3D), computed with the features'
  halo once (exact, like any block of the pipeline) and kept within a byte
  budget shared by all images (``cache_bytes``, least recently used blocks
  evicted first, never those of the region in view while it is predicted).
  Features do not depend on the model: after a stroke only the forest
  runs, on stored features.  The sample's and the strokes' rows are read
  from stored blocks when they are there.

A change of feature spec, normalization or channel axis, or a new image
array for the same key, drops that image's cache (and its blocks).
Erasing scribbles drops nothing: features do not depend on labels, and
each fit uses only the pixels labelled at that moment.  In-place edits of
an image array are not detected: pass a new array (or call
:meth:`LiveTrainer.forget`).

:func:`plan_regions` orders a prediction: the region in view first, then
the rest of the image in blocks; :func:`uncertainty` is one minus the
margin between the two most probable classes.
"""

from __future__ import annotations

import collections
import itertools
import threading

import numpy as np
from sklearn.base import clone

from pixelforest._shared.threads import limit_blas_threads, resolve_n_threads, run_on_pool
from pixelforest._shared.validation import check_channel_axis, check_image, to_channel_last
from pixelforest.classify.classifier import PixelClassifier, TrainingSet
from pixelforest.classify.pipeline import PredictionPipeline
from pixelforest.errors import Cancelled, InvalidLabelsError
from pixelforest.features.compute import check_fits_halo, features_at, features_of_block
from pixelforest.features.spec import FeatureSpec

__all__ = ["DEFAULT_CACHE_BYTES", "LiveTrainer", "plan_regions", "uncertainty"]


def uncertainty(proba):
    """One minus the margin between the two most probable classes.

    Parameters
    ----------
    proba : ndarray, shape ``(..., n_classes)``
        Class probabilities (``n_classes >= 2``).

    Returns
    -------
    u : ndarray of float32, shape ``proba.shape[:-1]``
        0 where one class has all the votes, 1 where the top two tie.

    Examples
    --------
    >>> import numpy as np
    >>> uncertainty(np.array([[1.0, 0.0], [0.5, 0.5], [0.6, 0.1]], np.float32))
    array([0. , 1. , 0.5], dtype=float32)
    """
    proba = np.asarray(proba, dtype=np.float32)
    if proba.shape[-1] == 2:
        return (1 - np.abs(proba[..., 0] - proba[..., 1])).astype(np.float32)
    top2 = np.partition(proba, -2, axis=-1)[..., -2:]
    return (1 - (top2[..., 1] - top2[..., 0])).astype(np.float32)


def _remainder(box, region):
    """Boxes (tuples of (lo, hi)) covering ``box`` minus ``region`` (both boxes), disjoint."""
    out = []
    box = list(box)
    for ax, ((blo, bhi), (rlo, rhi)) in enumerate(zip(list(box), region)):
        rlo, rhi = max(blo, rlo), min(bhi, rhi)
        if rlo >= rhi:  # no overlap: the whole box remains
            return out + [tuple(box)]
        if blo < rlo:
            out.append(tuple(box[:ax] + [(blo, rlo)] + box[ax + 1:]))
        if rhi < bhi:
            out.append(tuple(box[:ax] + [(rhi, bhi)] + box[ax + 1:]))
        box[ax] = (rlo, rhi)
    return out


def _tile(box, block):
    """Split a box into blocks of at most ``block`` pixels per axis."""
    ranges = [[(lo, min(lo + block, hi)) for lo in range(lo0, hi, block)] for lo0, hi in box]
    grid = np.meshgrid(*[np.arange(len(r)) for r in ranges], indexing="ij")
    return [tuple(ranges[ax][k[ax]] for ax in range(len(box)))
            for k in zip(*[g.ravel() for g in grid])]


def plan_regions(spatial_shape, visible=None, *, block=512):
    """The order in which to predict an image: the visible region, then the rest in blocks.

    Parameters
    ----------
    spatial_shape : tuple of int
        The image's spatial shape.
    visible : tuple of slice, optional
        The region in view (clipped to the image); None or an empty region
        means no region is in view.
    block : int, optional
        Largest side of the other regions.

    Returns
    -------
    regions : list of tuple of slice
        Disjoint regions covering the image exactly once; the visible one
        first (when given), the others sorted by distance to it.

    Examples
    --------
    >>> regions = plan_regions((100, 100), (slice(10, 50), slice(20, 60)), block=64)
    >>> regions[0]
    (slice(10, 50, None), slice(20, 60, None))
    >>> sum((r[0].stop - r[0].start) * (r[1].stop - r[1].start) for r in regions)
    10000
    """
    whole = tuple((0, int(n)) for n in spatial_shape)
    first = []
    if visible is not None:
        vis = tuple((max(0, s.start or 0), min(n, n if s.stop is None else s.stop))
                    for s, (_, n) in zip(visible, whole))
        if all(lo < hi for lo, hi in vis):
            first = [vis]
            rest = _remainder(whole, vis)
        else:
            rest = [whole]
    else:
        rest = [whole]
    blocks = [b for box in rest for b in _tile(box, block)]
    if first:
        center = np.array([(lo + hi) / 2 for lo, hi in first[0]])
        blocks.sort(key=lambda b: float(np.sum((np.array([(lo + hi) / 2 for lo, hi in b])
                                                - center) ** 2)))
    return [tuple(slice(lo, hi) for lo, hi in box) for box in first + blocks]


#: Side of the tiles by which new stroke pixels are grouped (see :func:`_rows_near`).
_STROKE_TILE = 128


def _rows_near(norm, spec, index, n_threads):
    """Feature rows of the flat ``index`` (sorted), from small boxes around the pixels.

    A stroke covers few pixels of a block: instead of the whole blocks of
    :func:`~pixelforest.features.compute.features_at`, the pixels are
    grouped by tiles of :data:`_STROKE_TILE` pixels and each group's
    bounding box is computed with the features' halo around it (exact,
    like any block cut with its halo).  Falls back to ``features_at`` when
    the boxes would cover more than the image.
    """
    spatial = norm.shape[:-1]
    halo = spec.halo_for(len(spatial))
    coords = np.stack(np.unravel_index(index, spatial), axis=1)
    tile_id = np.ravel_multi_index(tuple((coords // _STROKE_TILE).T),
                                   tuple(-(-n // _STROKE_TILE) for n in spatial))
    groups = np.split(np.argsort(tile_id, kind="stable"),
                      np.flatnonzero(np.diff(np.sort(tile_id, kind="stable"))) + 1)
    boxes, area = [], 0
    for sel in groups:
        lo, hi = coords[sel].min(axis=0), coords[sel].max(axis=0) + 1
        cut = tuple(slice(max(0, a - h), min(n, b + h)) for a, b, h, n in zip(lo, hi, halo, spatial))
        area += int(np.prod([s.stop - s.start for s in cut]))
        boxes.append((sel, lo, hi, cut))
    if area >= np.prod(spatial):
        return features_at(norm, spec, index, n_threads=n_threads)
    rows = np.empty((index.size, spec.n_features(norm.shape[-1], len(spatial))), np.float32)
    for sel, lo, hi, cut in boxes:
        crop = tuple(slice(a - s.start, b - s.start) for a, b, s in zip(lo, hi, cut))
        feats = features_of_block(norm[cut], spec, crop=crop, n_threads=n_threads)
        rows[sel] = feats[tuple((coords[sel] - lo).T)]
    return rows


#: Side per spatial axis (2D, 3D) of the blocks whose feature stacks are
#: cached: a grid fixed per image, so that a block computed for one region
#: (the view, a stroke, the split-placement sample) serves every later one.
_CACHE_BLOCK = {2: (512, 512), 3: (8, 256, 256)}

#: Default byte budget of the feature blocks a :class:`LiveTrainer` keeps.
DEFAULT_CACHE_BYTES = 512 * 2**20

_owner_ids = itertools.count()


class _BlockStore:
    """Feature stacks of image blocks within a byte budget, least recently used first.

    Keys are ``(owner, block)``; an owner (one image's cache) is registered
    while it lives, and :meth:`drop` removes it with its blocks, so a
    block finished by a thread after its image was forgotten is not kept.
    A block that does not fit even after evicting every block not in
    ``keep`` (the region in view) is not stored: the budget is never
    exceeded.
    """

    def __init__(self, budget):
        self.budget = int(budget)
        self.nbytes = 0
        self.computed = 0       # blocks computed because the store did not hold them
        self._blocks = collections.OrderedDict()
        self._owners = set()
        self._lock = threading.Lock()

    def register(self, owner):
        with self._lock:
            self._owners.add(owner)

    def get(self, key):
        with self._lock:
            feats = self._blocks.get(key)
            if feats is not None:
                self._blocks.move_to_end(key)
            return feats

    def put(self, key, feats, keep=frozenset()):
        """Store ``feats`` (a block just computed) under ``key`` if it fits; True if stored."""
        with self._lock:
            self.computed += 1
            if key in self._blocks:
                return True
            if key[0] not in self._owners or feats.nbytes > self.budget:
                return False
            victims, free = [], self.budget - self.nbytes
            if free < feats.nbytes:
                for old, arr in self._blocks.items():   # least recently used first
                    if old in keep:
                        continue
                    victims.append(old)
                    free += arr.nbytes
                    if free >= feats.nbytes:
                        break
                if free < feats.nbytes:
                    return False
            for old in victims:
                self.nbytes -= self._blocks.pop(old).nbytes
            feats.setflags(write=False)      # shared by every later reader
            self._blocks[key] = feats
            self.nbytes += feats.nbytes
            return True

    def drop(self, owner=None):
        """Forget ``owner`` and its blocks (None: every owner)."""
        with self._lock:
            if owner is None:
                self._owners.clear()
            else:
                self._owners.discard(owner)
            for key in [k for k in self._blocks if owner is None or k[0] == owner]:
                self.nbytes -= self._blocks.pop(key).nbytes

    def info(self):
        with self._lock:
            return {"bytes": int(self.nbytes), "blocks": len(self._blocks),
                    "budget": self.budget, "computed": self.computed}


def _box(where, spatial):
    """``(lo, hi)`` per axis of a region given as slices, clipped to the image."""
    return tuple((max(0, s.start or 0), min(n, n if s.stop is None else s.stop))
                 for s, n in zip(where, spatial))


class _ImageCache:
    """What one image keeps between fits and predictions (see :class:`LiveTrainer`)."""

    def __init__(self, image, image_cl, n_channels, prep, store):
        self.image = image            # the array given (identity marks a new image)
        self.image_cl = image_cl
        self.n_channels = n_channels
        self.prep = prep              # spec and normalization, no estimator
        self.spec = prep.spec
        self.stats = prep.statistics(image_cl)
        self.norm = prep.normalized(image_cl, self.stats)
        self.spatial = image_cl.shape[:-1]
        self.side = _CACHE_BLOCK[len(self.spatial)]
        self.grid = tuple(-(-n // b) for n, b in zip(self.spatial, self.side))
        self.store = store
        self.owner = next(_owner_ids)
        store.register(self.owner)
        self.index = np.empty(0, dtype=np.intp)    # sorted flat indices with cached rows
        self.rows = np.empty((0, prep.n_features), dtype=np.float32)
        self.sample = {}          # (seed, position, per_image) -> rows
        self.other_stats = {}     # statistics for a model of another normalization

    def matches(self, pipe):
        """True if ``pipe`` computes the features this cache holds."""
        return (pipe.spec == self.spec and pipe.normalize == self.prep.normalize
                and pipe.n_channels == self.n_channels and pipe.ndim == len(self.spatial))

    # -- the block grid -------------------------------------------------------
    def block_box(self, block):
        return tuple((k * b, min((k + 1) * b, n))
                     for k, b, n in zip(block, self.side, self.spatial))

    def blocks_of(self, box):
        """The blocks of the grid that intersect ``box`` (``(lo, hi)`` per axis)."""
        ranges = [range(lo // b, -(-hi // b)) for (lo, hi), b in zip(box, self.side)]
        return list(itertools.product(*ranges))

    def block_features(self, block, *, n_threads, keep=frozenset()):
        """Feature stack of one block of the grid: from the store, or computed (and stored)."""
        key = (self.owner, block)
        feats = self.store.get(key)
        if feats is None:
            where = tuple(slice(lo, hi) for lo, hi in self.block_box(block))
            cut, crop = self.prep.cut_with_halo(where, self.spatial)
            feats = features_of_block(self.norm[cut], self.spec, crop=crop,
                                      n_threads=n_threads)
            self.store.put(key, feats, keep)
        return feats

    def for_blocks(self, work, blocks, n_threads):
        """``work(block, inner_threads)`` for every block, on one pool of the thread budget."""
        budget = resolve_n_threads(n_threads)
        n_workers = min(budget, len(blocks))
        if n_workers <= 1:
            for block in blocks:
                work(block, budget)
            return
        with limit_blas_threads(1):   # one pool: each block single-threaded
            run_on_pool(lambda block: work(block, 1), blocks, n_workers, name="pf-live")

    # -- feature rows ---------------------------------------------------------
    def rows_at(self, index, *, n_threads, compute):
        """Feature rows of the sorted flat ``index``.

        Rows in a stored block are read from it; the others are computed
        with whole blocks (``compute=True``, stored if the budget allows:
        the split-placement sample reaches every block) or, for a few
        pixels such as a stroke's, by :func:`_rows_near`.
        """
        rows = np.empty((index.size, self.rows.shape[1]), dtype=np.float32)
        if index.size == 0:
            return rows
        coords = np.unravel_index(index, self.spatial)
        block_id = np.ravel_multi_index(tuple(c // b for c, b in zip(coords, self.side)),
                                        self.grid)
        order = np.argsort(block_id, kind="stable")
        ids, first = np.unique(block_id[order], return_index=True)
        groups = dict(zip(ids.tolist(), np.split(order, first[1:])))
        todo = []
        for flat, sel in groups.items():
            block = tuple(int(k) for k in np.unravel_index(flat, self.grid))
            feats = self.store.get((self.owner, block))
            if feats is None:
                todo.append((block, sel))
                continue
            lo = [a for a, _ in self.block_box(block)]
            rows[sel] = feats[tuple(c[sel] - a for c, a in zip(coords, lo))]
        if not todo:
            return rows
        if not compute:
            missing = np.concatenate([sel for _, sel in todo])
            missing.sort()
            rows[missing] = _rows_near(self.norm, self.spec, index[missing], n_threads)
            return rows
        jobs = dict(todo)

        def work(block, inner):
            sel = jobs[block]
            feats = self.block_features(block, n_threads=inner)
            lo = [a for a, _ in self.block_box(block)]
            rows[sel] = feats[tuple(c[sel] - a for c, a in zip(coords, lo))]

        self.for_blocks(work, list(jobs), n_threads)
        return rows

    def rows_for(self, index, spec, n_threads):
        """Feature rows of the sorted flat ``index``, computing only the uncached ones."""
        new = np.setdiff1d(index, self.index, assume_unique=True)
        if new.size:
            new_rows = self.rows_at(new, n_threads=n_threads, compute=False)
            merged = np.union1d(self.index, new)
            rows = np.empty((merged.size, self.rows.shape[1]), dtype=np.float32)
            rows[np.searchsorted(merged, self.index)] = self.rows
            rows[np.searchsorted(merged, new)] = new_rows
            self.index, self.rows = merged, rows
        return self.rows[np.searchsorted(self.index, index)], int(new.size)

    # -- prediction -----------------------------------------------------------
    def predict(self, pipe, box, *, n_threads, keep=frozenset(), cancelled=None):
        """Labels and uncertainty of the region ``box`` from the stored feature blocks.

        Each block of the grid that the region crosses is featurized once
        (then read from the store) and only its forest runs per model;
        the blocks run on one pool of the thread budget.
        """
        shape = tuple(hi - lo for lo, hi in box)
        labels = np.empty(shape, dtype=pipe.classes.dtype)
        unc = np.empty(shape, dtype=np.float32)

        def work(block, inner):
            if cancelled is not None and cancelled():
                raise Cancelled("the update was cancelled by newer work.")
            feats = self.block_features(block, n_threads=inner, keep=keep)
            part = [(max(a, lo), min(b, hi)) for (a, b), (lo, hi)
                    in zip(self.block_box(block), box)]
            src = tuple(slice(lo - a, hi - a) for (lo, hi), (a, _)
                        in zip(part, self.block_box(block)))
            dst = tuple(slice(lo - a, hi - a) for (lo, hi), (a, _) in zip(part, box))
            sub = feats[src]
            proba = pipe.predict_proba_rows(sub.reshape(-1, sub.shape[-1]), n_threads=inner)
            proba = proba.reshape(sub.shape[:-1] + (proba.shape[-1],))
            labels[dst] = pipe.labels_of(proba)
            unc[dst] = uncertainty(proba)

        self.for_blocks(work, self.blocks_of(box), n_threads)
        return labels, unc


class LiveTrainer:
    """Refit a :class:`PixelClassifier` after every stroke, featurizing only new pixels.

    Per image (see the module's documentation) it keeps the checked image,
    its statistics and normalized copy, the feature rows of labelled
    pixels and of the split-placement sample, and the feature stacks of
    the blocks of a fixed grid (512 x 512 pixels in 2D) that a prediction
    or the sample has needed, within a byte budget shared by all images:
    features do not depend on the model, so after a stroke only the
    forest runs on the region in view.  When the budget is full, the
    least recently used blocks outside the region being predicted make
    room, and a block that still does not fit is computed, used and not
    kept (the budget is never exceeded).

    Parameters
    ----------
    classifier : PixelClassifier, optional
        Unfitted classifier whose parameters are used (it is cloned for
        every fit); default ``PixelClassifier()``, the library's defaults.
    cache_bytes : int, optional
        Budget of the cached feature blocks, in bytes (0: none cached).

    Attributes
    ----------
    last_fit : dict
        What the last :meth:`fit` did: ``labelled`` pixels, ``featurized``
        pixels (new rows computed), ``images`` trained on.

    Examples
    --------
    >>> import numpy as np
    >>> from pixelforest import PixelClassifier
    >>> from pixelforest.features import FeatureSpec
    >>> image = np.zeros((64, 64), np.float32); image[20:44, 20:44] = 1
    >>> scribbles = np.zeros(image.shape, np.uint8)
    >>> scribbles[2, 2:60], scribbles[32, 26:38] = 1, 2
    >>> trainer = LiveTrainer(PixelClassifier(FeatureSpec(sigmas=(1, 2))))
    >>> clf = trainer.fit([("a", image, scribbles)])
    >>> scribbles[60, 2:60] = 1                      # a new stroke
    >>> clf = trainer.fit([("a", image, scribbles)])
    >>> trainer.last_fit["featurized"], trainer.last_fit["labelled"]
    (58, 128)
    >>> ref = PixelClassifier(FeatureSpec(sigmas=(1, 2))).fit(image, scribbles)
    >>> bool((clf.predict(image) == ref.predict(image)).all())
    True
    >>> labels, unc = trainer.predict(clf, "a", image)   # features from the cache
    >>> bool((labels == ref.predict(image)).all()), trainer.cache_info()["blocks"]
    (True, 1)
    """

    def __init__(self, classifier=None, *, cache_bytes=DEFAULT_CACHE_BYTES):
        self.classifier = PixelClassifier() if classifier is None else classifier
        self.cache_bytes = int(cache_bytes)
        self._store = _BlockStore(self.cache_bytes)
        self._caches = {}
        self._key = None
        self._lock = threading.RLock()
        self.last_fit = {}

    # -- caches ------------------------------------------------------------
    def _settings(self):
        clf = self.classifier
        return (FeatureSpec.resolve(clf.features), clf.normalize, clf.channel_axis)

    def forget(self, key=None):
        """Drop the cache of one image (``key``) or of all of them (None)."""
        with self._lock:
            if key is None:
                self._caches.clear()
                self._store.drop()
            else:
                entry = self._caches.pop(key, None)
                if entry is not None:
                    self._store.drop(entry.owner)

    def cache_info(self):
        """The feature-block store: what it holds and what it has computed.

        Returns
        -------
        info : dict
            ``"bytes"`` and ``"blocks"`` held, ``"budget"`` (bytes),
            ``"computed"`` (blocks featurized since the trainer was made,
            kept or not) and ``"images"`` with a cache.
        """
        with self._lock:
            return dict(self._store.info(), images=len(self._caches))

    def cache(self, key, image):
        """The cache of ``image`` under ``key``, made (and its image checked) if new.

        Raises
        ------
        InvalidImageError, ChannelMismatchError
            The image is not a valid image for the classifier's settings.
        """
        with self._lock:
            settings = self._settings()
            if settings != self._key:
                self.forget()
                self._key = settings
            entry = self._caches.get(key)
            if entry is not None and entry.image is image:
                return entry
            if entry is not None:        # a new array for the same key
                self.forget(key)
            clf = self.classifier
            name = f"image {key!r}"
            given = image
            image = check_image(image, channel_axis=clf.channel_axis, name=name)
            image_cl, n_channels = to_channel_last(
                image, check_channel_axis(clf.channel_axis, image.ndim, name=name))
            spec = settings[0]
            prep = PredictionPipeline(spec=spec, normalize=clf.normalize, estimator=None,
                                      classes=[0, 1], n_channels=n_channels,
                                      ndim=image_cl.ndim - 1, channel_axis=clf.channel_axis)
            check_fits_halo(image_cl.shape[:-1], prep.halo, name=f"image {key!r}")
            # the array given marks the image (a bool image is checked to a copy)
            entry = _ImageCache(given, image_cl, n_channels, prep, self._store)
            self._caches[key] = entry
            return entry

    def statistics(self, key, image):
        """Whole-image normalization statistics of ``image`` (computed once)."""
        return self.cache(key, image).stats

    # -- training ----------------------------------------------------------
    def fit(self, data, *, cancelled=None):
        """Fit a new classifier on scribbles painted on one or several images.

        Equal to ``clone(classifier).fit(images, labels)`` (same features,
        same forest, same split placement, same predictions, bit for bit)
        for the images in ``data`` that hold a labelled pixel, in order.
        Each image is checked once, when its cache is made.

        Parameters
        ----------
        data : sequence of (key, image, labels)
            ``key`` names the image's cache (any hashable), ``image`` the
            image (with the classifier's ``channel_axis``), ``labels`` its
            scribbles (0 = unlabelled).
        cancelled : callable, optional
            Called between steps; when it returns True, :class:`Cancelled`
            is raised and nothing is fitted.

        Returns
        -------
        clf : PixelClassifier
            A fitted clone of :attr:`classifier`.

        Raises
        ------
        InvalidLabelsError
            Fewer than two classes labelled in all.
        Cancelled
            ``cancelled()`` returned True.
        """
        with self._lock:
            data = list(data)
            if cancelled is not None and cancelled():
                raise Cancelled("training was cancelled; nothing was fitted.")
            clf = clone(self.classifier)
            # images without a labelled pixel take no part in the fit (nor
            # in its split-placement sample): they need no cache
            painted = [d for d in data if np.asarray(d[2]).any()]
            if not painted:
                TrainingSet(clf, [image for _, image, _ in data],
                            [lab for _, _, lab in data])    # raises: nothing labelled
            entries = [self.cache(key, image) for key, image, _ in painted]
            training = TrainingSet(clf, [e.image_cl for e in entries],
                                   [lab for _, _, lab in painted], checked=True)
            entries = [entries[item.position] for item in training.items]
            featurized = [0]

            def rows(k, labelled, sample):
                # the split-placement sample once per image (its blocks
                # stay in the feature store for prediction), then the
                # labelled rows from the cache (only new strokes featurized)
                entry = entries[k]
                cached = None
                if sample is not None:
                    key = (training.seed, k, training.sample_size)
                    cached = entry.sample.get(key)
                    if cached is None:
                        cached = entry.sample[key] = entry.rows_at(
                            sample, n_threads=training.n_threads, compute=True)
                        featurized[0] += sample.size
                labelled_rows, n_new = entry.rows_for(labelled, training.spec,
                                                      training.n_threads)
                featurized[0] += n_new
                return labelled_rows, cached

            training.fit(rows=rows, cancelled=cancelled)
            self.last_fit = {"labelled": int(sum(it.labelled.size for it in training.items)),
                             "featurized": int(featurized[0]), "images": len(training.items)}
            return clf

    # -- measured quality --------------------------------------------------
    def stroke_scores(self, data, *, cancelled=None):
        """Leave-one-stroke-out accuracy of the scribbles.

        A stroke is a connected component of one class in one image's
        scribbles.  For each stroke, a model is fitted on all the other
        scribbles (as :meth:`fit` does) and its pixels are predicted; the
        score of the stroke is the fraction predicted as its class.
        Pixel-wise cross-validation would be inflated: the neighbours of a
        held-out pixel, in the same stroke, have nearly its features.
        Strokes whose removal leaves a single class are not scored.

        Parameters
        ----------
        data : sequence of (key, image, labels)
            As for :meth:`fit`.
        cancelled : callable, optional
            Checked before each stroke; raises :class:`Cancelled`.

        Returns
        -------
        scores : dict
            ``"mean"`` (mean over the classes of the mean stroke score of
            each class), ``"per_class"`` ({class: mean score}), ``"strokes"``
            (number scored) and ``"skipped"``.
        """
        from scipy import ndimage as ndi

        data = [(key, image, np.asarray(lab)) for key, image, lab in data]
        strokes = []
        for pos, (_, _, lab) in enumerate(data):
            for value in np.unique(lab[lab > 0]):
                comp, n = ndi.label(lab == value)
                flat = comp.ravel()
                order = np.argsort(flat, kind="stable")
                bounds = np.searchsorted(flat[order], np.arange(1, n + 2))
                strokes += [(pos, int(value), np.sort(order[bounds[k]:bounds[k + 1]]))
                            for k in range(n)]
        per_class, skipped = {}, 0
        for pos, value, index in strokes:
            if cancelled is not None and cancelled():
                raise Cancelled("the update was cancelled by newer work.")
            held = [(key, image, lab) for key, image, lab in data]
            key, image, lab = held[pos]
            lab = lab.copy()
            lab.ravel()[index] = 0
            held[pos] = (key, image, lab)
            try:
                clf = self.fit(held, cancelled=cancelled)
            except InvalidLabelsError:
                skipped += 1
                continue
            if value not in clf.classes_:
                skipped += 1
                continue
            with self._lock:        # the cache's rows are shared with fit
                rows, _ = self.cache(key, image).rows_for(index, clf.spec_, resolve_n_threads(
                    clf.n_jobs))
            pred = clf.pipeline_.labels_of(clf.pipeline_.predict_proba_rows(rows))
            per_class.setdefault(value, []).append(float(np.mean(pred == value)))
        means = {v: float(np.mean(s)) for v, s in sorted(per_class.items())}
        return {"mean": float(np.mean(list(means.values()))) if means else float("nan"),
                "per_class": means, "strokes": sum(len(s) for s in per_class.values()),
                "skipped": skipped}

    # -- prediction --------------------------------------------------------
    def predict_region(self, clf, key, image, where, *, n_threads=None, keep=None,
                       cancelled=None):
        """Labels and uncertainty of one region of an image, exact.

        With a model of the trainer's settings (features, normalization),
        the region's features come from the cached blocks (each computed
        once per image) and only the forest runs; another model (e.g. a
        model file's) goes through its pipeline with its own statistics.

        Parameters
        ----------
        clf : PixelClassifier
            A fitted classifier (from :meth:`fit` or a model file).
        key, image
            The image and its cache key (statistics of the whole image are
            computed once and reused).
        where : tuple of slice
            The region.
        n_threads : int or None, optional
            Thread budget (default: the classifier's ``n_jobs``).
        keep : tuple of slice, optional
            A region (e.g. the one in view) whose feature blocks are not
            evicted to make room for this region's; default ``where``.
        cancelled : callable, optional
            Checked before each block; raises :class:`Cancelled`.

        Returns
        -------
        labels : ndarray
            ``clf.predict(image)[where]``, bit for bit.
        uncertainty : ndarray of float32
            :func:`uncertainty` of ``clf.predict_proba(image)[where]``.
        """
        entry = self.cache(key, image)
        pipe = clf.pipeline_
        if n_threads is None:
            n_threads = clf.n_jobs
        if not entry.matches(pipe):
            proba = pipe.predict_region(entry.image_cl, where,
                                        self._statistics_for(entry, pipe),
                                        probabilities=True, n_threads=n_threads)
            return pipe.labels_of(proba), uncertainty(proba)
        box = _box(where, entry.spatial)
        kept = entry.blocks_of(_box(keep, entry.spatial) if keep is not None else box)
        return entry.predict(pipe, box, n_threads=n_threads,
                             keep=frozenset((entry.owner, b) for b in kept),
                             cancelled=cancelled)

    def _statistics_for(self, entry, pipe):
        """Statistics of the image for a pipeline whose normalization may differ."""
        if pipe.normalize == entry.prep.normalize:
            return entry.stats
        if pipe.normalize not in entry.other_stats:
            entry.other_stats[pipe.normalize] = pipe.statistics(entry.image_cl)
        return entry.other_stats[pipe.normalize]

    def predict(self, clf, key, image, *, visible=None, emit=None, cancelled=None,
                n_threads=None, block=1024):
        """Predict a whole image region by region, the visible one first.

        The blocks of the region in view keep their cached features while
        the rest of the image is predicted (see :class:`LiveTrainer`), so
        the next stroke finds them even when the budget cannot hold the
        whole image's.

        Parameters
        ----------
        clf, key, image
            See :meth:`predict_region`.
        visible : tuple of slice or callable, optional
            The region in view, or a function returning it (read again
            before each region, so a camera move re-orders the rest).
        emit : callable, optional
            ``emit(where, labels, uncertainty)`` after each region.
        cancelled : callable, optional
            Checked before each region and each block of it; raises
            :class:`Cancelled` (what is cached stays exact).
        n_threads : int or None, optional
            Thread budget.
        block : int, optional
            Side of the regions after the visible one.

        Returns
        -------
        labels, uncertainty : ndarray
            Of the whole image.
        """
        entry = self.cache(key, image)
        spatial = entry.spatial
        view = visible() if callable(visible) else visible
        pending = plan_regions(spatial, view, block=block)
        labels = np.empty(spatial, dtype=clf.classes_.dtype)
        unc = np.empty(spatial, dtype=np.float32)
        first = True
        while pending:
            if cancelled is not None and cancelled():
                raise Cancelled("the update was cancelled by newer work.")
            if not first and callable(visible):
                view = visible()
                pending = _nearest_first(pending, view)
            where = pending.pop(0)
            first = False
            lab, u = self.predict_region(clf, key, image, where, n_threads=n_threads,
                                         keep=view if view is not None else where,
                                         cancelled=cancelled)
            labels[where], unc[where] = lab, u
            if emit is not None:
                emit(where, lab, u)
        return labels, unc


def _nearest_first(regions, view):
    """``regions`` with the one nearest to the centre of ``view`` first."""
    if view is None or len(regions) < 2:
        return regions
    center = np.array([((s.start or 0) + (s.stop or 0)) / 2 for s in view])
    dist = [float(np.sum((np.array([(r.start + r.stop) / 2 for r in reg]) - center) ** 2))
            for reg in regions]
    k = int(np.argmin(dist))
    return [regions[k]] + regions[:k] + regions[k + 1:]
