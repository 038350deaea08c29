"""Score segmentation files against reference files: one pair, or folders of them.

What ``pixelforest evaluate`` does, as a library:

- :func:`evaluate_file` scores one prediction file against one reference
  file (pixel IoU and Dice, object precision/recall/F1, DSB average
  precision), reading the prediction's pixelforest metadata to know which
  value is the foreground (:func:`pixelforest.evaluate.metrics.prediction_foreground`);
- :func:`match_files` pairs the images of a prediction folder with those of a
  reference folder by name (``a_pred.tif`` with ``a.png``);
- :func:`evaluate_paths` scores a pair of files or of folders (one row per
  image) and :func:`mean_row` averages the rows;
- :func:`write_csv` writes the rows, then the mean, atomically.
"""

import csv
from pathlib import Path

from pixelforest.errors import ImageFileNotFoundError, InvalidParameterError

__all__ = ["SCORE_COLUMNS", "evaluate_file", "match_files", "evaluate_paths", "mean_row",
           "write_csv"]

#: The columns of a row, in the order of the table and the CSV file.
SCORE_COLUMNS = ("prediction", "reference", "foreground", "iou", "dice", "true_positives",
                 "false_positives", "false_negatives", "precision", "recall", "f1",
                 "average_precision")
#: Counts, summed (not averaged) in the mean row.
_COUNTS = ("true_positives", "false_positives", "false_negatives")
#: Name endings that say what a file is rather than which image it shows.
_NAME_SUFFIXES = ("_prediction", "_predicted", "_pred", "_segmentation", "_seg", "_labels",
                  "_label", "_masks", "_mask", "_reference", "_ref", "_groundtruth", "_gt")
_IMAGE_EXTENSIONS = (".ome.zarr", ".ome.tiff", ".ome.tif", ".zarr", ".tiff", ".tif", ".png",
                     ".jpeg", ".jpg")


def _image_key(path):
    """The name that identifies the image of a file: no extension, no ``_pred`` etc."""
    name = Path(path).name.lower()
    for ext in _IMAGE_EXTENSIONS:
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    changed = True
    while changed:
        changed = False
        for suffix in _NAME_SUFFIXES:
            for sep in ("_", "-", "."):
                ending = sep + suffix[1:]
                if name.endswith(ending) and len(name) > len(ending):
                    name = name[: -len(ending)]
                    changed = True
    return name


def _images_in(folder):
    return sorted(p for p in Path(folder).iterdir()
                  if not p.name.startswith(".")
                  and any(p.name.lower().endswith(ext) for ext in _IMAGE_EXTENSIONS))


def match_files(predictions, references):
    """Pair the images of two folders by name.

    Names are compared without their extension and without endings such as
    ``_pred``, ``_mask``, ``_labels`` or ``_gt`` (case-insensitive), so
    ``a_pred.tif`` matches ``a.png`` and ``A_mask.tif``.

    Parameters
    ----------
    predictions, references : str or Path
        Folders of images (``.tif``, ``.png``, ``.jpg``, ``.zarr``).

    Returns
    -------
    list of (Path, Path)
        ``(prediction, reference)`` pairs, sorted by prediction name.

    Raises
    ------
    InvalidParameterError
        A prediction has no reference, two files have the same name, or a
        folder holds no image.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> pred, ref = (pathlib.Path(tempfile.mkdtemp()) for _ in range(2))
    >>> for p in (pred / "a_pred.tif", ref / "a.png", ref / "b.png"):
    ...     _ = p.write_bytes(b"")
    >>> [(p.name, r.name) for p, r in match_files(pred, ref)]
    [('a_pred.tif', 'a.png')]
    """
    by_key = {}
    for side, folder in (("prediction", predictions), ("reference", references)):
        files = _images_in(folder)
        if not files:
            raise InvalidParameterError(
                f"the {side} folder {folder} holds no image (.tif, .png, .jpg, .zarr); "
                "check the path."
            )
        keys = {}
        for path in files:
            key = _image_key(path)
            if key in keys:
                raise InvalidParameterError(
                    f"{keys[key].name} and {path.name} in {folder} name the same image "
                    f"({key!r}); keep one of them in the folder."
                )
            keys[key] = path
        by_key[side] = keys
    preds, refs = by_key["prediction"], by_key["reference"]
    missing = sorted(p.name for key, p in preds.items() if key not in refs)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3
                                          else "")
        raise InvalidParameterError(
            f"no reference in {references} for {shown}; name each reference like its "
            "prediction (a.tif for a.tif or a_pred.tif), or remove the extra predictions."
        )
    return [(preds[key], refs[key]) for key in sorted(preds, key=lambda k: preds[k].name)]


