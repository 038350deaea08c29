"""Classify objects: learn classes of whole objects from a few labelled ones.

A pixel classifier says which pixels are nuclei; a biologist then wants to
sort the nuclei: clumps from single nuclei, cut-off ones at the border,
mitotic or large ones from the others.  :class:`ObjectClassifier` learns
that from a few objects the user labelled, on the columns of
:func:`pixelforest.objects.measure.measure` (one row per object: size,
shape, intensities, whether it touches the border), with a random forest.

The user labels objects in any of these *annotation* forms
(:func:`classes_from_annotations` turns each into one class per object):

* a mapping ``{object label: class}`` (e.g. objects clicked in napari);
* a class image of the labels' shape, painted over objects (napari's Labels
  layer; 0 = not annotated): each object takes the class painted on most of
  its annotated pixels;
* points and their classes, ``(points, classes)``: an ``(N, ndim)`` array of
  pixel coordinates (napari's Points layer) and one class per point; each
  point labels the object under it.

Classes are numbers or strings.  The same classifier works from tables of
measurements (:meth:`ObjectClassifier.fit_table`,
:meth:`ObjectClassifier.predict_table`), so an interactive tool that
already measured the objects does not measure them again.  Model files:
:func:`pixelforest.io.model_file.save_object_model` and
:func:`~pixelforest.io.model_file.load_object_model`, with the checks of
pixel models.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state

from pixelforest._shared.threads import resolve_n_threads
from pixelforest.errors import (
    InvalidLabelsError,
    InvalidParameterError,
    NotFittedError,
    ShapeMismatchError,
)

__all__ = ["ObjectClassifier", "add_relative_size", "classes_from_annotations",
           "default_features", "default_object_estimator", "SHAPE_FEATURES",
           "INTENSITY_STATISTICS", "MISSING_VALUE"]

#: Size, shape and border columns used by default, by number of spatial
#: dimensions: sizes in physical units (like the axis lengths), so images of
#: different pixel sizes agree, and the size relative to the image's median
#: object (:func:`add_relative_size`), which holds across magnifications.
SHAPE_FEATURES = {
    2: ("area_physical", "area_relative", "axis_major_length", "axis_minor_length",
        "eccentricity", "solidity", "touches_border"),
    3: ("volume_physical", "volume_relative", "axis_major_length", "axis_minor_length",
        "solidity", "touches_border"),
}

#: Per-channel intensity statistics used by default: the columns
#: ``<statistic>_<channel>`` of :func:`~pixelforest.objects.measure.measure`.
INTENSITY_STATISTICS = ("mean", "min", "max", "sum")

#: The value a missing measurement (NaN) reads as.  ``measure`` leaves only the
#: solidity of a 3D object too flat for a convex hull missing; solidity lies in
#: (0, 1], so this sits below every real value and a tree splits it off with a
#: finite threshold (a split on NaN itself has an infinite threshold, which
#: model files refuse).
MISSING_VALUE = -1.0

_MISSING_NOTE = "(None or NaN: not labelled)"


def default_object_estimator(*, n_estimators=200, random_state=None):
    """The estimator :class:`ObjectClassifier` uses when none is given.

    A :class:`~sklearn.ensemble.RandomForestClassifier` with balanced class
    weights (users label a few objects of a rare class next to many common
    ones) and ``n_jobs=1`` (:class:`ObjectClassifier` grows the trees on its
    own thread budget and sets it back, so predictions sum the trees in a
    fixed order).  A few hundred labelled objects at most make the forest
    cheap, so it has many trees.

    Parameters
    ----------
    n_estimators : int, optional
        Number of trees.
    random_state : int or None, optional
        Seed; None lets :class:`ObjectClassifier` set it from its own.

    Returns
    -------
    estimator : RandomForestClassifier

    Examples
    --------
    >>> default_object_estimator().n_estimators
    200
    """
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=n_estimators, max_features="sqrt",
                                  class_weight="balanced", n_jobs=1,
                                  random_state=random_state)


def add_relative_size(table, *, by="image"):
    """Add ``area_relative`` (``volume_relative`` in 3D): size / the image's median size.

    An object twice the size of its image's typical object reads 2 whatever
    the magnification, so a model learned on one image transfers to images
    of other pixel sizes or nuclei sizes; absolute sizes do not.

    Parameters
    ----------
    table : pandas.DataFrame
        A :func:`~pixelforest.objects.measure.measure` table, or several
        concatenated with a column ``by`` naming each row's image.
    by : str, optional
        The column that tells the images apart; without it the table is one
        image.

    Returns
    -------
    table : pandas.DataFrame
        A copy with the column added (or replaced); a table without an
        ``area``/``volume`` column comes back unchanged.

    Examples
    --------
    >>> import pandas as pd
    >>> add_relative_size(pd.DataFrame({"area": [10, 20, 40]}))["area_relative"].tolist()
    [0.5, 1.0, 2.0]
    """
    size = "volume" if "volume" in table.columns else "area"
    if size not in table.columns:
        return table
    table = table.copy()
    sizes = table[size].astype(np.float64)
    median = sizes.groupby(table[by]).transform("median") if by in table.columns \
        else sizes.median()
    table[f"{size}_relative"] = sizes / median
    return table


def default_features(columns):
    """The default feature columns among a measurement table's ``columns``.

    The size, shape and border columns of :data:`SHAPE_FEATURES` present
    (2D or 3D, told apart by an ``area`` or ``volume`` column), then every intensity
    column ``mean_*``, ``min_*``, ``max_*`` and ``sum_*``, in table order.
    Position (centroid, bounding box) and the label are left out: where an
    object lies says nothing about what it is.

    Parameters
    ----------
    columns : sequence of str
        Column names of a :func:`~pixelforest.objects.measure.measure` table.

    Returns
    -------
    names : list of str

    Examples
    --------
    >>> import numpy as np
    >>> from pixelforest.objects.measure import measure
    >>> labels = np.zeros((8, 8), np.uint8); labels[2:5, 2:6] = 1
    >>> table = add_relative_size(measure(labels, labels * 10.0))
    >>> default_features(table.columns)  # doctest: +NORMALIZE_WHITESPACE
    ['area_physical', 'area_relative', 'axis_major_length', 'axis_minor_length',
     'eccentricity', 'solidity', 'touches_border', 'mean_ch0', 'min_ch0', 'max_ch0',
     'sum_ch0']
    """
    columns = [str(c) for c in columns]
    ndim = 3 if "volume" in columns else 2
    shape = [c for c in SHAPE_FEATURES[ndim] if c in columns]
    prefixes = tuple(f"{s}_" for s in INTENSITY_STATISTICS)
    intensity = [c for c in columns if c.startswith(prefixes)]
    return shape + intensity


# -- annotations -> one class per object ------------------------------------

def _is_missing(value):
    return value is None or (isinstance(value, (float, np.floating)) and np.isnan(value))


def _class_value(value, where):
    """A class as a plain Python value (str, int, float or bool), checked."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (str, bool, numbers.Integral)):
        return value if isinstance(value, (str, bool)) else int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not np.isfinite(value):
            raise InvalidLabelsError(f"{where}: class {value!r} is not a finite number; "
                                     "use numbers or strings as classes.")
        return int(value) if value.is_integer() else value
    raise InvalidLabelsError(
        f"{where}: class {value!r} is a {type(value).__name__}; classes are numbers or "
        "strings (e.g. 1/2 or 'single'/'clump')."
    )


