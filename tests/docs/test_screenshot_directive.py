"""The ``pixelforest-screenshot`` directive: a figure, or else a note or an error.

Each test builds a one-page Sphinx project in a temporary folder with the
site's own extension (``docs/_ext/pixelforest_docs.py``), so what is checked
is what the lesson's build does: CI (``PIXELFOREST_REQUIRE_SCREENSHOTS=1``)
fails when a napari screenshot is missing, a local build shows a note
instead, and a present screenshot becomes a figure with its alt text, its
caption and a link to the full-size file.
"""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sphinx")

EXT = Path(__file__).resolve().parents[2] / "docs" / "_ext"

ALT = ("The Pixel classifier panel with the class list, the Live box ticked and "
       "the buttons to save and load a model.")

PAGE = f"""\
Screenshots
===========

.. pixelforest-screenshot:: shot.png
   :alt: {ALT}

   The panel after a few strokes.
"""


def _build(tmp_path, monkeypatch, *, with_file, required, alt=ALT):
    import io

    from sphinx.application import Sphinx

    src = tmp_path / "src"
    (src / "_generated").mkdir(parents=True)
    # the site's directive alone (the whole extension would also write the API pages)
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(EXT)!r})\n"
        "exclude_patterns = ['_build', '_generated']\nroot_doc = 'index'\n\n"
        "def setup(app):\n"
        "    from pixelforest_docs import PixelforestScreenshot\n"
        "    app.add_directive('pixelforest-screenshot', PixelforestScreenshot, override=True)\n",
        encoding="utf-8")
    (src / "index.rst").write_text(PAGE.replace(ALT, alt), encoding="utf-8")
    if with_file:
        from skimage.io import imsave

        imsave(src / "_generated" / "shot.png",
               np.full((40, 60, 3), 128, np.uint8), check_contrast=False)
    if required:
        monkeypatch.setenv("PIXELFOREST_REQUIRE_SCREENSHOTS", "1")
    else:
        monkeypatch.delenv("PIXELFOREST_REQUIRE_SCREENSHOTS", raising=False)
    out, warnings = tmp_path / "html", io.StringIO()
    app = Sphinx(str(src), str(src), str(out), str(tmp_path / "doctrees"), "html",
                 status=None, warning=warnings, freshenv=True)
    app.build()
    # several Sphinx applications in one process register docutils nodes and
    # directives again: those lines are about the test, not the page
    lines = [line for line in warnings.getvalue().splitlines()
             if line.strip() and "already registered" not in line]
    return "\n".join(lines), (out / "index.html").read_text(encoding="utf-8")


def test_present_screenshot_is_a_linked_figure(tmp_path, monkeypatch):
    warnings, html = _build(tmp_path, monkeypatch, with_file=True, required=True)
    assert not warnings
    assert 'class="screenshot' in html and f'alt="{ALT}"' in html
    assert "The panel after a few strokes." in html
    # shown scaled down by CSS, the picture links to its full-size copy
    assert 'href="_images/shot.png"' in html and 'src="_images/shot.png"' in html
    assert (tmp_path / "html" / "_images" / "shot.png").is_file()
    assert "Screenshot not made yet" not in html


def test_missing_screenshot_fails_when_required(tmp_path, monkeypatch):
    warnings, html = _build(tmp_path, monkeypatch, with_file=False, required=True)
    # an error (sphinx-build -W fails on it) that says how to make the file
    assert "ERROR" in warnings and "_generated/shot.png is missing" in warnings
    assert "test_napari_screenshots.py" in warnings and "<img" not in html


def test_missing_screenshot_is_a_note_locally(tmp_path, monkeypatch):
    warnings, html = _build(tmp_path, monkeypatch, with_file=False, required=False)
    assert not warnings
    assert "Screenshot not made yet" in html and "test_napari_screenshots.py" in html
    assert "<img" not in html


def test_alt_text_is_required(tmp_path, monkeypatch):
    warnings, html = _build(tmp_path, monkeypatch, with_file=True, required=False, alt="shot")
    assert "ERROR" in warnings and "real :alt: text" in warnings
    assert "<img" not in html
