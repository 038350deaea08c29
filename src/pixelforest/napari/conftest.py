"""pytest: collect this package's doctests only where Qt is installed.

``pytest`` runs the doctests of every module under ``src/pixelforest``;
the dock widget module imports Qt, which ``pip install -e ".[test]"`` does
not install.  There it is left out (the library itself never imports it),
unless ``PIXELFOREST_REQUIRE_NAPARI=1`` asks for the napari tests.
"""

import os
import warnings


def _have_qt():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import qtpy.QtWidgets  # noqa: F401
        except Exception:  # noqa: BLE001 (ImportError, or qtpy's error for no binding)
            return False
    return True


collect_ignore = [] if os.environ.get("PIXELFOREST_REQUIRE_NAPARI") == "1" or _have_qt() \
    else ["_widget.py"]
