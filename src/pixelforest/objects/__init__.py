"""Objects: measure the objects of an instance label image (:mod:`.measure`).

Instance labels come from
:func:`pixelforest.segment.instances.instances_from_probability` or
:meth:`PixelClassifier.predict_instances
<pixelforest.classify.classifier.PixelClassifier.predict_instances>`.
"""

from pixelforest.objects.measure import measure, summarize, write_csv

__all__ = ["measure", "summarize", "write_csv"]
