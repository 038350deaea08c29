"""The ``pixelforest`` command-line interface (thin over the library)."""
