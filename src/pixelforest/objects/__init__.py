"""Objects: measure the objects of an instance label image (:mod:`.measure`) and
classify them from a few labelled ones (:mod:`.classifier`).

Instance labels come from
:func:`pixelforest.segment.instances.instances_from_probability` or
:meth:`PixelClassifier.predict_instances
<pixelforest.classify.classifier.PixelClassifier.predict_instances>`.
"""

from pixelforest.objects.classifier import (
    ObjectClassifier,
    add_relative_size,
    classes_from_annotations,
    default_features,
    default_object_estimator,
)
from pixelforest.objects.measure import measure, summarize, write_csv

__all__ = ["ObjectClassifier", "add_relative_size", "classes_from_annotations", "default_features",
           "default_object_estimator", "measure", "summarize", "write_csv"]
