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
  of labelled images.

A change of feature spec, normalization or channel axis, or a new image
array for the same key, drops that image's cache.  In-place edits of an
image array are not detected: pass a new array (or call
:meth:`LiveTrainer.forget`).

:func:`plan_regions` orders a prediction: the region in view first, then
the rest of the image in blocks; :func:`uncertainty` is one minus the
margin between the two most probable classes.
"""

from __future__ import annotations

import threading

import numpy as np
from sklearn.base import clone

from pixelforest._shared.threads import resolve_n_threads
from pixelforest._shared.validation import check_channel_axis, check_image, to_channel_last
from pixelforest.classify.classifier import PixelClassifier, TrainingSet
from pixelforest.classify.pipeline import PredictionPipeline
from pixelforest.errors import Cancelled, InvalidLabelsError
from pixelforest.features.compute import check_fits_halo, features_at
from pixelforest.features.spec import FeatureSpec

__all__ = ["LiveTrainer", "plan_regions", "uncertainty"]




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
    from pixelforest.features.compute import features_of_block

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


class _ImageCache:
    """What one image keeps between fits (see :class:`LiveTrainer`)."""

    def __init__(self, image, image_cl, n_channels, prep):
        self.image = image            # the array given (identity marks a new image)
        self.image_cl = image_cl
        self.n_channels = n_channels
        self.stats = prep.statistics(image_cl)
        self.norm = prep.normalized(image_cl, self.stats)
        self.index = np.empty(0, dtype=np.intp)    # sorted flat indices with cached rows
        self.rows = np.empty((0, prep.n_features), dtype=np.float32)
        self.sample = {}          # (seed, position, per_image) -> (pick, rows)

    def rows_for(self, index, spec, n_threads):
        """Feature rows of the sorted flat ``index``, computing only the uncached ones."""
        new = np.setdiff1d(index, self.index, assume_unique=True)
        if new.size:
            new_rows = _rows_near(self.norm, spec, new, n_threads)
            merged = np.union1d(self.index, new)
            rows = np.empty((merged.size, self.rows.shape[1]), dtype=np.float32)
            rows[np.searchsorted(merged, self.index)] = self.rows
            rows[np.searchsorted(merged, new)] = new_rows
            self.index, self.rows = merged, rows
        return self.rows[np.searchsorted(self.index, index)], int(new.size)


class LiveTrainer:
    """Refit a :class:`PixelClassifier` after every stroke, featurizing only new pixels.

    Parameters
    ----------
    classifier : PixelClassifier, optional
        Unfitted classifier whose parameters are used (it is cloned for
        every fit); default ``PixelClassifier()``, the library's defaults.

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
    """

    def __init__(self, classifier=None):
        self.classifier = PixelClassifier() if classifier is None else classifier
        self._caches = {}
        self._key = None
        self._lock = threading.RLock()
        self.last_fit = {}

    # -- caches ------------------------------------------------------------
    def _settings(self):
        clf = self.classifier
        return (repr(FeatureSpec.resolve(clf.features)), clf.normalize, clf.channel_axis)

    def forget(self, key=None):
        """Drop the cache of one image (``key``) or of all of them (None)."""
        with self._lock:
            if key is None:
                self._caches.clear()
            else:
                self._caches.pop(key, None)

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
                self._caches.clear()
                self._key = settings
            entry = self._caches.get(key)
            if entry is not None and entry.image is image:
                return entry
            clf = self.classifier
            name = f"image {key!r}"
            image = check_image(image, channel_axis=clf.channel_axis, name=name)
            image_cl, n_channels = to_channel_last(
                image, check_channel_axis(clf.channel_axis, image.ndim, name=name))
            spec = FeatureSpec.resolve(clf.features)
            prep = PredictionPipeline(spec=spec, normalize=clf.normalize, estimator=None,
                                      classes=[0, 1], n_channels=n_channels,
                                      ndim=image_cl.ndim - 1, channel_axis=clf.channel_axis)
            check_fits_halo(image_cl.shape[:-1], prep.halo, name=f"image {key!r}")
            entry = _ImageCache(image, image_cl, n_channels, prep)
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
            training = TrainingSet(clf, [image for _, image, _ in data],
                                   [lab for _, _, lab in data])
            entries = [self.cache(data[item.position][0], data[item.position][1])
                       for item in training.items]
            featurized = [0]

            def rows(k, labelled, sample):
                # the labelled rows from the cache (only new strokes are
                # featurized); the split-placement sample once per image
                entry = entries[k]
                labelled_rows, n_new = entry.rows_for(labelled, training.spec,
                                                      training.n_threads)
                featurized[0] += n_new
                if sample is None:
                    return labelled_rows, None
                key = (training.seed, k, training.sample_size)
                cached = entry.sample.get(key)
                if cached is None:
                    cached = entry.sample[key] = features_at(
                        entry.norm, training.spec, sample, n_threads=training.n_threads)
                    featurized[0] += sample.size
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
            rows, _ = self.cache(key, image).rows_for(index, clf.spec_, resolve_n_threads(
                clf.n_jobs))
            pred = clf.pipeline_.labels_of(clf.pipeline_.predict_proba_rows(rows))
            per_class.setdefault(value, []).append(float(np.mean(pred == value)))
        means = {v: float(np.mean(s)) for v, s in sorted(per_class.items())}
        return {"mean": float(np.mean(list(means.values()))) if means else float("nan"),
                "per_class": means, "strokes": sum(len(s) for s in per_class.values()),
                "skipped": skipped}

    # -- prediction --------------------------------------------------------
    def predict_region(self, clf, key, image, where, *, n_threads=None):
        """Labels and uncertainty of one region of an image, exact.

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
        proba = pipe.predict_region(entry.image_cl, where, entry.stats, probabilities=True,
                                    n_threads=n_threads)
        return pipe.labels_of(proba), uncertainty(proba)

    def predict(self, clf, key, image, *, visible=None, emit=None, cancelled=None,
                n_threads=None, block=1024):
        """Predict a whole image region by region, the visible one first.

        Parameters
        ----------
        clf, key, image
            See :meth:`predict_region`.
        visible : tuple of slice or callable, optional
            The region in view, or a function returning it (read again
            before each block, so a camera move re-orders the rest).
        emit : callable, optional
            ``emit(where, labels, uncertainty)`` after each region.
        cancelled : callable, optional
            Checked before each region; raises :class:`Cancelled`.
        n_threads : int or None, optional
            Thread budget.
        block : int, optional
            Side of the regions after the visible one (each region costs a
            fixed set-up of the thread pools: few large ones are faster).

        Returns
        -------
        labels, uncertainty : ndarray
            Of the whole image.
        """
        entry = self.cache(key, image)
        spatial = entry.image_cl.shape[:-1]
        view = visible() if callable(visible) else visible
        pending = plan_regions(spatial, view, block=block)
        labels = np.empty(spatial, dtype=clf.classes_.dtype)
        unc = np.empty(spatial, dtype=np.float32)
        first = True
        while pending:
            if cancelled is not None and cancelled():
                raise Cancelled("the update was cancelled by newer work.")
            if not first and callable(visible):
                pending = _nearest_first(pending, visible())
            where = pending.pop(0)
            first = False
            lab, u = self.predict_region(clf, key, image, where, n_threads=n_threads)
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
