"""Pixel classification: the :class:`~.classifier.PixelClassifier` estimator, the
fitted prediction :mod:`.pipeline` every consumer runs, and simulated
:mod:`.scribbles`."""
