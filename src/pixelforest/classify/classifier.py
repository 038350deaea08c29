"""The :class:`PixelClassifier`: learn per-pixel classes from a few scribbles.

The classifier normalizes each image (per-channel background and object
levels by default),
computes named multiscale features (:mod:`pixelforest.features`) and trains
a scikit-learn classifier (by default a random forest,
:func:`~pixelforest.forest.defaults.default_estimator`) on the labelled
pixels only; the splits of a forest then move into the valley between the
classes in the images' unlabelled pixels
(:mod:`pixelforest.forest.split_placement`).

Fitting leaves a :class:`~pixelforest.classify.pipeline.PredictionPipeline`
in ``clf.pipeline_``: the immutable seam through which in-memory, tiled,
batch and interactive prediction all run.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state

from pixelforest._shared.threads import resolve_n_threads
from pixelforest._shared.validation import (
    check_channel_axis,
    check_image,
    check_same_shape,
    to_channel_last,
)
from pixelforest.classify.pipeline import NORMALIZATIONS, PredictionPipeline
from pixelforest.errors import (
    Cancelled,
    ChannelMismatchError,
    InvalidImageError,
    InvalidLabelsError,
    InvalidParameterError,
    NotFittedError,
)
from pixelforest.features.compute import check_fits_halo, features_at
from pixelforest.features.spec import FeatureSpec
from pixelforest.forest.defaults import default_estimator
from pixelforest.forest.split_placement import SPLIT_SAMPLE, is_forest, place_splits

__all__ = ["PixelClassifier", "TrainingImage", "TrainingSet", "default_estimator"]

_NORMALIZE_CHOICES = tuple(NORMALIZATIONS)

#: Where a forest's splits go between the labelled values on either side.
_SPLIT_PLACEMENTS = ("valley", "midpoint")


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
    normalize : {"robust", "percentile", "minmax", None}, optional
        Per-image, per-channel intensity normalization before features.
        ``"robust"`` maps the median of the background and the median of
        the objects (the two classes of Otsu's threshold, leaving out the
        pixels at the channel's minimum and maximum, so that a border, a
        block of missing data or saturated pixels do not move them) to 0
        and 1 and clips to [-1, 2]
        (:func:`~pixelforest.preprocess.normalize.normalize_robust`): images
        of one experiment come out alike, so a model trained on a few
        transfers to the others.  ``"percentile"`` maps percentiles 1 and
        99.8 to 0 and 1 (the default of models made before ``"robust"``;
        their files keep it), ``"minmax"`` the minimum and maximum, None
        keeps raw intensities.  The measurements that chose the default are
        in ``benchmarks/README.md``.
    split_placement : {"valley", "midpoint"}, optional
        Where the splits of a forest estimator (random forest or extra
        trees, the default or your own) sit inside the gap the labelled
        pixels leave between two classes: ``"valley"`` moves each to Otsu's
        threshold of a sample of the images' unlabelled pixels (the outline
        follows the image; labelled pixels are classified as before),
        ``"midpoint"`` keeps scikit-learn's own.  Other estimators are
        left as they are.
    n_jobs : int or None, optional
        Threads for fitting and prediction; None reads
        ``PIXELFOREST_NUM_THREADS`` and otherwise uses every core, -1 every
        core.  The one budget passed down to features and forest (no pool
        inside a pool).  Results do not depend on it.
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
    pipeline_ : PredictionPipeline
        The fitted, immutable prediction pipeline (normalization, features,
        estimator) that every kind of prediction runs through.
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
                 normalize="robust", split_placement="valley", n_jobs=None,
                 random_state=0):
        self.features = features
        self.estimator = estimator
        self.channel_axis = channel_axis
        self.normalize = normalize
        self.split_placement = split_placement
        self.n_jobs = n_jobs
        self.random_state = random_state

    # -- parameters ----------------------------------------------------------
    def _resolve_spec(self):
        return FeatureSpec.resolve(self.features)

    def _check_params(self):
        if self.normalize not in _NORMALIZE_CHOICES:
            raise InvalidParameterError(
                f"normalize must be one of {_NORMALIZE_CHOICES}, got {self.normalize!r}."
            )
        if self.split_placement not in _SPLIT_PLACEMENTS:
            raise InvalidParameterError(
                f"split_placement must be one of {_SPLIT_PLACEMENTS}, got "
                f"{self.split_placement!r}."
            )
        resolve_n_threads(self.n_jobs)  # refuses a bad value before any work

    def _make_estimator(self):
        """The estimator to fit and the integer seed derived from ``random_state``."""
        rs = check_random_state(self.random_state)
        seed = int(rs.randint(np.iinfo(np.int32).max)) if not isinstance(
            self.random_state, numbers.Integral) else int(self.random_state)
        if self.estimator is None:
            return default_estimator(random_state=seed), seed
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
        return est, seed

    def _check_training_image(self, image, *, name):
        image = check_image(image, channel_axis=self.channel_axis, name=name)
        axis = check_channel_axis(self.channel_axis, image.ndim, name=name)
        return to_channel_last(image, axis)

    def _check_fitted(self):
        if not hasattr(self, "pipeline_"):
            raise NotFittedError(
                "this PixelClassifier is not fitted yet; call fit(images, labels) first "
                "(or load a trained model with pixelforest.load_model)."
            )

    def __sklearn_is_fitted__(self):
        return hasattr(self, "pipeline_")

    # -- training ------------------------------------------------------------
    def fit(self, images, labels):
        """Train on the labelled pixels of one or several images.

        Only the features of labelled pixels are computed and kept: each
        image is cut into blocks of 512 pixels per side (128 in 3D, 96 for
        more than 16 features), and only
        the blocks holding a labelled pixel are filtered (each with the
        margin its filters need, so the rows equal those of the whole
        image's feature stack, bit for bit), one block per thread at a time.
        Memory: the labelled rows plus one block's features per thread,
        however large or many the images.

        With ``split_placement="valley"`` and a forest estimator, a seeded
        sample of each image's pixels (50 000 over all the images) is
        computed too: after fitting, every split of the forest moves to Otsu's threshold of
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
        return TrainingSet(self, images, labels).fit()

    @classmethod
    def from_pipeline(cls, pipeline, **params):
        """A fitted classifier around a fitted :class:`PredictionPipeline` (e.g. a model file's).

        Parameters
        ----------
        pipeline : PredictionPipeline
            Gives the features, normalization, channel axis and the fitted
            estimator; ``estimator`` (the unfitted parameter) becomes a
            clone of it, so that refitting grows the same kind of model.
        **params
            Other constructor parameters (``split_placement``, ``n_jobs``,
            ``random_state``).

        Returns
        -------
        clf : PixelClassifier
            Predicts exactly as ``pipeline`` does.
        """
        if not isinstance(pipeline, PredictionPipeline):
            raise InvalidParameterError(
                f"from_pipeline needs a PredictionPipeline, got {type(pipeline).__name__}; "
                "use clf.pipeline_ of a fitted PixelClassifier."
            )
        clf = cls(features=pipeline.spec, estimator=clone(pipeline.estimator),
                  channel_axis=pipeline.channel_axis, normalize=pipeline.normalize, **params)
        clf._check_params()
        clf._set_fitted_pipeline(pipeline)
        return clf

    def _set_fitted(self, spec, estimator, classes, n_channels, ndim):
        pipeline = PredictionPipeline(spec=spec, normalize=self.normalize,
                                      estimator=estimator, classes=classes,
                                      n_channels=n_channels, ndim=ndim,
                                      channel_axis=self.channel_axis)
        return self._set_fitted_pipeline(pipeline)

    def _set_fitted_pipeline(self, pipeline):
        spec, estimator = pipeline.spec, pipeline.estimator
        classes, n_channels, ndim = pipeline.classes, pipeline.n_channels, pipeline.ndim
        self.spec_ = spec
        self.classes_ = np.asarray(classes)
        self.n_channels_ = int(n_channels)
        self.ndim_ = int(ndim)
        self.feature_names_ = list(pipeline.feature_names)
        self.n_features_in_ = pipeline.n_features
        self.halo_ = pipeline.halo
        self.estimator_ = estimator
        self.pipeline_ = pipeline
        return self

    # -- prediction ----------------------------------------------------------
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
        The image is checked once, then processed by ``pipeline_`` in blocks
        of 512 x 512 pixels (64 x 128 x 128 in 3D, cubes of 96 for more than
        16 features), each read with a margin of
        ``halo_`` pixels, on ``n_jobs`` threads: memory stays bounded by the
        output plus a few blocks' features, and the result is, bit for bit,
        that of the whole image at once.  Random forests and trees are
        evaluated by a compiled kernel that gives the estimator's own
        ``predict_proba``.
        """
        self._check_fitted()
        image_cl = self.pipeline_.check_image(image, channel_axis=self.channel_axis)
        return self.pipeline_.predict_proba(image_cl, n_threads=self.n_jobs)

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
            block by block (see :meth:`predict_proba`) without holding the
            probabilities of the whole image.
        """
        self._check_fitted()
        image_cl = self.pipeline_.check_image(image, channel_axis=self.channel_axis)
        return self.pipeline_.predict(image_cl, n_threads=self.n_jobs)

    def predict_instances(self, image, *, foreground=None, spacing=None, guide="image",
                          threshold=0.5, radius=None, min_size=None, max_size=None,
                          outline=0.4):
        """Instance labels: one integer per object, touching objects split.

        The probability of the foreground class(es) is split into objects by
        :func:`pixelforest.segment.instances.instances_from_probability`
        (seeded watershed on the distance to the background and the image's
        foreground contrast, seeds and sizes scaled by the objects' typical
        radius estimated from the data).

        Parameters
        ----------
        image : ndarray
            An image with the training number of channels and spatial axes.
        foreground : class value or sequence of class values, optional
            The class(es) whose summed probability is the foreground.  None:
            the largest class value (2 with the scribble convention
            1 = background, 2 = objects).
        spacing : float or sequence of float, optional
            Physical pixel size along each spatial axis (e.g. ``(2, 0.5,
            0.5)`` for a z step four times the xy pixel); default 1.
        guide : {"image", "probability"}, optional
            What separates touching objects and draws outlines: the image's
            foreground contrast (and per-object outlines), or the
            probability alone.
        threshold, radius, min_size, max_size, outline
            As in :func:`~pixelforest.segment.instances.instances_from_probability`.

        Returns
        -------
        labels : ndarray of uint32, spatial shape of ``image``
            0 = background, 1..N = objects.

        Raises
        ------
        InvalidParameterError
            ``foreground`` names no class of the model, or ``guide`` is unknown.

        Examples
        --------
        >>> import numpy as np
        >>> from pixelforest.features import FeatureSpec
        >>> yy, xx = np.mgrid[:64, :96]
        >>> image = np.full((64, 96), 10.0, np.float32)
        >>> for cx in (30, 52):                       # two touching nuclei
        ...     image[(yy - 32) ** 2 + (xx - cx) ** 2 < 12 ** 2] = 100
        >>> scribbles = np.zeros(image.shape, np.uint8)
        >>> scribbles[2:5, 5:90] = 1
        >>> scribbles[30:33, 25:35] = 2
        >>> clf = PixelClassifier(FeatureSpec(sigmas=(1, 2)),
        ...                       estimator=default_estimator(n_estimators=10),
        ...                       random_state=0).fit(image, scribbles)
        >>> labels = clf.predict_instances(image)
        >>> labels.dtype, int(labels.max())
        (dtype('uint32'), 2)
        """
        from pixelforest.segment.instances import instances_from_probability

        self._check_fitted()
        if guide not in ("image", "probability"):
            raise InvalidParameterError(
                f"guide must be 'image' or 'probability', got {guide!r}."
            )
        values = [self.classes_[-1]] if foreground is None else np.atleast_1d(foreground)
        columns = []
        for value in values:
            hit = np.flatnonzero(self.classes_ == value)
            if hit.size == 0:
                raise InvalidParameterError(
                    f"foreground={value!r} is not a class of this model "
                    f"(classes {self.classes_.tolist()}); pass one of them."
                )
            columns.append(int(hit[0]))
        proba = self.predict_proba(image)
        prob = np.clip(proba[..., columns].sum(axis=-1), 0, 1)
        del proba
        use_image = guide == "image"
        return instances_from_probability(
            prob, image=image if use_image else None,
            channel_axis=self.channel_axis if use_image else None, spacing=spacing,
            threshold=threshold, radius=radius, min_size=min_size, max_size=max_size,
            outline=outline)

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


def _fit_estimator(estimator, X, y, n_threads):
    """Fit ``estimator``; a forest with ``n_jobs`` left at 1 or None grows on the budget.

    Each tree's seed is drawn before the trees are grown, so the forest does
    not depend on the threads; ``n_jobs`` is set back afterwards, so that
    the fitted forest's own ``predict_proba`` stays single-threaded (trees
    summed in a fixed order).
    """
    if not is_forest(estimator) or estimator.get_params()["n_jobs"] not in (None, 1):
        estimator.fit(X, y)
        return
    before = estimator.get_params()["n_jobs"]
    estimator.set_params(n_jobs=n_threads)
    try:
        estimator.fit(X, y)
    finally:
        estimator.set_params(n_jobs=before)


class TrainingImage(NamedTuple):
    """One checked training image of a :class:`TrainingSet` that holds labelled pixels."""

    #: Where the image stands in the list given to the training set.
    position: int
    #: The image, channels last.
    image_cl: np.ndarray
    #: Its checked labels (0 = unlabelled).
    labels: np.ndarray
    #: Flat indices of its labelled pixels, row-major (the order of the rows).
    labelled: np.ndarray


class TrainingSet:
    """The checked images and scribbles of one fit, and the feature rows it needs.

    :meth:`PixelClassifier.fit` is ``TrainingSet(clf, images, labels).fit()``.
    Building the set checks every input once; :meth:`fit` then gathers the
    feature rows of the labelled pixels (and, for split placement, of a
    seeded sample of each image's pixels), fits the estimator and sets the
    classifier's fitted attributes.  An interactive trainer that keeps the
    rows of pixels it has already featurized passes its own ``rows`` and
    gets, bit for bit, the model ``fit`` would make.

    Parameters
    ----------
    classifier : PixelClassifier
        Gives the settings; :meth:`fit` fits it.
    images, labels : ndarray or sequence of ndarray
        As for :meth:`PixelClassifier.fit`.
    checked : bool, optional
        The images are already checked and channel-last (what
        :meth:`PredictionPipeline.check_image
        <pixelforest.classify.pipeline.PredictionPipeline.check_image>`
        returns, e.g. the arrays an interactive trainer keeps between
        fits): they are used as they are, without checking every pixel
        again.  Their channels and spatial axes and the labels are still
        checked.

    Attributes
    ----------
    items : list of TrainingImage
        The images holding a labelled pixel, in order.
    spec : FeatureSpec
    classes : ndarray
        The labelled class values, sorted.
    n_channels, ndim : int
    pipeline : PredictionPipeline
        Normalization and features of the images (no estimator yet).
    n_threads : int
        The thread budget (the classifier's ``n_jobs``).
    sample_size : int
        Pixels sampled per image for split placement (0: no placement).

    Examples
    --------
    >>> import numpy as np
    >>> from pixelforest.features import FeatureSpec
    >>> image = np.zeros((40, 40), np.float32); image[10:30, 10:30] = 1
    >>> labels = np.zeros(image.shape, np.uint8)
    >>> labels[2, 2:38], labels[20, 15:25] = 1, 2
    >>> clf = PixelClassifier(FeatureSpec(sigmas=(1,)))
    >>> ts = TrainingSet(clf, image, labels)
    >>> len(ts.items), ts.classes.tolist(), int(ts.items[0].labelled.size)
    (1, [1, 2], 46)
    >>> ts.fit() is clf
    True
    """

    def __init__(self, classifier, images, labels, *, checked=False):
        clf = classifier
        clf._check_params()
        spec = clf._resolve_spec()
        images, labels = _as_list(images, labels)
        single = len(images) == 1
        self.classifier = clf
        self.n_threads = resolve_n_threads(clf.n_jobs)
        self._estimator, self.seed = clf._make_estimator()
        items = []
        n_channels = ndim = None
        for i, (image, lab) in enumerate(zip(images, labels)):
            idx = None if single else i
            name = "image" if single else f"images[{i}]"
            if checked:
                image_cl, n_ch = image, image.shape[-1]
            else:
                image_cl, n_ch = clf._check_training_image(image, name=name)
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
            labelled = _labelled_index(lab)
            if labelled.size:
                items.append(TrainingImage(i, image_cl, lab, labelled))
        if not items:
            raise InvalidLabelsError(
                "the labels hold no labelled pixels (all 0); paint at least two classes, "
                "e.g. 1 = background and 2 = foreground."
            )
        classes = np.unique(np.concatenate([np.unique(it.labels.ravel()[it.labelled])
                                            for it in items]))
        if classes.size < 2:
            raise InvalidLabelsError(
                f"the labels hold a single class ({classes[0]}); paint at least two classes, "
                "e.g. 1 = background and 2 = foreground."
            )
        self.items, self.spec, self.classes = items, spec, classes
        self.n_channels, self.ndim = int(n_channels), int(ndim)
        # the normalization and features of training are those of prediction:
        # the same pipeline, still without an estimator
        self.pipeline = PredictionPipeline(spec=spec, normalize=clf.normalize, estimator=None,
                                           classes=classes, n_channels=n_channels, ndim=ndim,
                                           channel_axis=clf.channel_axis)
        move = clf.split_placement == "valley" and is_forest(self._estimator)
        self.sample_size = -(-SPLIT_SAMPLE // len(items)) if move else 0

    def sample_index(self, k):
        """Sorted flat indices of the seeded pixel sample of item ``k`` (None: no placement)."""
        if not self.sample_size:
            return None
        size = self.items[k].labels.size
        rng = np.random.default_rng([self.seed, k])
        return np.sort(rng.choice(size, min(self.sample_size, size), replace=False))

    def rows(self, k, labelled, sample):
        """Feature rows of item ``k`` at ``labelled`` and ``sample`` (flat indices).

        Both sets are computed in one pass over the blocks of the image that
        hold them (:func:`pixelforest.features.compute.features_at`).
        Returns ``(labelled rows, sample rows or None)``.
        """
        image_cl = self.items[k].image_cl
        pipe = self.pipeline
        norm = pipe.normalized(image_cl, pipe.statistics(image_cl))
        if sample is None:
            return features_at(norm, self.spec, labelled, n_threads=self.n_threads), None
        index = np.union1d(labelled, sample)
        rows = features_at(norm, self.spec, index, n_threads=self.n_threads)
        return (rows[np.searchsorted(index, labelled)], rows[np.searchsorted(index, sample)])

    def fit(self, *, rows=None, cancelled=None):
        """Fit the classifier on this set and return it.

        Parameters
        ----------
        rows : callable, optional
            ``rows(k, labelled, sample)`` returning what :meth:`rows`
            returns (the default), e.g. from a cache of rows already made.
        cancelled : callable, optional
            Called between images and before fitting; when it returns True,
            :class:`~pixelforest.errors.Cancelled` is raised and the
            classifier is left as it was.

        Returns
        -------
        classifier : PixelClassifier
            The fitted classifier (the one given to the set).
        """
        rows = self.rows if rows is None else rows
        total = sum(it.labelled.size for it in self.items)
        X = np.empty((total, self.pipeline.n_features), dtype=np.float32)
        y = np.empty(total, dtype=np.result_type(*[it.labels.dtype for it in self.items]))
        unlabelled, pos = [], 0
        for k, item in enumerate(self.items):
            _check_cancelled(cancelled)
            n = item.labelled.size
            X[pos:pos + n], sample_rows = rows(k, item.labelled, self.sample_index(k))
            y[pos:pos + n] = item.labels.ravel()[item.labelled]
            if sample_rows is not None:
                unlabelled.append(sample_rows)
            pos += n
        _check_cancelled(cancelled)
        estimator = clone(self._estimator)
        _fit_estimator(estimator, X, y, self.n_threads)
        if self.sample_size:
            place_splits(estimator, X, np.concatenate(unlabelled))
        est_classes = getattr(estimator, "classes_", self.classes)
        if not np.array_equal(np.asarray(est_classes), self.classes):
            raise InvalidParameterError(
                "the estimator reports classes different from the labels; use a "
                "scikit-learn classifier that keeps the label values as classes_."
            )
        return self.classifier._set_fitted(self.spec, estimator, self.classes,
                                           self.n_channels, self.ndim)


def _labelled_index(labels):
    """``np.flatnonzero(labels)``, reading 8 bytes at a time where nothing is labelled.

    Scribbles cover a tiny part of an image: the pixels are tested by
    machine words first and only the nonzero words' pixels one by one
    (the same sorted indices, several times faster than testing every
    pixel on a large image, where an interactive trainer asks each stroke).
    """
    size = labels.dtype.itemsize
    if not labels.flags.c_contiguous or size >= 8 or labels.nbytes % 8 or not labels.size:
        return np.flatnonzero(labels)
    flat = labels.reshape(-1)
    per = 8 // size
    words = np.flatnonzero(flat.view(np.uint64))
    if words.size * per > flat.size // 8:     # densely labelled: test every pixel
        return np.flatnonzero(labels)
    candidates = (words[:, None] * per + np.arange(per)).ravel()
    return candidates[flat[candidates] != 0]


def _check_cancelled(cancelled):
    if cancelled is not None and cancelled():
        raise Cancelled("training was cancelled; nothing was fitted.")
