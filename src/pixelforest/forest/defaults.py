"""The forest :class:`~pixelforest.classify.classifier.PixelClassifier` uses when none is given."""

__all__ = ["default_estimator"]


def default_estimator(*, n_estimators=50, random_state=None):
    """The estimator :class:`PixelClassifier` uses when none is given.

    A :class:`~sklearn.ensemble.RandomForestClassifier` with balanced class
    weights (scribbles over-represent whichever class was painted most) and
    ``n_jobs=1`` (summing trees in a fixed order keeps predictions bit for
    bit reproducible; :class:`PixelClassifier` grows the trees on its
    ``n_jobs`` threads and sets it back).  Its other settings were chosen by
    ``benchmarks/quality.py`` (the measurements are in
    ``benchmarks/README.md``): with scribbles the labelled pixels are
    separable, so trees stop after one or two splits and what matters is
    the feature set and where the splits sit in the gap between the classes
    (see ``split_placement`` of :class:`PixelClassifier`).

    Parameters
    ----------
    n_estimators : int, optional
        Number of trees.
    random_state : int or None, optional
        Seed of the forest; None lets :class:`PixelClassifier` set it from
        its own ``random_state``.

    Returns
    -------
    estimator : RandomForestClassifier

    Examples
    --------
    >>> default_estimator(n_estimators=10).n_estimators
    10
    """
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(
        n_estimators=n_estimators,
        max_features="sqrt",
        min_samples_leaf=1,
        class_weight="balanced",
        n_jobs=1,
        random_state=random_state,
    )
