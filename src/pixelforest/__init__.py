"""pixelforest: segment microscopy images with classical machine learning.

Load and normalize an image, segment it without labels (K-means, Otsu),
judge a segmentation against a reference (IoU, Dice, object-level scores),
compute named per-pixel features and train a random-forest pixel classifier
from a few labelled pixels, then apply it to many or very large images.

Submodules (one responsibility each):

========================  ===================================================
``pixelforest.io``        read/write TIFF, PNG/JPEG, Zarr, OME-Zarr
``pixelforest.datasets``  real sample images (DSB2018) and synthetic nuclei
``pixelforest.normalize`` min-max and percentile normalization
``pixelforest.unsupervised`` K-means and Otsu segmentation
``pixelforest.metrics``   IoU, Dice, confusion matrix, object matching, AP
``pixelforest.features``  named multiscale per-pixel features
``pixelforest.classifier`` the :class:`PixelClassifier` estimator
``pixelforest.annotate``  simulated scribble annotations
``pixelforest.model_io``  safe model files (skops)
``pixelforest.tiled``     out-of-core (dask) prediction
``pixelforest.batch``     resumable prediction over many files
``pixelforest.lesson``    exercise checkers for the lesson
========================  ===================================================

Top-level names are imported lazily, so ``import pixelforest`` is fast.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "imread": "io",
    "imwrite": "io",
    "imread_lazy": "io",
    "normalize_minmax": "normalize",
    "normalize_percentile": "normalize",
    "kmeans_segment": "unsupervised",
    "otsu_segment": "unsupervised",
    "iou": "metrics",
    "dice": "metrics",
    "FeatureSpec": "features",
    "compute_features": "features",
    "PixelClassifier": "classifier",
    "save_model": "model_io",
    "load_model": "model_io",
}

_SUBMODULES = {
    "io", "datasets", "normalize", "unsupervised", "metrics", "features",
    "classifier", "annotate", "model_io", "tiled", "batch", "lesson", "errors",
    "visualize", "demo",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'pixelforest' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
