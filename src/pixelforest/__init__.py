"""pixelforest: segment microscopy images with classical machine learning.

Load and normalize an image, segment it without labels (K-means, Otsu),
judge a segmentation against a reference (IoU, Dice, object-level scores),
compute named per-pixel features and train a random-forest pixel classifier
from a few labelled pixels, then apply it to many or very large images.

Subpackages, by domain (the older flat module names, such as
``pixelforest.classifier`` or ``pixelforest.tiled``, still import):

==========================  =================================================
``pixelforest.io``          images (TIFF, PNG/JPEG, Zarr, OME-Zarr;
                            CZI/ND2/LIF/OME-TIFF with the ``formats``
                            extra), NGFF label images and safe model
                            files (skops)
``pixelforest.datasets``    real sample images (DSB2018) and synthetic nuclei
``pixelforest.preprocess``  robust, min-max and percentile normalization
``pixelforest.segment``     segmentation without training: K-means, Otsu;
                            instance labels from a probability map
``pixelforest.evaluate``    IoU, Dice, object matching, AP; error figures
``pixelforest.features``    named multiscale per-pixel features
``pixelforest.forest``      the default forest, split placement, compiled
                            exact inference
``pixelforest.classify``    :class:`PixelClassifier`, its fitted prediction
                            pipeline, simulated scribbles
``pixelforest.objects``     measure objects (one table row each) and
                            classify them from a few labelled ones
``pixelforest.scale``       out-of-core (dask) and batch prediction, tiled
                            instance labels
``pixelforest.lesson``      exercise checkers for the lesson
``pixelforest.cli``         the ``pixelforest`` command (thin over the above)
==========================  =================================================

Top-level names are imported lazily, so ``import pixelforest`` is fast.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "imread": "io.images",
    "imwrite": "io.images",
    "imread_lazy": "io.images",
    "normalize_minmax": "preprocess.normalize",
    "normalize_percentile": "preprocess.normalize",
    "kmeans_segment": "segment.unsupervised",
    "otsu_segment": "segment.unsupervised",
    "instances_from_probability": "segment.instances",
    "measure": "objects.measure",
    "ObjectClassifier": "objects.classifier",
    "iou": "evaluate.metrics",
    "dice": "evaluate.metrics",
    "FeatureSpec": "features.spec",
    "compute_features": "features.compute",
    "PixelClassifier": "classify.classifier",
    "save_model": "io.model_file",
    "load_model": "io.model_file",
    "save_object_model": "io.model_file",
    "load_object_model": "io.model_file",
}

_SUBMODULES = {
    "io", "datasets", "preprocess", "segment", "evaluate", "features", "forest",
    "classify", "objects", "scale", "lesson", "errors", "demo",
    # the flat names of earlier releases
    "normalize", "unsupervised", "metrics", "classifier", "annotate", "model_io",
    "tiled", "batch", "visualize",
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
