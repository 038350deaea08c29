"""The lesson's napari screenshots, made in a real viewer and checked.

Part 5 of the lesson shows the *Pixel classifier* widget; its pictures are
made here, before the docs build (``.ci/run`` runs this file under Xvfb
first), by ``docs/_ext/napari_screenshots.py`` in a real napari viewer, and
written to ``docs/_generated/`` (git-ignored), where the page's
``pixelforest-screenshot`` directives find them::

    PIXELFOREST_REQUIRE_NAPARI=1 xvfb-run -a -s "-screen 0 1920x1080x24" \\
        pytest tests/docs/test_napari_screenshots.py -p no:cacheprovider

Without napari or a display the module is skipped, unless
``PIXELFOREST_REQUIRE_NAPARI=1`` makes that a failure.  The checks are
about what the pictures show: the widget's prediction is the library's for
the painted strokes, each file has the size the page expects, and the
second picture shows what the first does not (the uncertainty and the
*paint next* ring).
"""

import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
OUTDIR = Path(os.environ.get("PIXELFOREST_SCREENSHOT_DIR", ROOT / "docs" / "_generated"))
REQUIRED = os.environ.get("PIXELFOREST_REQUIRE_NAPARI") == "1"


def _unavailable(reason):
    if REQUIRED:
        pytest.fail(f"{reason} (PIXELFOREST_REQUIRE_NAPARI=1 makes this an error)",
                    pytrace=False)
    pytest.skip(reason, allow_module_level=True)


with warnings.catch_warnings():  # napari's dependencies warn on import
    warnings.simplefilter("ignore")
    try:
        import napari  # noqa: F401
        import pytestqt  # noqa: F401
    except ImportError as exc:
        _unavailable(f"the napari screenshots need pip install -e \".[napari]\" ({exc})")
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    _unavailable("the napari screenshots need a display: run them under xvfb-run -a")

pytestmark = [
    pytest.mark.napari,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:System theme detection:UserWarning"),
]


def _load_maker():
    path = ROOT / "docs" / "_ext" / "napari_screenshots.py"
    spec = importlib.util.spec_from_file_location("napari_screenshots", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The ring of "Where should I paint next?" (the widget's marker colour).
RING = np.array([0xff, 0x3b, 0xd1])


def _ring_pixels(shot):
    rgb = np.asarray(shot)[..., :3].astype(int)
    return int(np.sum(np.all(np.abs(rgb - RING) <= 30, axis=-1)))


@pytest.fixture(scope="module")
def maker():
    return _load_maker()


def test_screenshots_of_the_widget(make_napari_viewer, maker):
    from pixelforest import PixelClassifier

    viewer = make_napari_viewer(show=True)
    info = maker.make_screenshots(OUTDIR, viewer=viewer)
    widget = info["widget"]

    # what the pictures show is the library's answer to those strokes
    painted = info["scribbles"]
    assert set(np.unique(painted)) == {0, 1, 2}
    n_strokes = len(maker.strokes(painted))
    assert n_strokes == maker.N_BACKGROUND + maker.N_FOREGROUND
    expected = PixelClassifier().fit(info["training_half"], painted).predict(
        info["training_half"])
    assert np.array_equal(widget.prediction_layer.data, expected)
    assert widget.live, "the screenshots show the Live box ticked, as the steps say"

    # the controls Part 5's steps name are the widget's
    from qtpy.QtWidgets import QAbstractButton

    texts = {button.text() for button in widget.findChildren(QAbstractButton)}
    for named in ("Live", "Update", "Score strokes", "Where should I paint next?",
                  "Save model...", "Load model...", "Count objects"):  # (Part 6)
        assert named in texts, f"the lesson names {named!r}; the widget has {sorted(texts)}"
    assert set(widget.class_names.values()) >= {"background", "foreground"}
    lesson = (ROOT / "docs" / "lessons" / "09-segment-with-ml.md").read_text(encoding="utf-8")
    for name in maker.FILES.values():
        assert f"{{pixelforest-screenshot}} {name}" in lesson, f"the lesson does not show {name}"

    # every file the page embeds exists, with the size the page expects
    for name, path in info["paths"].items():
        assert path.is_file() and path.stat().st_size > 10_000, (name, path)
    width, height = maker.WINDOW
    for name in ("strokes", "uncertainty"):
        shot = info["shots"][name]
        assert shot.shape[1] >= 0.9 * width and shot.shape[0] >= 0.9 * height, (name, shot.shape)
    panel = info["shots"]["panel"]
    # a dock widget's width: shown about 340 px wide on a phone, at >= 75 % of its size
    assert 250 <= panel.shape[1] <= 450, panel.shape
    assert panel.shape[0] < 2 * panel.shape[1], "the panel picture is mostly empty space"
    # it ends with the row of the model buttons that step 6 uses
    assert not _ring_pixels(panel)

    # the second picture shows the uncertainty and the "paint next" ring, the first not
    point = info["paint_next"]
    assert point is not None
    assert all(0 <= p < s for p, s in zip(point, info["training_half"].shape))
    assert _ring_pixels(info["shots"]["uncertainty"]) > 200
    assert _ring_pixels(info["shots"]["strokes"]) == 0
    assert widget.uncertainty_layer.visible and not widget.prediction_layer.visible
