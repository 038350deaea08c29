"""Judge a segmentation: scores against a reference (:mod:`.metrics`) and error figures (:mod:`.figures`)."""
