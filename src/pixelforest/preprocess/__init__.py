"""Intensity normalization before segmentation (:mod:`.normalize`)."""
