"""Named multiscale per-pixel features: which (:mod:`.spec`) and how (:mod:`.compute`).

Two compiled paths compute the filters, chosen by ``FeatureSpec.precision``
and recorded in model files: :mod:`.gaussian` (``"exact"``), equal to
:func:`scipy.ndimage.gaussian_filter` bit for bit, and :mod:`.fast`
(``"fast"``, the default), float32 passes that compute every derivative order
of a scale together, within 1e-6 of the float64 filters.
"""

from pixelforest.features.compute import compute_features
from pixelforest.features.spec import FAMILIES, PRECISIONS, PRESETS, FeatureSpec

__all__ = ["FAMILIES", "PRECISIONS", "PRESETS", "FeatureSpec", "compute_features"]