def _check_class_kinds(values, where):
    """Refuse a mix of string and numeric classes (NumPy would turn them all into text)."""
    kinds = {isinstance(v, str) for v in values}
    if len(kinds) > 1:
        shown = sorted(map(repr, values))[:6]
        raise InvalidLabelsError(
            f"{where}: classes mix strings and numbers ({', '.join(shown)}); use one kind, "
            "e.g. all strings."
        )


def _check_labels(labels, name="labels"):
    """An instance label image as an integer array (the rules of ``measure``)."""
    from pixelforest._shared.validation import check_image

    arr = check_image(labels, name=name)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.array_equal(arr, np.round(arr)):
            raise InvalidLabelsError(
                f"{name} hold non-integer values; pass an instance label image (0 = "
                "background, 1..N = objects), e.g. from predict_instances."
            )
        arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise InvalidLabelsError(f"{name} hold negative values; object labels are >= 0 "
                                 "with 0 as background.")
    return arr


def _object_labels(labels):
    arr = _check_labels(labels)
    return arr, np.unique(arr[arr > 0])


def _from_mapping(mapping, present, where):
    items = list(mapping.items())
    classes = {}
    unknown = []
    for key, value in items:
        if _is_missing(value):
            continue
        try:
            label = int(key)
        except (TypeError, ValueError):
            raise InvalidLabelsError(
                f"{where}: {key!r} is not an object label; the keys of the mapping are the "
                "objects' values in the label image (1, 2, ...)."
            ) from None
        if label != key and not (isinstance(key, str) and str(label) == key.strip()):
            raise InvalidLabelsError(f"{where}: object label {key!r} is not an integer.")
        if label not in present:
            unknown.append(label)
            continue
        classes[label] = _class_value(value, f"{where}, object {label}")
    if unknown:
        shown = ", ".join(map(str, sorted(unknown)[:8])) + (", ..." if len(unknown) > 8 else "")
        raise InvalidLabelsError(
            f"{where}: {len(unknown)} annotated label(s) are not objects of the label image "
            f"({shown}); annotate labels that occur in it (0 is background), with the label "
            "image the annotations were made on."
        )
    return classes