def evaluate_file(prediction, reference, *, foreground=None, threshold=0.5):
    """Score one prediction file against one reference file.

    Parameters
    ----------
    prediction : str or Path
        A mask, label image or pixelforest output.  With pixelforest
        metadata (:func:`pixelforest.io.images.read_metadata`), its
        foreground class is used; without, every nonzero pixel is
        foreground (with a warning when that looks wrong).
    reference : str or Path
        Reference mask or instance labels (nonzero = foreground).
    foreground : int or float, optional
        The prediction value that means foreground; overrides the metadata.
    threshold : float, optional
        IoU needed for two objects to match.

    Returns
    -------
    dict
        The :data:`SCORE_COLUMNS` of the pair, plus ``object_threshold``.

    Raises
    ------
    InvalidImageError, InvalidParameterError
        As :func:`pixelforest.evaluate.metrics.prediction_foreground`.
    ShapeMismatchError
        The two images differ in shape.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from pixelforest.io.images import imwrite
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> labels = np.array([[1, 2, 2], [1, 1, 2]], np.uint8)
    >>> imwrite(folder / "pred.tif", labels, metadata={"kind": "labels", "foreground": 2})
    >>> imwrite(folder / "ref.tif", (labels == 2).astype(np.uint8))
    >>> evaluate_file(folder / "pred.tif", folder / "ref.tif")["iou"]
    1.0
    """
    from pixelforest.evaluate import metrics
    from pixelforest.io.images import imread, read_metadata

    pred = imread(prediction)
    ref = imread(reference)
    meta = read_metadata(prediction)
    scored = metrics.prediction_foreground(pred, metadata=meta, foreground=foreground,
                                           name=str(prediction))
    if scored.dtype == bool:
        shown = foreground if foreground is not None else meta.get("foreground")
    else:
        shown = "nonzero"
    match = metrics.match_objects(scored, ref, threshold=threshold)
    return {
        "prediction": str(prediction),
        "reference": str(reference),
        "foreground": shown,
        "iou": metrics.iou(scored, ref),
        "dice": metrics.dice(scored, ref),
        "object_threshold": threshold,
        "true_positives": match.tp,
        "false_positives": match.fp,
        "false_negatives": match.fn,
        "precision": match.precision,
        "recall": match.recall,
        "f1": match.f1,
        "average_precision": metrics.average_precision(scored, ref),
    }


def evaluate_paths(prediction, reference, *, foreground=None, threshold=0.5):
    """Score a prediction file against a reference file, or every image of two folders.

    Parameters
    ----------
    prediction, reference : str or Path
        Two files, or two folders whose images are paired by
        :func:`match_files`.
    foreground, threshold
        As :func:`evaluate_file`.

    Returns
    -------
    list of dict
        One row (:func:`evaluate_file`) per image.

    Raises
    ------
    ImageFileNotFoundError
        A path does not exist.
    InvalidParameterError
        One path is a folder and the other a file, or as :func:`match_files`.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from pixelforest.io.images import imwrite
    >>> pred, ref = (pathlib.Path(tempfile.mkdtemp()) for _ in range(2))
    >>> imwrite(pred / "a_pred.tif", np.array([[0, 1], [1, 1]], np.uint8))
    >>> imwrite(ref / "a.tif", np.array([[0, 1], [1, 0]], np.uint8))
    >>> [round(row["iou"], 3) for row in evaluate_paths(pred, ref)]
    [0.667]
    """
    prediction, reference = Path(prediction), Path(reference)
    for path in (prediction, reference):
        if not path.exists():
            raise ImageFileNotFoundError(
                f"{path} does not exist; check the spelling and the folder."
            )
    folders = [p.is_dir() and p.suffix.lower() != ".zarr" for p in (prediction, reference)]
    if folders == [False, False]:
        return [evaluate_file(prediction, reference, foreground=foreground,
                              threshold=threshold)]
    if folders != [True, True]:
        folder, file = (prediction, reference) if folders[0] else (reference, prediction)
        raise InvalidParameterError(
            f"{folder} is a folder but {file} is a file; give two files, or two folders "
            "(predictions and references, paired by file name)."
        )
    return [evaluate_file(p, r, foreground=foreground, threshold=threshold)
            for p, r in match_files(prediction, reference)]


def mean_row(rows):
    """The mean of each score over ``rows`` (true/false positives and negatives: totals).

    Examples
    --------
    >>> mean_row([{"iou": 0.5, "true_positives": 1}, {"iou": 1.0, "true_positives": 2}])
    {'prediction': 'mean', 'reference': '2 images', 'iou': 0.75, 'true_positives': 3}
    """
    mean = {"prediction": "mean", "reference": f"{len(rows)} images"}
    for key in rows[0]:
        if key in ("prediction", "reference", "foreground", "object_threshold"):
            continue
        values = [row[key] for row in rows]
        mean[key] = sum(values) if key in _COUNTS else float(sum(values) / len(values))
    return mean


def write_csv(path, rows, *, overwrite=True, inputs=()):
    """Write ``rows`` (then their mean, when there are several) to a CSV file, atomically.

    Parameters
    ----------
    path : str or Path
        The ``.csv`` file.
    rows : list of dict
        Rows of :func:`evaluate_paths`.
    overwrite : bool, optional
        Replace ``path`` if it exists.
    inputs : sequence of paths, optional
        Files that ``path`` must not be (the images scored).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "scores.csv"
    >>> write_csv(out, [{"prediction": "a.tif", "reference": "b.tif", "iou": 0.5}])
    >>> out.read_text().splitlines()[1]
    'a.tif,b.tif,,0.5,,,,,,,,'
    """
    from pixelforest._shared.atomic import atomic_output, check_not_input

    check_not_input(path, list(inputs))
    table = list(rows) + ([mean_row(rows)] if len(rows) > 1 else [])
    with atomic_output(Path(path), overwrite=overwrite) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=SCORE_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(table)
