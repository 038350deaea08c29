"""pytest: collect this package's doctests only where napari and Qt are installed.

``pytest`` runs the doctests of every module under ``src/pixelforest``;
the dock widget module imports Qt, which ``pip install -e ".[test]"`` does
not install.  There it is left out (the library itself never imports it),
unless ``PIXELFOREST_REQUIRE_NAPARI=1`` asks for the napari tests.
"""

import importlib.util
import os

_HAVE_QT = all(importlib.util.find_spec(m) is not None for m in ("napari", "qtpy"))

collect_ignore = [] if _HAVE_QT or os.environ.get("PIXELFOREST_REQUIRE_NAPARI") == "1" \
    else ["_widget.py"]