def _from_image(annotation, labels, where):
    from pixelforest._shared.validation import check_image

    ann = check_image(annotation, name=where)
    if ann.shape != labels.shape:
        raise ShapeMismatchError(
            f"{where} has shape {ann.shape} but the labels have shape {labels.shape}; paint "
            "the classes on an image of the label image's shape (0 = not annotated)."
        )
    if np.issubdtype(ann.dtype, np.floating):
        if not np.array_equal(ann, np.round(ann)):
            raise InvalidLabelsError(f"{where} holds non-integer values; paint classes as "
                                     "integers 1, 2, ... (0 = not annotated).")
        ann = ann.astype(np.int64)
    if ann.size and ann.min() < 0:
        raise InvalidLabelsError(f"{where} holds negative values; paint classes as 1, 2, ... "
                                 "(0 = not annotated).")
    inside = (ann > 0) & (labels > 0)
    if (ann > 0).any() and not inside.any():
        raise InvalidLabelsError(
            f"{where}: no annotated pixel lies on an object; paint the classes over the "
            "objects of the label image."
        )
    pairs, counts = np.unique(np.stack([labels[inside].astype(np.int64),
                                        ann[inside].astype(np.int64)]),
                              axis=1, return_counts=True)
    # per object, the class painted on most of its pixels; a tie goes to the
    # smaller class value (np.unique sorted the pairs by label, then class)
    order = np.lexsort((pairs[1], -counts, pairs[0]))
    pairs = pairs[:, order]
    first = np.ones(pairs.shape[1], dtype=bool)
    first[1:] = pairs[0, 1:] != pairs[0, :-1]
    return {int(lab): int(cls) for lab, cls in zip(pairs[0, first], pairs[1, first])}


def _from_points(points, values, labels, where):
    try:
        points = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidLabelsError(f"{where}: the points are not an (N, {labels.ndim}) array "
                                 "of coordinates.") from None
    values = list(values)
    if points.ndim != 2 or points.shape[1] != labels.ndim or len(values) != len(points):
        raise InvalidLabelsError(
            f"{where}: points must be an (N, {labels.ndim}) array of pixel coordinates with "
            f"one class each, got shape {points.shape} and {len(values)} classes."
        )
    if not np.isfinite(points).all():
        raise InvalidLabelsError(f"{where}: some point coordinates are not finite.")
    index = np.round(points).astype(np.int64)
    outside = ((index < 0) | (index >= np.asarray(labels.shape))).any(axis=1)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise InvalidLabelsError(f"{where}: point {i} at {points[i].tolist()} lies outside "
                                 f"the image of shape {labels.shape}.")
    hit = labels[tuple(index.T)]
    classes = {}
    for i, (label, value) in enumerate(zip(hit.tolist(), values)):
        if _is_missing(value):
            continue
        if label == 0:
            raise InvalidLabelsError(
                f"{where}: point {i} at {points[i].tolist()} lies on the background, not on "
                "an object; place each point inside the object it labels."
            )
        value = _class_value(value, f"{where}, point {i}")
        if classes.get(label, value) != value:
            raise InvalidLabelsError(
                f"{where}: object {label} got two classes ({classes[label]!r} and "
                f"{value!r}) from its points; give each object one class."
            )
        classes[label] = value
    return classes


