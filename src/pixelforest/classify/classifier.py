"""The :class:`PixelClassifier`: learn per-pixel classes from a few scribbles.

The classifier normalizes each image (per-channel percentiles by default),
computes named multiscale features (:mod:`pixelforest.features`) and trains
a scikit-learn classifier (by default a random forest) on the labelled
pixels only; the default forest then places its splits where the image's
unlabelled pixels have a valley (:func:`default_estimator`).  Prediction
runs the same steps on every pixel.

Tiled and out-of-core prediction (:mod:`pixelforest.scale.tiled`) use a small
private block API that gives, bit for bit, the result of :meth:`predict_proba`:

- ``clf._normalization_bounds(image_cl)``: whole-image statistics;
- ``clf._proba_from_block(block_cl, bounds)``: probabilities of a raw
  channel-last block cut with a margin of ``clf.halo_`` pixels;
- ``clf._estimator_proba(X)``: the features -> probabilities step (a
  compiled forest may replace it).
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state

from pixelforest._shared.threads import resolve_n_threads
from pixelforest._shared.validation import check_channel_axis, check_image, check_same_shape, to_channel_last
from pixelforest.errors import (
    ChannelMismatchError,
    InvalidImageError,
    InvalidLabelsError,
    InvalidParameterError,
    NotFittedError,
)
from pixelforest.features.compute import check_fits_halo, features_at, features_of_block
from pixelforest.features.spec import FeatureSpec

__all__ = ["PixelClassifier", "default_estimator"]

#: Percentiles of the default ``normalize="percentile"``.
_PERCENTILES = (1.0, 99.8)

#: Pixels per call of the estimator (bounds the memory of one prediction step).
_ROWS_PER_CALL = 1 << 18

_NORMALIZE_CHOICES = ("percentile", "minmax", None)

#: Tile side (pixels, without the halo) of in-memory prediction, 2D and 3D:
#: a tile's features (a few MB) stay in cache and bound the memory.
_TILE_2D = 512
_TILE_3D = 96


def _as_list(images, labels):
    """Return two equally long lists of arrays from one array each or two sequences."""
    single_img = isinstance(images, np.ndarray) or np.isscalar(images)
    single_lab = isinstance(labels, np.ndarray) or np.isscalar(labels)
    if single_img and single_lab:
        return [images], [labels]
    if single_img != single_lab:
        raise InvalidParameterError(
            "pass either one image and one label array, or two lists of the same length; "
            f"got a {type(images).__name__} of images and a {type(labels).__name__} of labels."
        )
    images, labels = list(images), list(labels)
    if len(images) != len(labels):
        raise InvalidParameterError(
            f"got {len(images)} images but {len(labels)} label arrays; pass one label "
            "array per image (0 = unlabelled)."
        )
    if not images:
        raise InvalidParameterError("no training images were given; pass at least one image.")
    return images, labels


def _check_labels(labels, spatial_shape, *, index):
    name = "labels" if index is None else f"labels[{index}]"
    arr = np.asarray(labels)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        raise InvalidLabelsError(
            f"{name} has float dtype {arr.dtype}; labels must be whole class numbers "
            "(0 = unlabelled, 1, 2, ... = classes): convert with labels.astype(np.uint8) "
            "after checking they hold whole numbers."
        )
    if not np.issubdtype(arr.dtype, np.integer):
        raise InvalidLabelsError(
            f"{name} has dtype {arr.dtype}; labels must be an integer array "
            "(0 = unlabelled, 1, 2, ... = classes)."
        )
    img_name = "image" if index is None else f"images[{index}]"
    check_same_shape(arr, np.broadcast_to(np.uint8(0), spatial_shape),
                     names=(name, f"the spatial shape of {img_name}"))
    if arr.size and arr.min() < 0:
        raise InvalidLabelsError(
            f"{name} holds negative values (minimum {arr.min()}); use 0 for unlabelled "
            "pixels and positive integers 1, 2, ... for classes."
        )
    return arr


class PixelClassifier(BaseEstimator):
    """Per-pixel classifier trained from sparse labels (scribbles).

    Parameters
    ----------
    features : FeatureSpec, str or None, optional
        The features to compute: a :class:`~pixelforest.features.FeatureSpec`,
        the name of a preset (see :data:`pixelforest.features.PRESETS`) or
        None for the measured default (``FeatureSpec()``).
    estimator : scikit-learn classifier or None, optional
        Any classifier with ``fit`` and ``predict_proba``; it is cloned in
        :meth:`fit`.  None means :func:`default_estimator`.  If the
        estimator has a ``random_state`` parameter left at None, it is set
        from ``random_state``.
    channel_axis : int or None, optional
        Axis of the images holding channels; None for single-channel images.
    normalize : {"percentile", "minmax", None}, optional
        Per-image, per-channel intensity normalization before features:
        percentiles 1 and 99.8 mapped to 0 and 1 (robust to outliers), the
        minimum and maximum, or none (raw intensities).
    random_state : int, RandomState or None, optional
        Seed of the estimator; an int gives reproducible models.

    Attributes
    ----------
    spec_ : FeatureSpec
        The feature spec used.
    classes_ : ndarray
        The class values (the positive values found in the labels), sorted.
    n_channels_ : int
        Number of image channels seen in training.
    n_features_in_ : int
        Number of feature columns.
    feature_names_ : list of str
        Name of each feature column.
    estimator_ : classifier
        The fitted estimator.
    halo_ : tuple of int
        Margin per spatial axis a block needs for exact tiled prediction.
    feature_importances_ : ndarray
        Importance of each feature column, when the estimator has them.

    Examples
    --------
    >>> import numpy as np
    >>> from pixelforest.features import FeatureSpec
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(10, 2, (48, 48)).astype(np.float32)
    >>> image[12:36, 12:36] += 30
    >>> scribbles = np.zeros(image.shape, np.uint8)
    >>> scribbles[2:5, 2:40] = 1         # background stroke
    >>> scribbles[22:25, 18:30] = 2      # stroke inside the object
    >>> clf = PixelClassifier(FeatureSpec(sigmas=(1, 2)),
    ...                       estimator=default_estimator(n_estimators=10))
    >>> clf = clf.fit(image, scribbles)
    >>> pred = clf.predict(image)
    >>> pred.dtype, pred[24, 24], pred[44, 44]
    (dtype('uint8'), np.uint8(2), np.uint8(1))
    >>> clf.predict_proba(image).shape
    (48, 48, 2)
    """

    def __init__(self, features=None, estimator=None, *, channel_axis=None,
                 normalize="percentile", random_state=0):
        self.features = features
        self.estimator = estimator
        self.channel_axis = channel_axis
        self.normalize = normalize
        self.random_state = random_state

    # -- parameters ----------------------------------------------------------
    def _resolve_spec(self):
        features = self.features
        if features is None:
            return FeatureSpec()
        if isinstance(features, FeatureSpec):
            return features
        if isinstance(features, str):
            return FeatureSpec.preset(features)
        if isinstance(features, dict):
            return FeatureSpec.from_dict(features)
        raise InvalidParameterError(
            f"features must be a FeatureSpec, a preset name or None, got "
            f"{type(features).__name__}; e.g. features=FeatureSpec(sigmas=(1, 2, 4))."
        )

    def _check_normalize(self):
        if self.normalize not in _NORMALIZE_CHOICES:
            raise InvalidParameterError(
                f"normalize must be one of {_NORMALIZE_CHOICES}, got {self.normalize!r}."
            )

    def _make_estimator(self):
        rs = check_random_state(self.random_state)
        seed = int(rs.randint(np.iinfo(np.int32).max)) if not isinstance(
            self.random_state, numbers.Integral) else int(self.random_state)
        if self.estimator is None:
            return default_estimator(random_state=seed)
        if not (hasattr(self.estimator, "fit") and hasattr(self.estimator, "predict_proba")):
            raise InvalidParameterError(
                f"estimator must be a scikit-learn classifier with fit and predict_proba, "
                f"got {type(self.estimator).__name__}; e.g. "
                "sklearn.ensemble.RandomForestClassifier()."
            )
        est = clone(self.estimator)
        params = est.get_params(deep=False)
        if "random_state" in params and params["random_state"] is None:
            est.set_params(random_state=seed)
        return est

    # -- checks --------------------------------------------------------------
    def _check_image(self, image, *, name="image"):
        image = check_image(image, channel_axis=self.channel_axis, name=name)
        axis = check_channel_axis(self.channel_axis, image.ndim, name=name)
        image_cl, n_channels = to_channel_last(image, axis)
        return image_cl, n_channels

    def _check_fitted(self):
        if not hasattr(self, "estimator_"):
            raise NotFittedError(
                "this PixelClassifier is not fitted yet; call fit(images, labels) first "
                "(or load a trained model with pixelforest.load_model)."
            )

    def __sklearn_is_fitted__(self):
        return hasattr(self, "estimator_")

    # -- training ------------------------------------------------------------
    def fit(self, images, labels):
        """Train on the labelled pixels of one or several images.

        Only the features of labelled pixels are computed and kept: each
        image is cut into pieces of 512 pixels per side (96 in 3D), and only
        the pieces holding a labelled pixel are filtered (each with the
        margin its filters need, so the rows equal those of the whole
        image's feature stack, bit for bit), one piece per thread at a time.
        Memory: the labelled rows plus one piece's features per thread,
        however large or many the images.

        With the default estimator (``estimator=None``), a seeded sample of
        each image's pixels (50 000 over all the images) is computed too:
        after fitting, every split of the forest moves to Otsu's threshold of
        the sampled pixels that reach it, kept inside the gap between the
        labelled values on either side, so every labelled pixel is
        classified as before while the outline follows the valley between
        object and background in the image itself rather than the midpoint
        between scribbles (see :func:`default_estimator`).  The sample adds
        50 000 x ``n_features_in_`` float32 (2 MB for the default features
        of one channel).

        Parameters
        ----------
        images : ndarray or sequence of ndarray
            One image, or a list of images (shapes may differ; all with the
            same number of spatial axes and channels).
        labels : ndarray or sequence of ndarray
            Integer label image(s) of the images' spatial shape:
            0 = unlabelled, 1, 2, ... = classes.

        Returns
        -------
        self : PixelClassifier

        Raises
        ------
        ShapeMismatchError
            Labels and image shapes differ.
        InvalidLabelsError
            Float or negative labels, or fewer than two classes labelled.
        ChannelMismatchError
            Training images with different numbers of channels.
        InvalidImageError
            Bad image (NaN, wrong dimensions) or one not larger than the
            feature halo.
        """
        self._check_normalize()
        spec = self._resolve_spec()
        images, labels = _as_list(images, labels)
        single = len(images) == 1
        estimator = self._make_estimator()
        # pass 1: check every input and count the labelled pixels (cheap), so
        # that pass 2 writes the labelled rows straight into one array
        checked = []
        n_channels = ndim = None
        for i, (image, lab) in enumerate(zip(images, labels)):
            idx = None if single else i
            name = "image" if single else f"images[{i}]"
            image_cl, n_ch = self._check_image(image, name=name)
            spatial = image_cl.shape[:-1]
            if n_channels is None:
                n_channels, ndim = n_ch, len(spatial)
                halo = spec.halo_for(ndim)
            elif n_ch != n_channels:
                raise ChannelMismatchError(
                    f"{name} has {n_ch} channel(s) but the first image has {n_channels}; "
                    "train on images with the same channels (and the same channel_axis)."
                )
            elif len(spatial) != ndim:
                raise InvalidImageError(
                    f"{name} has {len(spatial)} spatial axes but the first image has {ndim}; "
                    "train on all-2D or all-3D images."
                )
            lab = _check_labels(lab, spatial, index=idx)
            check_fits_halo(spatial, halo, name=name)
            n_labelled = int(np.count_nonzero(lab))
            if n_labelled:
                checked.append((image_cl, lab, n_labelled))
        if not checked:
            raise InvalidLabelsError(
                "the labels hold no labelled pixels (all 0); paint at least two classes, "
                "e.g. 1 = background and 2 = foreground."
            )
        classes = np.unique(np.concatenate([np.unique(lab[lab > 0]) for _, lab, _ in checked]))
        if classes.size < 2:
            raise InvalidLabelsError(
                f"the labels hold a single class ({classes[0]}); paint at least two classes, "
                "e.g. 1 = background and 2 = foreground."
            )
        # pass 2: one image at a time, the features of its labelled pixels
        # only (computed on the pieces of the image that hold them, see
        # features.features_at).  The default forest also samples pixels of
        # each whole image (seeded) to place its splits
        total = sum(n for _, _, n in checked)
        n_features = spec.n_features(n_channels, ndim)
        X = np.empty((total, n_features), dtype=np.float32)
        y = np.empty(total, dtype=np.result_type(*[lab.dtype for _, lab, _ in checked]))
        place_splits = self.estimator is None
        if place_splits:
            seed = int(estimator.get_params()["random_state"])
            per_image = -(-_SPLIT_SAMPLE // len(checked))
            unlabelled = []
        pos = 0
        for i, (image_cl, lab, n_labelled) in enumerate(checked):
            labelled = np.flatnonzero(lab)  # row-major: the order of the rows
            index = labelled
            if place_splits:
                rng = np.random.default_rng([seed, i])
                pick = np.sort(rng.choice(lab.size, min(per_image, lab.size), replace=False))
                index = np.union1d(labelled, pick)
            norm = self._normalized(image_cl, self._bounds(image_cl, spec))
            rows = features_at(norm, spec, index)
            del norm
            if place_splits:
                X[pos:pos + n_labelled] = rows[np.searchsorted(index, labelled)]
                unlabelled.append(rows[np.searchsorted(index, pick)])
            else:
                X[pos:pos + n_labelled] = rows
            y[pos:pos + n_labelled] = lab.ravel()[labelled]
            pos += n_labelled
            del rows
        if place_splits:
            # our own forest: grown on every core (each tree's seed is drawn
            # up front, so the trees are the same), then back to n_jobs=1
            estimator.set_params(n_jobs=resolve_n_threads())
            try:
                estimator.fit(X, y)
            finally:
                estimator.set_params(n_jobs=1)
            _place_splits(estimator, X, np.concatenate(unlabelled))
        else:
            estimator.fit(X, y)
        self.spec_ = spec
        self.classes_ = classes
        self.n_channels_ = int(n_channels)
        self.ndim_ = int(ndim)
        self.feature_names_ = spec.feature_names(n_channels, ndim)
        self.n_features_in_ = len(self.feature_names_)
        self.halo_ = tuple(int(h) for h in spec.halo_for(ndim))
        self.estimator_ = estimator
        est_classes = getattr(estimator, "classes_", classes)
        if not np.array_equal(np.asarray(est_classes), classes):
            raise InvalidParameterError(
                "the estimator reports classes different from the labels; use a "
                "scikit-learn classifier that keeps the label values as classes_."
            )
        return self

    # -- private block API ---------------------------------------------------
    def _bounds(self, image_cl, spec=None):
        if self.normalize is None:
            return None
        from pixelforest.preprocess.normalize import percentile_bounds

        low, high = _PERCENTILES if self.normalize == "percentile" else (0.0, 100.0)
        return percentile_bounds(image_cl, low, high, channel_axis=-1)

    def _normalization_bounds(self, image_cl):
        """Per-channel ``(low, high)`` of the whole channel-last image, or None."""
        return self._bounds(np.asarray(image_cl))

    def _normalized(self, block_cl, bounds):
        """The channel-last block as float32, normalized by ``bounds`` (None: as is)."""
        if bounds is None:
            return block_cl.astype(np.float32)
        from pixelforest.preprocess.normalize import apply_bounds

        return apply_bounds(block_cl, bounds, clip=True, channel_axis=-1)

    def _features(self, block_cl, bounds, spec, *, crop=None, n_threads=None):
        norm = self._normalized(block_cl, bounds)
        return features_of_block(norm, spec, crop=crop, n_threads=n_threads)

    def _estimator_proba(self, X, *, n_threads=None):
        """Class probabilities ``(n_pixels, n_classes)`` float32 of feature rows ``X``.

        Forests and trees go through the compiled, exact kernel of
        :func:`pixelforest.forest.inference.forest_predict_proba` (the estimator's own
        ``predict_proba`` within 1e-12); any other estimator through its own
        ``predict_proba``.  ``n_threads`` is the kernel's thread count (None:
        all cores, see :func:`pixelforest._shared.threads.resolve_n_threads`).
        """
        from pixelforest.forest.inference import forest_predict_proba

        out = np.empty((X.shape[0], self.classes_.size), dtype=np.float32)
        for start in range(0, X.shape[0], _ROWS_PER_CALL):
            stop = start + _ROWS_PER_CALL
            out[start:stop] = forest_predict_proba(self.estimator_, X[start:stop],
                                                   n_threads=n_threads)
        return out

    def _proba_from_block(self, block_cl, bounds, *, crop=None, n_threads=None):
        """Probabilities of a raw channel-last block (interior exact beyond ``halo_``).

        With ``crop`` (one slice per spatial axis) only the probabilities of
        ``block_cl[crop]`` are computed and returned (features and forest on
        those pixels only), equal bit for bit to the same pixels of the whole
        block's result.  ``n_threads`` bounds the threads of the features and
        of :meth:`_estimator_proba` (None: all cores).
        """
        self._check_fitted()
        block_cl = np.asarray(block_cl)
        feats = self._features(block_cl, bounds, self.spec_, crop=crop, n_threads=n_threads)
        shape = feats.shape[:-1]
        X = feats.reshape(-1, feats.shape[-1])
        proba = self._estimator_proba(X, n_threads=n_threads)
        del feats, X
        return proba.reshape(shape + (self.classes_.size,))

    # -- prediction ----------------------------------------------------------
    def _predict_tiles(self, image_cl, emit, *, tile=None, n_threads=None):
        """Call ``emit(slices, proba)`` for every tile of a checked channel-last image.

        The image is cut into tiles of :data:`_TILE_2D` (2D) or
        :data:`_TILE_3D` (3D) pixels per side; each is read with a margin of
        ``halo_`` pixels and turned into the probabilities of its own pixels
        by :meth:`_proba_from_block` (features and forest of that tile
        only, so memory stays bounded and a tile's features stay in cache).
        The result equals the whole image's, bit for bit.  Tiles run on one
        thread pool of :func:`pixelforest._shared.threads.resolve_n_threads`
        threads, each tile's forest on one thread; a single tile gives all
        threads to the forest instead.
        """
        import itertools

        from pixelforest._shared.threads import limit_blas_threads, resolve_n_threads, run_on_pool

        bounds = self._normalization_bounds(image_cl)
        spatial = image_cl.shape[:-1]
        if tile is None:
            tile = _TILE_2D if len(spatial) == 2 else _TILE_3D
        tile = (int(tile),) * len(spatial) if np.isscalar(tile) else tuple(tile)
        starts = [range(0, n, t) for n, t in zip(spatial, tile)]
        tiles = list(itertools.product(*starts))
        n_workers = min(resolve_n_threads(n_threads), len(tiles))
        kernel_threads = 1 if n_workers > 1 else resolve_n_threads(n_threads)

        def work(origin):
            block, crop, where = [], [], []
            for lo, t, h, n in zip(origin, tile, self.halo_, spatial):
                hi = min(lo + t, n)
                a, b = max(lo - h, 0), min(hi + h, n)
                block.append(slice(a, b))
                crop.append(slice(lo - a, hi - a))
                where.append(slice(lo, hi))
            proba = self._proba_from_block(image_cl[tuple(block)], bounds, crop=tuple(crop),
                                           n_threads=kernel_threads)
            emit(tuple(where), proba)

        if n_workers == 1:
            run_on_pool(work, tiles, 1)
            return
        # one pool: the tiles' features and forests run single-threaded, and
        # BLAS (used by estimators other than forests) too
        with limit_blas_threads(1):
            run_on_pool(work, tiles, n_workers, name="pf-tile")

    def _check_predict_image(self, image):
        self._check_fitted()
        image_cl, n_channels = self._check_image(image)
        if n_channels != self.n_channels_:
            raise ChannelMismatchError(
                f"the image has {n_channels} channel(s) (channel_axis={self.channel_axis}) "
                f"but the classifier was trained on {self.n_channels_}; predict on images "
                "with the training channels, or retrain."
            )
        spatial = image_cl.shape[:-1]
        if len(spatial) != self.ndim_:
            raise InvalidImageError(
                f"the image has {len(spatial)} spatial axes but the classifier was trained "
                f"on {self.ndim_}-D images; predict on {self.ndim_}-D images or retrain."
            )
        check_fits_halo(spatial, self.halo_)
        return image_cl

    def predict_proba(self, image):
        """Per-pixel class probabilities.

        Parameters
        ----------
        image : ndarray
            An image with the training number of channels and spatial axes.

        Returns
        -------
        proba : ndarray of float32, shape ``(spatial..., n_classes)``
            ``proba[..., k]`` is the probability of ``classes_[k]``.

        Raises
        ------
        ChannelMismatchError
            The image has a different number of channels than in training.
        InvalidImageError
            Bad image, or one not larger than ``halo_``.

        Notes
        -----
        The image is processed in tiles of 512 x 512 pixels (96 per side in
        3D), each read with a margin of ``halo_`` pixels, on every core
        (``PIXELFOREST_NUM_THREADS`` limits them): memory stays bounded by
        the output plus a few tiles' features, and the result is, bit for
        bit, that of the whole image at once.  Random forests and trees are
        evaluated by a compiled kernel that gives the estimator's own
        ``predict_proba``.
        """
        image_cl = self._check_predict_image(image)
        out = np.empty(image_cl.shape[:-1] + (self.classes_.size,), dtype=np.float32)

        def emit(where, proba):
            out[where] = proba

        self._predict_tiles(image_cl, emit)
        return out

    def predict(self, image):
        """Per-pixel class labels (the training class values).

        Parameters
        ----------
        image : ndarray
            An image with the training number of channels and spatial axes.

        Returns
        -------
        labels : ndarray, spatial shape of ``image``
            ``classes_[argmax(predict_proba(image), axis=-1)]``, computed
            tile by tile (see :meth:`predict_proba`) without holding the
            probabilities of the whole image.
        """
        image_cl = self._check_predict_image(image)
        out = np.empty(image_cl.shape[:-1], dtype=self.classes_.dtype)

        def emit(where, proba):
            out[where] = self.classes_[np.argmax(proba, axis=-1)]

        self._predict_tiles(image_cl, emit)
        return out

    # -- inspection ----------------------------------------------------------
    @property
    def feature_importances_(self):
        self._check_fitted()
        importances = getattr(self.estimator_, "feature_importances_", None)
        if importances is None:
            raise AttributeError(
                f"{type(self.estimator_).__name__} has no feature_importances_; use a "
                "tree ensemble (the default random forest) to rank features."
            )
        return np.asarray(importances, dtype=np.float64)

    def feature_importances_by_name(self):
        """Feature importances as ``{name: importance}``, most important first.

        Returns
        -------
        importances : dict of str to float

        Examples
        --------
        >>> import numpy as np
        >>> from pixelforest.features import FeatureSpec
        >>> image = np.zeros((40, 40), np.float32)
        >>> image[10:30, 10:30] = 1
        >>> labels = np.zeros(image.shape, np.uint8)
        >>> labels[2, 2:38], labels[20, 15:25] = 1, 2
        >>> clf = PixelClassifier(FeatureSpec(families=("gaussian",), sigmas=(1,)),
        ...                       estimator=default_estimator(n_estimators=5))
        >>> list(clf.fit(image, labels).feature_importances_by_name())
        ['gaussian(sigma=1)[ch0]']
        """
        imp = self.feature_importances_
        order = np.argsort(-imp, kind="stable")
        return {self.feature_names_[k]: float(imp[k]) for k in order}
