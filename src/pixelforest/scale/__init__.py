"""Prediction at scale: images larger than memory (:mod:`.tiled`) and many files (:mod:`.batch`)."""