def classes_from_annotations(labels, annotations, *, name="annotations"):
    """One class per annotated object, from any annotation form.

    Parameters
    ----------
    labels : array_like of int
        The instance label image the annotations refer to (0 = background).
    annotations : mapping, array_like or tuple
        ``{object label: class}`` (None or NaN: not labelled); a class image
        of the labels' shape painted over objects (0 = not annotated), each
        object taking the class on most of its annotated pixels (a tie goes
        to the smaller class value); or ``(points, classes)``, an
        ``(N, ndim)`` array of pixel coordinates and one class per point,
        each labelling the object under it.
    name : str, optional
        What to call the annotations in messages (e.g. a file name).

    Returns
    -------
    classes : pandas.Series
        Indexed by object label (sorted), one class each; only annotated
        objects.

    Raises
    ------
    InvalidLabelsError
        Labels that are not objects of the image, points on the background,
        an object given two classes by its points, classes that are neither
        numbers nor strings or mix the two, negative or non-integer painted
        values.
    ShapeMismatchError
        A class image of another shape than the labels.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((6, 6), np.uint8)
    >>> labels[0:2, 0:2], labels[3:6, 3:6] = 1, 2
    >>> paint = np.zeros_like(labels); paint[4, 3:6] = [3, 3, 1]
    >>> classes_from_annotations(labels, paint).to_dict()
    {2: 3}
    >>> classes_from_annotations(labels, {1: "single", 2: "clump"}).to_dict()
    {1: 'single', 2: 'clump'}
    >>> classes_from_annotations(labels, ([[0.2, 1.0]], ["single"])).to_dict()
    {1: 'single'}
    """
    import pandas as pd

    labels, present = _object_labels(labels)
    present = set(present.tolist())
    if hasattr(annotations, "items") and not isinstance(annotations, np.ndarray):
        if isinstance(annotations, pd.DataFrame):
            raise InvalidParameterError(
                f"{name}: a table is not an annotation; pass a mapping {{label: class}} (e.g. "
                "dict(zip(table['label'], table['class']))) or use fit_table."
            )
        classes = _from_mapping(annotations, present, name)
    elif (isinstance(annotations, tuple) and len(annotations) == 2
          and np.ndim(annotations[0]) == 2 and np.ndim(annotations[1]) == 1):
        classes = _from_points(annotations[0], annotations[1], labels, name)
    elif isinstance(annotations, (np.ndarray, list, tuple)) or hasattr(annotations,
                                                                        "__array__"):
        classes = _from_image(annotations, labels, name)
    else:
        raise InvalidParameterError(
            f"{name} is a {type(annotations).__name__}; pass a mapping {{object label: "
            "class}, a class image of the labels' shape or (points, classes)."
        )
    _check_class_kinds(list(classes.values()), name)
    keys = sorted(classes)
    series = pd.Series([classes[k] for k in keys], index=pd.Index(keys, name="label"),
                       name="class", dtype=object)
    return series


# -- the classifier ------------------------------------------------------------

