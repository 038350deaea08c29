"""The lesson's pipeline on one image, measured against its reference.

:func:`run_demo` is what ``pixelforest demo`` runs: load a real nuclei image
(or, with no data and no network, a synthetic one), segment it with Otsu's
threshold, K-means and a random forest trained from simulated scribbles, and
score every result against the reference mask with IoU, Dice, object-level
F1 and the DSB2018 average precision.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_SAMPLE", "DemoResult", "run_demo", "format_table", "compare_forest"]

#: A dim fluorescence image of 51 nuclei (256 x 256, uint8) whose brightness
#: varies threefold, with out-of-focus haze between them: one global
#: threshold (Otsu, K-means) cannot fit all of them, a forest trained from
#: scribbles does better (the README gives what ``pixelforest demo`` prints).
DEFAULT_SAMPLE = "942d56861fc8"


@dataclass
class DemoResult:
    """What :func:`run_demo` measured.

    Attributes
    ----------
    sample : str
        Sample name, or ``"synthetic"``.
    kind : str
        Image kind (fluorescence, brightfield, histology, synthetic).
    rows : list of dict
        One row per method: ``method``, ``iou``, ``dice``, ``f1``, ``ap``,
        ``seconds``.
    figure : Path or None
        The figure written, if any.
    top_features : list of (str, float)
        The random forest's most important features.
    notes : list of str
        Things the user should know (fallbacks, polarity).
    """

    sample: str
    kind: str
    rows: list = field(default_factory=list)
    figure: Path | None = None
    top_features: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def _load(sample):
    """Return ``(name, kind, image, labels, notes)``, falling back to synthetic data."""
    from pixelforest import datasets
    from pixelforest.errors import DataUnavailableError

    name = sample or DEFAULT_SAMPLE
    try:
        image, labels = datasets.load_sample(name)
        kind = datasets.sample_info(name)["kind"]
        return name, kind, image, labels, []
    except DataUnavailableError as exc:
        if sample is not None:
            raise
        image, labels = datasets.synthetic_nuclei((256, 256), n=30, seed=0)
        reason = str(exc).splitlines()[0]
        if not reason.startswith("sample data unavailable"):
            reason = f"sample data unavailable ({reason})"
        note = f"{reason}; using synthetic_nuclei((256, 256), n=30, seed=0) instead"
        return "synthetic", "synthetic", image, labels, [note]


def _score(mask, labels):
    from pixelforest.evaluate import metrics

    match = metrics.match_objects(mask, labels, threshold=0.5)
    return {
        "iou": metrics.iou(mask, labels),
        "dice": metrics.dice(mask, labels),
        "f1": match.f1,
        "ap": metrics.average_precision(mask, labels),
    }


def run_demo(*, sample=None, out=None, random_state=0, log=None):
    """Segment one sample image three ways and score each against its reference.

    Parameters
    ----------
    sample : str, optional
        A name from :func:`pixelforest.datasets.list_samples`; default
        :data:`DEFAULT_SAMPLE`.  With no sample data available and no
        network, the default falls back to
        :func:`pixelforest.datasets.synthetic_nuclei` (and says so in
        ``notes``); an explicitly named sample raises instead.
    out : str or Path, optional
        Folder for the figure ``demo-<sample>.png``; no figure if None.
    random_state : int, optional
        Seed of K-means, the scribbles and the forest.
    log : callable, optional
        Called with progress messages (e.g. ``print``).

    Returns
    -------
    DemoResult

    Examples
    --------
    >>> from pixelforest.demo import run_demo, format_table
    >>> result = run_demo()  # doctest: +SKIP
    >>> print(format_table(result.rows))  # doctest: +SKIP
    """
    import time

    from pixelforest.classify.scribbles import simulate_scribbles
    from pixelforest.classify.classifier import PixelClassifier
    from pixelforest.segment.unsupervised import kmeans_segment, otsu_segment
    from pixelforest.evaluate.figures import plot_comparison

    log = log or (lambda message: None)
    name, kind, image, labels, notes = _load(sample)
    channel_axis = -1 if (image.ndim == 3 and image.shape[-1] in (3, 4)
                          and kind in ("histology",)) else None
    # Nuclei are bright in fluorescence and dark in bright-field/histology:
    # unsupervised methods cannot know that, the user does.
    dark_objects = kind in ("brightfield", "histology")
    if dark_objects:
        notes.append(f"{kind} image: nuclei are dark, so Otsu/K-means take the darker class")
    log(f"sample {name} ({kind}), shape {image.shape}, dtype {image.dtype}, "
        f"{int(labels.max())} reference nuclei")

    result = DemoResult(sample=name, kind=kind, notes=notes)
    masks = {}

    def add(method, compute):
        start = time.perf_counter()
        mask = compute()
        seconds = time.perf_counter() - start
        masks[method] = mask
        result.rows.append({"method": method, **_score(mask, labels), "seconds": seconds})
        log(f"{method}: done in {seconds:.2f} s")

    add("otsu", lambda: (otsu_segment(image, channel_axis=channel_axis) == 0) == dark_objects)
    add("kmeans", lambda: kmeans_segment(image, 2, channel_axis=channel_axis,
                                         random_state=random_state)
        == (0 if dark_objects else 1))

    scribbles = simulate_scribbles(labels, random_state=random_state)
    clf = PixelClassifier(channel_axis=channel_axis, random_state=random_state)

    def forest():
        clf.fit(image, scribbles)
        return clf.predict(image) == 2

    add("random forest (scribbles)", forest)
    n_labelled = int(np.count_nonzero(scribbles))
    notes.append(f"random forest trained on {n_labelled} scribbled pixels "
                 f"({100 * n_labelled / scribbles.size:.1f}% of the image)")
    result.top_features = list(clf.feature_importances_by_name().items())[:5]

    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        result.figure = plot_comparison(
            image, labels, masks, out / f"demo-{name}.png", channel_axis=channel_axis,
            scores={row["method"]: row["iou"] for row in result.rows},
            title=f"{name} ({kind})",
        )
    return result


def compare_forest(rows, metrics=("iou", "f1", "ap")):
    """One line: the forest's scores minus the better of Otsu and K-means.

    Computed from ``rows`` (:attr:`DemoResult.rows`), whichever way it goes.

    Examples
    --------
    >>> rows = [{"method": "otsu", "iou": 0.70, "ap": 0.30},
    ...         {"method": "kmeans", "iou": 0.72, "ap": 0.25},
    ...         {"method": "random forest (scribbles)", "iou": 0.80, "ap": 0.28}]
    >>> compare_forest(rows, metrics=("iou", "ap"))
    'random forest minus the better of Otsu/K-means: IoU +0.080 (kmeans), AP -0.020 (otsu)'
    """
    names = {"iou": "IoU", "dice": "Dice", "f1": "object F1", "ap": "AP"}
    forest = next(row for row in rows if row["method"].startswith("random forest"))
    others = [row for row in rows if row is not forest]
    parts = []
    for metric in metrics:
        best = max(others, key=lambda row: row[metric])
        parts.append(f"{names[metric]} {forest[metric] - best[metric]:+.3f} ({best['method']})")
    return "random forest minus the better of Otsu/K-means: " + ", ".join(parts)


def format_table(rows):
    """Format :attr:`DemoResult.rows` as a plain-text table.

    Examples
    --------
    >>> print(format_table([{"method": "otsu", "iou": 0.81234, "dice": 0.9,
    ...                      "f1": 0.7, "ap": 0.5, "seconds": 0.01}]))
    method                         IoU    Dice  object F1     AP
    otsu                         0.812   0.900      0.700  0.500
    """
    lines = [f"{'method':<27}{'IoU':>7}{'Dice':>8}{'object F1':>11}{'AP':>7}"]
    for row in rows:
        lines.append(f"{row['method']:<27}{row['iou']:>7.3f}{row['dice']:>8.3f}"
                     f"{row['f1']:>11.3f}{row['ap']:>7.3f}")
    return "\n".join(lines)
