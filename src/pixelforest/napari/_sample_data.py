"""Sample images for napari's *File > Open Sample > pixelforest*.

Real DSB2018 images with their reference nuclei (see
:mod:`pixelforest.datasets`: read from ``$PIXELFOREST_DATA_DIR`` or
downloaded once and checked); without data or network, a synthetic nuclei
image, said so in its layer name.
"""

from __future__ import annotations

from pixelforest import datasets
from pixelforest.errors import DataUnavailableError

__all__ = ["brightfield_nuclei", "fluorescence_nuclei", "histology_nuclei"]


def _layers(name, kind):
    try:
        image, labels = datasets.load_sample(name)
        title = f"{kind} {name}"
    except DataUnavailableError:
        image, labels = datasets.synthetic_nuclei((512, 512), 40, 0)
        title = "synthetic nuclei (sample data unavailable)"
    rgb = image.ndim == 3
    return [(image, {"name": title, "rgb": rgb}, "image"),
            (labels, {"name": f"{title} reference", "visible": False}, "labels")]


def fluorescence_nuclei():
    """A fluorescence image of 106 nuclei (DSB2018 ``bde3727f3a9e``) and its reference."""
    return _layers("bde3727f3a9e", "fluorescence")


def histology_nuclei():
    """An RGB histology image (DSB2018 ``a7f767ca9770``) and its reference."""
    return _layers("a7f767ca9770", "histology")


def brightfield_nuclei():
    """A bright-field image, dark nuclei on light (DSB2018 ``8d05fb18ee0c``), and its reference."""
    return _layers("8d05fb18ee0c", "bright-field")
