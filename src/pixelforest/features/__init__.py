"""Named multiscale per-pixel features: which (:mod:`.spec`) and how (:mod:`.compute`).

:mod:`.gaussian` holds the compiled Gaussian filters both rely on, equal to
:func:`scipy.ndimage.gaussian_filter` bit for bit.
"""

from pixelforest.features.compute import compute_features
from pixelforest.features.spec import FAMILIES, PRESETS, FeatureSpec

__all__ = ["FAMILIES", "PRESETS", "FeatureSpec", "compute_features"]
