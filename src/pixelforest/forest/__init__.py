"""The random forest: its default settings (:mod:`.defaults`), split placement
(:mod:`.split_placement`) and compiled exact inference (:mod:`.inference`)."""