class ObjectClassifier(BaseEstimator):
    """Classify the objects of instance label images from a few labelled objects.

    Each object is described by columns of
    :func:`~pixelforest.objects.measure.measure` (size, shape, border,
    intensities; :meth:`measure` adds the size relative to the image's
    median object) and classified by a random forest trained on the objects
    the user labelled (see :func:`classes_from_annotations` for the forms
    an annotation takes).

    Parameters
    ----------
    features : sequence of str, optional
        The measurement columns to learn from; None takes
        :func:`default_features` of the training table (physical size, size
        relative to the image's median object, axis lengths, eccentricity,
        solidity, touches_border and the mean, min, max and sum intensity of
        every channel).  Absolute sizes and intensities tie a model to one
        magnification and exposure: to apply it to other kinds of images,
        choose scale-free columns (e.g. ``["area_relative", "solidity",
        "eccentricity"]``).
    estimator : scikit-learn classifier, optional
        A classifier with ``fit`` and ``predict_proba``, cloned before
        fitting; default :func:`default_object_estimator`.
    channel_axis : int or None, optional
        Axis of the intensity images that holds channels; None for one
        channel.
    random_state : int, RandomState or None, optional
        Seed of the estimator (when its own ``random_state`` is None); an
        int gives reproducible models.
    n_jobs : int or None, optional
        Threads for fitting the forest; None reads
        ``PIXELFOREST_NUM_THREADS`` and otherwise uses every core, -1 every
        core.  Results do not depend on it.

    Notes
    -----
    A missing measurement (NaN, e.g. the solidity of a flat 3D object) is
    read as :data:`MISSING_VALUE`.

    Attributes
    ----------
    classes_ : ndarray
        The classes, sorted (numbers or strings).
    feature_names_in_ : ndarray of str
        The measurement columns the model uses, in order.
    n_features_in_ : int
        Their number.
    estimator_ : classifier
        The fitted estimator; it predicts the *index* of a class in
        ``classes_`` (so that string classes never reach the model file).
    image_values_ : ndarray
        The value of each class in :meth:`predict_image`: the classes
        themselves when they are all positive integers, else 1, 2, ... in
        the order of ``classes_``.
    class_counts_ : ndarray of int
        Number of labelled objects of each class the model was trained on.
    n_objects_ : int
        Their total.

    Examples
    --------
    Small and large discs, two of each labelled:

    >>> import numpy as np
    >>> from skimage.draw import disk
    >>> labels = np.zeros((60, 60), np.uint16)
    >>> centres = [(10, 10), (10, 40), (30, 25), (48, 12), (48, 45), (30, 50)]
    >>> for i, ((r, c), radius) in enumerate(zip(centres, [3, 7, 3, 7, 3, 7])):
    ...     labels[disk((r, c), radius)] = i + 1
    >>> image = (labels > 0).astype(np.float32)
    >>> clf = ObjectClassifier(features=["area_physical"])
    >>> clf = clf.fit(labels, image, {1: "small", 2: "large", 3: "small", 4: "large"})
    >>> clf.predict(labels, image).tolist()
    ['small', 'large', 'small', 'large', 'small', 'large']
    >>> clf.predict_image(labels, image)[30, 50], clf.classes_.tolist()
    (np.uint8(1), ['large', 'small'])
    """

    def __init__(self, features=None, estimator=None, *, channel_axis=None, random_state=0,
                 n_jobs=None):
        self.features = features
        self.estimator = estimator
        self.channel_axis = channel_axis
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- parameters ------------------------------------------------------------
    def _check_params(self):
        if self.features is not None:
            if isinstance(self.features, str) or not all(
                    isinstance(f, str) for f in self.features):
                raise InvalidParameterError(
                    f"features must be a list of measurement column names (e.g. "
                    f"['area_physical', 'solidity']) or None, got {self.features!r}."
                )
            features = list(self.features)
            if not features or len(set(features)) != len(features):
                raise InvalidParameterError(
                    f"features must name at least one column, each once, got {features!r}."
                )
        if self.estimator is not None and not (hasattr(self.estimator, "fit")
                                               and hasattr(self.estimator, "predict_proba")):
            raise InvalidParameterError(
                f"estimator must be a scikit-learn classifier with fit and predict_proba, got "
                f"{type(self.estimator).__name__}; e.g. "
                "sklearn.ensemble.RandomForestClassifier()."
            )
        if self.channel_axis is not None and (isinstance(self.channel_axis, bool) or
                                              not isinstance(self.channel_axis,
                                                             numbers.Integral)):
            raise InvalidParameterError(
                f"channel_axis must be an integer or None, got {self.channel_axis!r}."
            )
        return resolve_n_threads(self.n_jobs)

    def _make_estimator(self):
        rs = check_random_state(self.random_state)
        seed = (int(self.random_state) if isinstance(self.random_state, numbers.Integral)
                else int(rs.randint(np.iinfo(np.int32).max)))
        if self.estimator is None:
            return default_object_estimator(random_state=seed)
        est = clone(self.estimator)
        params = est.get_params(deep=False)
        if "random_state" in params and params["random_state"] is None:
            est.set_params(random_state=seed)
        return est

    def _check_fitted(self):
        if not hasattr(self, "estimator_"):
            raise NotFittedError(
                "this ObjectClassifier is not fitted yet; call fit (or fit_table) with a few "
                "labelled objects first, or load a model with load_object_model."
            )

    # -- measuring -------------------------------------------------------------
    def _measure(self, labels, image, spacing, channel_names, name="labels"):
        from pixelforest.objects.measure import measure

        try:
            table = measure(labels, image, spacing=spacing, channel_axis=self.channel_axis,
                            channel_names=channel_names)
        except (InvalidLabelsError, ShapeMismatchError) as exc:
            if name == "labels":
                raise
            raise type(exc)(f"{name}: {exc}") from None
        return add_relative_size(table)

    def _with_relative_size(self, table):
        """A table given by the caller, with the relative size added when it lacks it."""
        size = "volume" if "volume" in table.columns else "area"
        if f"{size}_relative" in table.columns:
            return table
        return add_relative_size(table)

    # -- fitting ---------------------------------------------------------------
    def fit(self, labels, image, annotations, *, spacing=None, channel_names=None):
        """Learn object classes from annotated objects of one or several images.

        Parameters
        ----------
        labels : array_like of int, or list of them
            Instance label image(s) (0 = background).
        image : array_like, list of them, or None
            The intensity image(s) the objects were segmented from, same
            spatial shape (channels along ``channel_axis``); None (or a list
            of None) learns from size and shape only.
        annotations : mapping, array_like or tuple, or list of them
            One per label image, in any form of
            :func:`classes_from_annotations`.
        spacing : float or sequence of float, optional
            Physical pixel size (all images), as in
            :func:`~pixelforest.objects.measure.measure`.
        channel_names : sequence of str, optional
            Names of the channels in the intensity columns (default ``ch0``,
            ``ch1``, ...); give the same names when predicting.

        Returns
        -------
        self : ObjectClassifier

        Raises
        ------
        InvalidLabelsError
            Bad labels or annotations (see :func:`classes_from_annotations`),
            or fewer than two classes among the labelled objects.
        InvalidParameterError
            Lists of different lengths, bad parameters.
        ShapeMismatchError
            An image or class image of another shape than its labels.
        """
        import pandas as pd

        if isinstance(labels, (list, tuple)):
            n = len(labels)
            images = [None] * n if image is None else image
            anns = annotations
            if not isinstance(images, (list, tuple)) or not isinstance(anns, (list, tuple)) \
                    or len(images) != n or len(anns) != n:
                raise InvalidParameterError(
                    f"got a list of {n} label images: give a list of {n} images (or None) "
                    f"and a list of {n} annotations, in the same order."
                )
            if n == 0:
                raise InvalidParameterError("fit needs at least one label image.")
            many = True
        else:
            images, anns, many = [image], [annotations], False
        self._check_params()
        tables, classes = [], []
        for i, (lab, img, ann) in enumerate(zip(labels if many else [labels], images, anns)):
            where = f"label image {i}" if many else "labels"
            table = self._measure(lab, img, spacing, channel_names, where)
            found = classes_from_annotations(
                lab, ann, name=f"annotations {i}" if many else "annotations")
            tables.append(table)
            classes.append(table["label"].map(found.to_dict()).astype(object))
        keep = [t.columns.tolist() for t in tables]
        if any(k != keep[0] for k in keep):
            raise InvalidParameterError(
                "the training images give different measurement columns (different numbers "
                "of channels or dimensions, or some without an image); train on images of "
                "one kind."
            )
        table = pd.concat(tables, ignore_index=True)
        column = pd.concat(classes, ignore_index=True)
        return self.fit_table(table, column)

    def fit_table(self, table, classes):
        """Learn object classes from a table of measurements.

        Parameters
        ----------
        table : pandas.DataFrame
            One row per object, with the feature columns (e.g. from
            :meth:`measure` or :func:`~pixelforest.objects.measure.measure`,
            or several such tables concatenated).  A table without the
            relative size gets it from :func:`add_relative_size`: give a
            table of several images an ``image`` column, so that each image
            has its own median.
        classes : sequence, pandas.Series or mapping
            The class of each row (a sequence of the table's length, or a
            Series aligned with the table's index), or a mapping
            ``{object label: class}`` read through the ``label`` column (a
            table of one image).  None or NaN: the row is not labelled and
            not used.

        Returns
        -------
        self : ObjectClassifier

        Raises
        ------
        InvalidParameterError
            Feature columns missing from the table, or ``classes`` of another
            length.
        InvalidLabelsError
            Fewer than two classes among the labelled rows, classes mixing
            strings and numbers, non-finite feature values.

        Examples
        --------
        >>> import pandas as pd
        >>> table = pd.DataFrame({"label": [1, 2, 3, 4], "area_physical": [10, 90, 12, 80]})
        >>> clf = ObjectClassifier(features=["area_physical"]).fit_table(
        ...     table, [1, 2, None, None])
        >>> clf.predict_table(table).tolist()
        [1, 2, 1, 2]
        """
        import pandas as pd

        n_threads = self._check_params()
        if not isinstance(table, pd.DataFrame):
            raise InvalidParameterError(
                f"table must be a pandas DataFrame of measurements (e.g. from "
                f"pixelforest.objects.measure), got {type(table).__name__}."
            )
        table = self._with_relative_size(table)
        features = (default_features(table.columns) if self.features is None
                    else list(self.features))
        if not features:
            raise InvalidParameterError(
                "the table has none of the default feature columns; pass features=[...] "
                "naming its columns."
            )
        X = self._feature_matrix(table, features)
        values = self._row_classes(table, classes)
        labelled = np.array([not _is_missing(v) for v in values], dtype=bool)
        picked = [_class_value(v, f"row {i}") for i, v in enumerate(values) if labelled[i]]
        _check_class_kinds(picked, "classes")
        distinct = sorted(set(picked))
        if len(distinct) < 2:
            found = f"only the class {distinct[0]!r}" if distinct else "no labelled object"
            raise InvalidLabelsError(
                f"the annotations hold {found}; label objects of at least two classes (e.g. "
                "a few clumps and a few single nuclei)."
            )
        classes_ = np.asarray(distinct)
        y = np.searchsorted(classes_, np.asarray(picked, dtype=classes_.dtype))
        est = self._make_estimator()
        _fit_on_budget(est, X[labelled], y, n_threads)
        self.estimator_ = est
        self.classes_ = classes_
        self.feature_names_in_ = np.asarray(features, dtype=object)
        self.n_features_in_ = len(features)
        self.class_counts_ = np.bincount(y, minlength=len(classes_)).astype(np.int64)
        self.n_objects_ = int(labelled.sum())
        return self

    @property
    def image_values_(self):
        # documented under Attributes (a docstring here would describe it twice)
        self._check_fitted()
        classes = np.asarray(self.classes_)
        if classes.dtype.kind in "iu" and classes.min() > 0:
            return classes.astype(np.int64)
        return np.arange(1, len(classes) + 1, dtype=np.int64)

    def _row_classes(self, table, classes):
        import pandas as pd

        if isinstance(classes, pd.Series):
            if not classes.index.equals(table.index):
                if len(classes) != len(table) or not classes.index.isin(table.index).all():
                    raise InvalidParameterError(
                        "classes is a Series whose index is not the table's; pass one class "
                        "per row (aligned with the table's index) " + _MISSING_NOTE + "."
                    )
                classes = classes.reindex(table.index)
            return list(classes.astype(object))
        if isinstance(classes, Mapping):
            if "label" not in table:
                raise InvalidParameterError(
                    "classes is a mapping {label: class} but the table has no 'label' column; "
                    "pass one class per row instead."
                )
            if table["label"].duplicated().any():
                raise InvalidParameterError(
                    "classes is a mapping {label: class} but the table's labels repeat (a "
                    "table of several images); pass one class per row instead."
                )
            unknown = set(classes) - set(table["label"].tolist())
            if unknown:
                shown = ", ".join(map(str, sorted(unknown, key=str)[:8]))
                raise InvalidLabelsError(
                    f"{len(unknown)} annotated label(s) are not rows of the table ({shown}); "
                    "annotate objects of the measured label image."
                )
            return [classes.get(k) for k in table["label"].tolist()]
        values = list(classes)
        if len(values) != len(table):
            raise InvalidParameterError(
                f"classes has {len(values)} entries for a table of {len(table)} rows; give one "
                "class per row " + _MISSING_NOTE + "."
            )
        return values

    def _feature_matrix(self, table, features):
        missing = [f for f in features if f not in table.columns]
        if missing:
            raise InvalidParameterError(
                f"the table lacks the feature column(s) {missing}; it has "
                f"{list(map(str, table.columns))}. Measure the objects with the same kind of "
                "image (channels, names, 2D/3D) as in training, or choose features=[...] "
                "among its columns."
            )
        try:
            X = table[features].to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            bad = [f for f in features if not (
                np.issubdtype(table[f].dtype, np.number) or table[f].dtype == bool)]
            raise InvalidParameterError(
                f"feature column(s) {bad} are not numeric; choose numeric measurement "
                "columns."
            ) from None
        if np.isinf(X).any():
            col = features[int(np.flatnonzero(np.isinf(X).any(axis=0))[0])]
            raise InvalidParameterError(
                f"feature column {col!r} holds infinite values; drop those rows or choose "
                "other features."
            )
        return np.where(np.isnan(X), MISSING_VALUE, X)

    # -- prediction --------------------------------------------------------------
    def _table_proba(self, table):
        import pandas as pd

        self._check_fitted()
        if not isinstance(table, pd.DataFrame):
            raise InvalidParameterError(
                f"table must be a pandas DataFrame of measurements, got "
                f"{type(table).__name__}."
            )
        X = self._feature_matrix(self._with_relative_size(table), list(self.feature_names_in_))
        if len(X) == 0:
            return np.zeros((0, len(self.classes_)))
        proba = self.estimator_.predict_proba(X)
        # the estimator knows the class indices it saw: all of them by construction
        return np.asarray(proba, dtype=np.float64)

    def predict_proba_table(self, table):
        """Class probabilities of every row of a measurement table.

        Returns
        -------
        proba : pandas.DataFrame
            One column per class (``classes_``), indexed like ``table``.
        """
        import pandas as pd

        return pd.DataFrame(self._table_proba(table), index=table.index,
                            columns=pd.Index(self.classes_.tolist(), name="class"))

    def predict_table(self, table):
        """The class of every row of a measurement table.

        Parameters
        ----------
        table : pandas.DataFrame
            Holding the columns ``feature_names_in_``.

        Returns
        -------
        classes : pandas.Series
            Named ``"class"``, indexed like ``table``.
        """
        import pandas as pd

        proba = self._table_proba(table)
        return pd.Series(self.classes_[np.argmax(proba, axis=1)] if len(proba) else
                         self.classes_[:0], index=table.index, name="class")

    def measure(self, labels, image=None, *, spacing=None, channel_names=None):
        """The table this classifier reads: one row per object.

        :func:`~pixelforest.objects.measure.measure` with the classifier's
        ``channel_axis``, plus the relative size (:func:`add_relative_size`).

        Parameters
        ----------
        labels, image, spacing, channel_names
            As in :meth:`predict`.

        Returns
        -------
        table : pandas.DataFrame
        """
        return self._measure(labels, image, spacing, channel_names)

    def predict(self, labels, image=None, *, spacing=None, channel_names=None):
        """The class of every object of a label image.

        Parameters
        ----------
        labels : array_like of int
            Instance label image (0 = background).
        image : array_like, optional
            Its intensity image, as in training (needed when the model uses
            intensity columns).
        spacing : float or sequence of float, optional
            Physical pixel size, as in training.
        channel_names : sequence of str, optional
            As in :meth:`fit`.

        Returns
        -------
        classes : pandas.Series
            Indexed by object label (sorted), named ``"class"``.
        """
        table = self.measure(labels, image, spacing=spacing, channel_names=channel_names)
        return self.predict_table(table).set_axis(
            table["label"].rename("label").to_numpy()).rename_axis("label")

    def predict_proba(self, labels, image=None, *, spacing=None, channel_names=None):
        """Class probabilities of every object of a label image.

        Returns
        -------
        proba : pandas.DataFrame
            Indexed by object label, one column per class (``classes_``).
        """
        table = self.measure(labels, image, spacing=spacing, channel_names=channel_names)
        proba = self.predict_proba_table(table)
        proba.index = table["label"].to_numpy()
        proba.index.name = "label"
        return proba

    def predict_image(self, labels, image=None, *, spacing=None, channel_names=None):
        """A class image: each object's pixels hold its class value (0 = background).

        The value of a class is ``image_values_``: the class itself when all
        classes are positive integers, else its position in ``classes_``
        plus 1.

        Returns
        -------
        class_image : ndarray
            Of the labels' shape, the smallest unsigned integer type that
            holds the values.
        """
        arr = _check_labels(labels)
        predicted = self.predict(arr, image, spacing=spacing, channel_names=channel_names)
        return self.class_image(arr, predicted)

    def class_image(self, labels, classes):
        """Paint per-object classes (e.g. from :meth:`predict`) into a class image.

        Parameters
        ----------
        labels : array_like of int
            The instance label image.
        classes : pandas.Series or mapping
            ``{object label: class}`` for classes of this model; objects
            not in it stay 0.

        Returns
        -------
        class_image : ndarray
            As in :meth:`predict_image`.
        """
        self._check_fitted()
        arr = _check_labels(labels)
        values = self.image_values_
        dtype = np.min_scalar_type(int(values.max()))
        items = list(classes.items() if hasattr(classes, "items") else dict(classes).items())
        keys = np.fromiter((int(k) for k, _ in items), dtype=np.int64)
        index = {c: i for i, c in enumerate(self.classes_.tolist())}
        try:
            codes = np.fromiter((values[index[_class_value(v, "classes")]] for _, v in items),
                                dtype=np.int64, count=len(keys))
        except KeyError as exc:
            raise InvalidParameterError(
                f"class {exc.args[0]!r} is not a class of this model "
                f"({self.classes_.tolist()})."
            ) from None
        top = int(arr.max(initial=0))
        lut = np.zeros(top + 1, dtype=dtype)
        inside = (keys > 0) & (keys <= top)
        lut[keys[inside]] = codes[inside]
        return lut[arr]


def _fit_on_budget(estimator, X, y, n_threads):
    """Fit; a forest left at ``n_jobs`` 1 or None grows on ``n_threads``, then is set back."""
    from pixelforest.forest.split_placement import is_forest

    if (not is_forest(estimator) or estimator.get_params()["n_jobs"] not in (None, 1)
            or n_threads <= 1):
        estimator.fit(X, y)
        return
    before = estimator.get_params()["n_jobs"]
    estimator.set_params(n_jobs=n_threads)
    try:
        estimator.fit(X, y)
    finally:
        estimator.set_params(n_jobs=before)
