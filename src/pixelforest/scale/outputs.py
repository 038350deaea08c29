"""What a prediction output holds, and the metadata that says so.

An output is one of four *kinds*: ``"labels"`` (the class value of each
pixel), ``"mask"`` (uint8, 255 where the pixel is of the *foreground* class
and 0 elsewhere, visible in any viewer), ``"probabilities"`` (float32,
one channel per class, last) or ``"instances"`` (uint32 object labels, 0 =
background, 1..N = one object each, the *foreground* class's probability
split into objects: :mod:`pixelforest.scale.instances`).  Every output carries a ``"pixelforest"``
metadata dict (Zarr attributes, TIFF and PNG metadata) so that a reader,
``pixelforest evaluate`` included, knows which value means what::

    {"kind": "labels", "classes": [1, 2],
     "class_names": {"1": "background", "2": "foreground"}, "foreground": 2}

(a mask adds ``"mask_value": 255``; instances add ``"n_objects"``, the
typical ``"radius"``, and the ``"block"`` side and ``"overlap"`` of the
object pass).
"""

import numbers

import numpy as np

from pixelforest.errors import InvalidParameterError

__all__ = ["KINDS", "MASK_VALUE", "class_names", "output_metadata", "resolve_foreground",
           "resolve_kind"]

#: The kinds of output.
KINDS = ("labels", "mask", "probabilities", "instances")

#: Value of the foreground pixels of a mask (0 elsewhere).
MASK_VALUE = 255


def resolve_kind(kind=None, probabilities=False):
    """The output kind from ``kind`` and the older ``probabilities`` flag.

    Examples
    --------
    >>> resolve_kind(), resolve_kind("mask"), resolve_kind(probabilities=True)
    ('labels', 'mask', 'probabilities')
    >>> resolve_kind("instances")
    'instances'
    """
    if probabilities:
        if kind not in (None, "probabilities"):
            raise InvalidParameterError(
                f"probabilities=True asks for probabilities but kind={kind!r}; pass only "
                "kind='probabilities' (CLI --kind probabilities), or drop probabilities."
            )
        return "probabilities"
    if kind is None:
        return "labels"
    if kind not in KINDS:
        raise InvalidParameterError(
            f"unknown output kind {kind!r}; use 'labels' (class values), 'mask' (0/255 of "
            "the foreground class), 'probabilities' (float32 per class) or 'instances' "
            "(uint32 object labels)."
        )
    return kind


def resolve_foreground(classes, foreground=None):
    """The foreground class value: ``foreground`` if it is a class, else the largest class.

    Examples
    --------
    >>> import numpy as np
    >>> resolve_foreground(np.array([1, 2])), resolve_foreground(np.array([1, 2]), 1)
    (2, 1)
    """
    classes = np.asarray(classes)
    if foreground is None:
        return classes.max().item()
    if isinstance(foreground, str):
        try:
            foreground = float(foreground) if "." in foreground else int(foreground)
        except ValueError:
            foreground = None
    match = (np.flatnonzero(classes == foreground)
             if isinstance(foreground, numbers.Real) and not isinstance(foreground, bool)
             else [])
    if len(match) == 0:
        raise InvalidParameterError(
            f"foreground {foreground!r} is not one of the model's classes "
            f"{classes.tolist()}; pass one of them (CLI --foreground VALUE)."
        )
    return classes[match[0]].item()


def class_names(classes):
    """Names by class value (as strings): background/foreground for classes 1 and 2.

    Examples
    --------
    >>> class_names([1, 2]), class_names([0, 1, 5])
    ({'1': 'background', '2': 'foreground'}, {'0': 'class 0', '1': 'class 1', '5': 'class 5'})
    """
    values = [np.asarray(v).item() for v in classes]
    if values == [1, 2]:
        return {"1": "background", "2": "foreground"}
    return {str(v): f"class {v}" for v in values}


def output_metadata(classes, kind, foreground):
    """The ``{"pixelforest": {...}}`` metadata of an output (see the module docstring)."""
    classes = [np.asarray(v).item() for v in classes]
    meta = {"kind": kind, "classes": classes, "class_names": class_names(classes),
            "foreground": foreground}
    if kind == "mask":
        meta["mask_value"] = MASK_VALUE
    return {"pixelforest": meta}
