"""The napari dock widget, in a real viewer (pytest-qt, napari's make_napari_viewer).

Needs ``pip install -e ".[napari]"`` and a display with OpenGL: run under
Xvfb (``xvfb-run -a pytest tests/test_napari_widget.py``).  Without napari
or a display the module is skipped, unless ``PIXELFOREST_REQUIRE_NAPARI=1``
(set by ``.ci/run``) makes that a failure.  Painting goes through napari's
own Labels API (``paint``, ``data_setitem``).  A screenshot of the widget
on a real sample is written to
``docs/_build/html/_screenshots/napari-widget.png``, and one of its objects
(counted, classified from clicks, their table) to ``napari-objects.png``.
"""

import os
import threading
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

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
        _unavailable(f"napari tests need pip install -e \".[napari]\" ({exc})")
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    _unavailable("napari tests need a display: run them under xvfb-run -a")

from pixelforest import PixelClassifier, datasets
from pixelforest.classify.scribbles import simulate_scribbles
from pixelforest.errors import (
    Cancelled,
    DataUnavailableError,
    InvalidParameterError,
    NotFittedError,
)
from pixelforest.evaluate.metrics import dice, iou
from pixelforest.napari.live import uncertainty
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QProgressBar, QPushButton

pytestmark = [
    pytest.mark.napari,
    # napari, vispy and pydantic deprecate things among themselves
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:System theme detection:UserWarning"),
]

SCREENSHOT = (Path(__file__).resolve().parents[1] / "docs" / "_build" / "html"
              / "_screenshots" / "napari-widget.png")

#: Generous bound on waiting for the background worker; never a timing assertion.
WAIT_MS = 120_000


def _sample(name):
    try:
        return datasets.load_sample(name)
    except DataUnavailableError as exc:
        if REQUIRED or os.environ.get("CI"):
            raise
        pytest.skip(f"sample data unavailable: {exc}")


@pytest.fixture(scope="module")
def small():
    """A real 256 x 256 fluorescence sample, its reference and simulated scribbles."""
    image, labels = _sample("1a75e9f15481")
    return image, labels, simulate_scribbles(labels, random_state=0)


def _widget(viewer):
    from pixelforest.napari import PixelClassifierWidget

    widget = PixelClassifierWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Pixel classifier")
    return widget


def _strokes(scribbles):
    """The strokes of a scribble image: one (class, pixel indices) per connected component."""
    from scipy import ndimage as ndi

    out = []
    for value in np.unique(scribbles[scribbles > 0]):
        comp, n = ndi.label(scribbles == value)
        out += [(int(value), np.nonzero(comp == k)) for k in range(1, n + 1)]
    return out


def _paint(layer, scribbles):
    """Paint each stroke of ``scribbles`` on ``layer`` with ``data_setitem`` (napari's API)."""
    for value, where in _strokes(scribbles):
        layer.data_setitem(where, value)


def _painted(make_napari_viewer, image, scribbles):
    """A viewer with ``image`` as "nuclei" and the widget, Live off, ``scribbles`` painted."""
    viewer = make_napari_viewer()
    viewer.add_image(image, name="nuclei")
    widget = _widget(viewer)
    widget.live = False
    _paint(widget.scribbles_layer, scribbles)
    return viewer, widget


def _expected(image, scribbles, **params):
    clf = PixelClassifier(**params).fit(image, scribbles)
    return clf.predict(image), uncertainty(clf.predict_proba(image))


def _check(widget, image, **params):
    labels, unc = _expected(image, widget.scribbles_layer.data, **params)
    assert np.array_equal(widget.prediction_layer.data, labels)
    assert np.array_equal(widget.uncertainty_layer.data, unc)


def test_opens_ready_to_paint_on_the_newest_image(make_napari_viewer, small):
    image, _, _ = small
    viewer = make_napari_viewer()
    viewer.add_image(image[::-1].copy(), name="older")
    viewer.add_image(image, name="newest")
    widget = _widget(viewer)
    assert widget.image_layer.name == "newest"
    names = [layer.name for layer in viewer.layers]
    assert {"scribbles", "prediction", "uncertainty"} <= set(names)
    assert viewer.layers.selection.active is widget.scribbles_layer
    assert widget.scribbles_layer.mode == "paint"
    assert widget.scribbles_layer.selected_label == 1
    assert widget.class_names == {1: "background", 2: "foreground"}
    assert widget.live
    assert widget.model.get_params() == PixelClassifier().get_params()
    assert widget.scribbles_layer.data.shape == image.shape


def test_live_strokes_follow_the_library(make_napari_viewer, qtbot, small):
    image, _, scribbles = small
    viewer = make_napari_viewer()
    viewer.add_image(image, name="nuclei")
    widget = _widget(viewer)
    layer = widget.scribbles_layer
    strokes = _strokes(scribbles)
    fit_threads = []
    fit = widget._trainer.fit

    def recording_fit(*args, **kwargs):
        fit_threads.append(threading.current_thread())
        return fit(*args, **kwargs)

    widget._trainer.fit = recording_fit
    background = next(w for v, w in strokes if v == 1)
    foreground = [w for v, w in strokes if v == 2]
    layer.data_setitem(background, 1)
    with qtbot.waitSignal(widget.updated, timeout=WAIT_MS):
        layer.data_setitem(foreground[0], 2)
    _check(widget, image)
    assert fit_threads and all(t is not threading.main_thread() for t in fit_threads)
    # a brush stroke with napari's paint()
    layer.brush_size = 3
    layer.selected_label = 2
    with qtbot.waitSignal(widget.updated, timeout=WAIT_MS):
        ys, xs = foreground[1]
        layer.paint((int(ys[len(ys) // 2]), int(xs[len(xs) // 2])), 2)
    _check(widget, image)
    assert widget.model.get_params() == PixelClassifier().get_params()
    assert widget.last_timings["whole"] > 0


def test_new_stroke_cancels_stale_work(make_napari_viewer, qtbot, small):
    image, _, scribbles = small
    viewer = make_napari_viewer()
    viewer.add_image(image, name="nuclei")
    widget = _widget(viewer)
    strokes = _strokes(scribbles)
    done = []
    widget.updated.connect(lambda: done.append(widget.scribbles_layer.data.copy()))
    # first two strokes: a background job starts (the GUI does not wait for it)
    widget.scribbles_layer.data_setitem(strokes[0][1], strokes[0][0])
    widget.scribbles_layer.data_setitem(strokes[-1][1], strokes[-1][0])
    widget.update(wait=False)
    # more strokes before any result reached the GUI: that job is stale
    with qtbot.waitSignal(widget.updated, timeout=WAIT_MS):
        for value, where in strokes[1:-1]:
            widget.scribbles_layer.data_setitem(where, value)
    assert len(done) == 1
    assert np.array_equal(done[0], scribbles)
    _check(widget, image)


def test_erasing_and_wait_update(make_napari_viewer, small):
    image, _, scribbles = small
    viewer, widget = _painted(make_napari_viewer, image, scribbles)
    model = widget.update(wait=True)
    assert model is widget.model
    _check(widget, image)
    # erase one stroke (label 0 through napari's API)
    _, where = _strokes(scribbles)[-1]
    widget.scribbles_layer.data_setitem(where, 0)
    widget.update(wait=True)
    _check(widget, image)
    assert not np.any(widget.scribbles_layer.data[where])


def test_classes_added_and_renamed(make_napari_viewer, qtbot, small):
    image, labels, scribbles = small
    viewer, widget = _painted(make_napari_viewer, image, scribbles)
    value = widget.add_class("border")
    assert value == 3 and widget.scribbles_layer.selected_label == 3
    widget.rename_class(2, "nucleus")
    border = np.zeros(image.shape, bool)
    border[labels > 0] = True
    from scipy import ndimage as ndi

    ring = ndi.binary_dilation(border, iterations=2) & ~border
    ys, xs = np.nonzero(ring)
    widget.scribbles_layer.data_setitem((ys[::40], xs[::40]), 3)
    widget.update(wait=True)
    assert widget.model.classes_.tolist() == [1, 2, 3]
    assert widget.prediction_layer.metadata["class_names"] == {
        1: "background", 2: "nucleus", 3: "border"}
    _check(widget, image)


def test_feature_preset_choice(make_napari_viewer, small):
    image, _, scribbles = small
    viewer = make_napari_viewer()
    viewer.add_image(image, name="nuclei")
    widget = _widget(viewer)
    widget.live = False
    widget.feature_preset = "small"
    _paint(widget.scribbles_layer, scribbles)
    widget.update(wait=True)
    assert widget.model.features == "small"
    _check(widget, image, features="small")


def test_save_load_export(make_napari_viewer, qtbot, small, tmp_path):
    from pixelforest.io.images import imread

    image, _, scribbles = small
    viewer, widget = _painted(make_napari_viewer, image, scribbles)
    widget.update(wait=True)
    expected = widget.prediction_layer.data.copy()
    widget.save_model(tmp_path / "model.skops")
    widget.export_prediction(tmp_path / "prediction.tif")
    assert np.array_equal(imread(tmp_path / "prediction.tif"), expected)
    # a fresh widget, the loaded model predicts the image in the background
    viewer2 = make_napari_viewer()
    viewer2.add_image(image, name="nuclei")
    other = _widget(viewer2)
    with qtbot.waitSignal(other.updated, timeout=WAIT_MS):
        other.load_model(tmp_path / "model.skops")
    assert np.array_equal(other.prediction_layer.data, expected)


def test_rgb_histology(make_napari_viewer, small):
    image, labels = _sample("a7f767ca9770")
    scribbles = simulate_scribbles(labels, random_state=0)
    viewer = make_napari_viewer()
    viewer.add_image(image, name="histology", rgb=True)
    widget = _widget(viewer)
    widget.live = False
    assert widget.scribbles_layer.data.shape == image.shape[:2]
    _paint(widget.scribbles_layer, scribbles)
    widget.update(wait=True)
    assert widget.model.channel_axis == -1
    _check(widget, image, channel_axis=-1)


def test_scribbles_on_two_images_train_one_model(make_napari_viewer, qtbot, small):
    image, _, scribbles = small
    image2, labels2 = _sample("785555c0cbb4")
    scribbles2 = simulate_scribbles(labels2, random_state=1)
    viewer = make_napari_viewer()
    first = viewer.add_image(image, name="one")
    widget = _widget(viewer)
    widget.live = False
    _paint(widget.scribbles_layer, scribbles)
    second = viewer.add_image(image2, name="two")
    widget.set_image_layer(second)
    assert widget.image_layer is second
    _paint(widget.scribbles_layer, scribbles2)
    widget.update(wait=True)
    ref = PixelClassifier().fit([image, image2], [scribbles, scribbles2])
    assert np.array_equal(widget.prediction_layer.data, ref.predict(image2))
    # back to the first image: its prediction is that of the same model
    with qtbot.waitSignal(widget.updated, timeout=WAIT_MS):
        widget.set_image_layer(first)
    assert np.array_equal(widget.prediction_layer.data, ref.predict(image))


def test_3d_stack_painted_slice_by_slice(make_napari_viewer, small):
    volume, labels = datasets.synthetic_nuclei((24, 64, 64), 8, 0)
    viewer = make_napari_viewer()
    viewer.add_image(volume, name="stack")
    widget = _widget(viewer)
    widget.live = False
    widget.feature_preset = "small"   # the default's halo (40 px) is deeper than the stack
    assert widget.scribbles_layer.data.shape == volume.shape
    viewer.dims.set_current_step(0, 8)
    widget.scribbles_layer.paint((8, 3, 3), 1)
    ys, xs = np.nonzero(labels[8] > 0)
    widget.scribbles_layer.data_setitem((np.full(ys.size, 8), ys, xs), 2)
    assert widget.visible_region()[0] == slice(8, 9)
    widget.update(wait=True)
    _check(widget, volume, features="small")


def test_reference_scores(make_napari_viewer, small):
    image, labels, scribbles = small
    viewer = make_napari_viewer()
    viewer.add_image(image, name="nuclei")
    reference = viewer.add_labels(labels, name="reference")
    widget = _widget(viewer)
    widget.live = False
    _paint(widget.scribbles_layer, scribbles)
    widget.update(wait=True)
    widget.set_reference_layer(reference)
    pred = widget.prediction_layer.data == 2
    assert widget.scores() == {"iou": float(iou(pred, labels > 0)),
                               "dice": float(dice(pred, labels > 0))}
    assert widget.scores()["iou"] > 0.7


def test_plugin_is_registered(make_napari_viewer):
    import npe2

    manifest = npe2.PluginManager.instance().get_manifest("pixelforest")
    assert [w.display_name for w in manifest.contributions.widgets] == ["Pixel classifier"]
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((64, 64), np.float32), name="blank")
    _, widget = viewer.window.add_plugin_dock_widget("pixelforest", "Pixel classifier")
    from pixelforest.napari import PixelClassifierWidget

    assert isinstance(widget, PixelClassifierWidget)
    assert widget.image_layer.name == "blank"


def test_screenshot_on_a_real_sample(make_napari_viewer, qtbot):
    image, labels = _sample("bde3727f3a9e")
    scribbles = simulate_scribbles(labels, random_state=0)
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1500, 850)
    viewer.add_image(image, name="nuclei (DSB2018 bde3727f3a9e)")
    widget = _widget(viewer)
    strokes = _strokes(scribbles)
    background = [s for s in strokes if s[0] == 1][:2]
    foreground = [s for s in strokes if s[0] == 2][:6]
    for value, where in background + foreground[:-1]:
        widget.scribbles_layer.data_setitem(where, value)
    with qtbot.waitSignal(widget.updated, timeout=WAIT_MS):
        value, where = foreground[-1]
        widget.scribbles_layer.data_setitem(where, value)
    _check(widget, image)
    viewer.reset_view()
    qtbot.wait(200)  # let the canvas draw (not an assertion)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shot = viewer.screenshot(str(SCREENSHOT), canvas_only=False)
    assert shot.shape[0] > 400 and shot.shape[1] > 800
    # the objects: counted, two classes clicked, the table dock
    with qtbot.waitSignal(widget.objects_counted, timeout=WAIT_MS):
        widget.count_objects()
    objects = widget.objects_layer.data
    table = widget.objects_table.sort_values("area")
    for label in table["label"].tolist()[:3]:
        _click(widget.objects_layer, _inside(objects, label))
    widget.selected_object_class = 2
    with qtbot.waitSignal(widget.objects_classified, timeout=WAIT_MS):
        for label in table["label"].tolist()[-3:]:
            _click(widget.objects_layer, _inside(objects, label))
    viewer.layers["prediction"].visible = False
    qtbot.wait(200)  # let the canvas draw (not an assertion)
    shot = viewer.screenshot(str(SCREENSHOT.with_name("napari-objects.png")), canvas_only=False)
    assert shot.shape[0] > 400 and shot.shape[1] > 800


def test_stroke_scores_and_where_to_paint_next(make_napari_viewer, qtbot, small):
    image, _, scribbles = small
    viewer, widget = _painted(make_napari_viewer, image, scribbles)
    widget.update(wait=True)
    scores = widget.stroke_scores(wait=True)
    assert scores["strokes"] == len(_strokes(scribbles)) - scores["skipped"] > 0
    assert 0 <= scores["mean"] <= 1
    point = widget.go_to_uncertain()
    from scipy import ndimage as ndi

    window = ndi.uniform_filter(widget.uncertainty_layer.data, size=32, mode="constant")
    assert window[point] == window.max()   # the whole image is in view
    assert np.allclose(viewer.layers["paint next"].data[0], point)
    assert viewer.layers.selection.active is widget.scribbles_layer


def _camera(viewer):
    """The viewer's camera model (``viewer.scene.camera`` since napari 0.9)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def _view_size(region):
    return [s.stop - s.start for s in region]


def test_camera_move_restarts_the_prediction_at_the_new_view(make_napari_viewer, qtbot, small):
    image, _, scribbles = small
    mosaic = np.block([[image, image[:, ::-1]], [image[::-1], image[::-1, ::-1]]])
    painted = np.zeros(mosaic.shape, np.uint8)
    painted[:256, :256] = scribbles
    viewer = make_napari_viewer(show=True)
    viewer.add_image(mosaic, name="mosaic")
    widget = _widget(viewer)
    widget.live = False
    widget.region_block = 128
    _paint(widget.scribbles_layer, painted)
    camera = _camera(viewer)
    camera.center = (64.0, 64.0)
    camera.zoom = 4.0 * camera.zoom
    qtbot.waitUntil(lambda: _view_size(widget.visible_region()) < [512, 512], timeout=WAIT_MS)
    first_view = widget.visible_region()
    fits, regions = [], []
    gate = threading.Event()
    fit, predict_region = widget._trainer.fit, widget._trainer.predict_region

    def counting_fit(*args, **kwargs):
        fits.append(1)
        return fit(*args, **kwargs)

    def gated_region(clf, key, image, where, **kwargs):
        regions.append(where)
        if len(regions) == 1:       # hold the first region until the camera has moved
            gate.wait(WAIT_MS / 1000)
        return predict_region(clf, key, image, where, **kwargs)

    widget._trainer.fit = counting_fit
    widget._trainer.predict_region = gated_region
    widget.update(wait=False)
    qtbot.waitUntil(lambda: len(regions) == 1, timeout=WAIT_MS)
    assert regions[0] == first_view
    # pan to the far corner and zoom out a little while the worker is busy
    camera.center = (448.0, 448.0)
    camera.zoom = camera.zoom / 2
    qtbot.waitUntil(lambda: widget.visible_region()[0].stop == 512, timeout=WAIT_MS)
    new_view = widget.visible_region()
    assert not set(range(new_view[0].start, 512)) & set(range(first_view[0].stop))
    with qtbot.waitSignal(widget.updated, timeout=WAIT_MS):
        gate.set()
    assert regions[1] == new_view            # the new view next, not the old order
    assert len(fits) == 1                    # no retraining
    _check(widget, mosaic)
    ref = PixelClassifier().fit(mosaic, painted)
    assert np.array_equal(widget.prediction_layer.data, ref.predict(mosaic))


def test_changing_slice_restarts_the_prediction_at_the_new_slice(make_napari_viewer, qtbot):
    volume, labels = datasets.synthetic_nuclei((24, 64, 64), 8, 0)
    viewer = make_napari_viewer()
    viewer.add_image(volume, name="stack")
    widget = _widget(viewer)
    widget.live = False
    widget.feature_preset = "small"
    viewer.dims.set_current_step(0, 8)
    widget.scribbles_layer.paint((8, 3, 3), 1)
    ys, xs = np.nonzero(labels[8] > 0)
    widget.scribbles_layer.data_setitem((np.full(ys.size, 8), ys, xs), 2)
    regions, gate = [], threading.Event()
    predict_region = widget._trainer.predict_region

    def gated_region(clf, key, image, where, **kwargs):
        regions.append(where)
        if len(regions) == 1:
            gate.wait(WAIT_MS / 1000)
        return predict_region(clf, key, image, where, **kwargs)

    widget._trainer.predict_region = gated_region
    widget.update(wait=False)
    qtbot.waitUntil(lambda: len(regions) == 1, timeout=WAIT_MS)
    assert regions[0][0] == slice(8, 9)
    viewer.dims.set_current_step(0, 20)       # another slice while the worker is busy
    with qtbot.waitSignal(widget.updated, timeout=WAIT_MS):
        gate.set()
    assert regions[1] == (slice(20, 21), slice(0, 64), slice(0, 64))
    _check(widget, volume, features="small")


def _image_folder(folder, images):
    from pixelforest.io.images import imwrite

    folder.mkdir()
    for k, img in enumerate(images):
        imwrite(folder / f"img{k}.tif", img)
    return sorted(folder.iterdir())


def test_apply_to_folder_progress_cancel_and_resume(make_napari_viewer, qtbot, small, tmp_path,
                                                    monkeypatch):
    from pixelforest.io.images import imread
    from pixelforest.scale import batch

    image, _, scribbles = small
    images = [image, image[::-1].copy(), image[:, ::-1].copy(), image.T.copy()]
    inputs = _image_folder(tmp_path / "in", images)
    out = tmp_path / "out"
    viewer = make_napari_viewer()
    viewer.add_image(image, name="nuclei")
    widget = _widget(viewer)
    widget.live = False
    with pytest.raises(NotFittedError):
        widget.apply_to_folder(tmp_path / "in", out)
    _paint(widget.scribbles_layer, scribbles)
    model = widget.update(wait=True)
    # the second file starts once Cancel has been clicked (no race with the batch
    # thread): the cancel reaches it through predict_files' cancel event, so it
    # stops at its first block and leaves no output
    calls, clicked = [], threading.Event()
    original = batch.predict_files

    def predict_files(*args, **kwargs):
        calls.append(threading.current_thread())
        if len(calls) == 2:
            clicked.wait(WAIT_MS / 1000)
        return original(*args, **kwargs)

    monkeypatch.setattr(batch, "predict_files", predict_files)
    steps = []
    widget.batch_progress.connect(lambda n, total: steps.append((n, total)))
    cancel = widget.findChild(QPushButton, "cancel_batch")
    assert not cancel.isEnabled()
    future = widget.apply_to_folder(tmp_path / "in", out)
    assert cancel.isEnabled() and not future.done()    # the GUI thread did not wait
    qtbot.waitUntil(lambda: len(calls) == 2, timeout=WAIT_MS)
    with pytest.raises(InvalidParameterError, match="already running"):
        widget.apply_to_folder(tmp_path / "in", out)
    with qtbot.waitSignal(widget.batch_finished, timeout=WAIT_MS) as finished:
        qtbot.mouseClick(cancel, Qt.LeftButton)
        clicked.set()
    assert all(t is not threading.main_thread() for t in calls)
    report = finished.args[0]
    assert isinstance(future.exception(), Cancelled)
    assert len(calls) == 2 and len(report.written) == 1
    written = sorted(p.name for p in out.iterdir())
    assert written == ["img0.tif"]     # complete outputs only, no temporaries
    for name in written:
        k = int(name[3])
        assert np.array_equal(imread(out / name), model.predict(images[k]))
    assert steps[-1] == (1, 4)
    assert "cancelled" in widget._batch_label.text()
    # a second run skips the finished files and reaches 100 %
    monkeypatch.setattr(batch, "predict_files", original)
    report = widget.apply_to_folder(tmp_path / "in", out, wait=True)
    assert [p.name for _, p in report.skipped] == ["img0.tif"]
    assert [p.name for _, p in report.written] == ["img1.tif", "img2.tif", "img3.tif"]
    assert report.ok and widget.last_batch_report is report
    bar = widget.findChild(QProgressBar, "batch_progress")
    assert bar.value() == bar.maximum() == len(inputs)
    for k in (1, 2, 3):
        assert np.array_equal(imread(out / f"img{k}.tif"), model.predict(images[k]))


def test_apply_to_folder_button(make_napari_viewer, qtbot, small, tmp_path, monkeypatch):
    from qtpy.QtWidgets import QFileDialog

    image, _, scribbles = small
    _image_folder(tmp_path / "in", [image, image[::-1].copy()])
    viewer, widget = _painted(make_napari_viewer, image, scribbles)
    widget.update(wait=True)
    answers = iter([str(tmp_path / "in"), str(tmp_path / "out")])
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *args, **kwargs: next(answers)))
    with qtbot.waitSignal(widget.batch_finished, timeout=WAIT_MS) as finished:
        qtbot.mouseClick(widget.findChild(QPushButton, "apply_to_folder"), Qt.LeftButton)
    assert len(finished.args[0].written) == 2
    bar = widget.findChild(QProgressBar, "batch_progress")
    assert bar.value() == bar.maximum() == 2
    # the folder of the images is refused as the output (it would mix inputs and outputs)
    with pytest.raises(InvalidParameterError):
        widget.apply_to_folder(tmp_path / "in", tmp_path / "in", wait=True)


class _MouseEvent:
    """A mouse event for napari's layer callbacks (like the viewer's: its fields can be swapped)."""

    def __init__(self, **fields):
        defaults = dict(button=1, modifiers=[], is_dragging=False, view_direction=None,
                        dims_displayed=[0, 1], handled=False)
        self.__wrapped__ = SimpleNamespace(**{**defaults, **fields})

    def __getattr__(self, name):
        return getattr(self.__wrapped__, name)


def _click(layer, position, *, drag_to=None):
    """Press and release the mouse on ``layer`` at data ``position`` (optionally dragging)."""
    from napari.utils.interactions import (
        mouse_move_callbacks,
        mouse_press_callbacks,
        mouse_release_callbacks,
    )

    pos = np.asarray(position, float)[::-1]
    event = _MouseEvent(type="mouse_press", position=tuple(map(float, position)), pos=pos)
    mouse_press_callbacks(layer, event)
    if drag_to is not None:
        end = np.asarray(drag_to, float)
        mouse_move_callbacks(layer, _MouseEvent(type="mouse_move", is_dragging=True,
                                                position=tuple(end), pos=end[::-1]))
        pos = end[::-1]
    mouse_release_callbacks(layer, _MouseEvent(type="mouse_release", position=tuple(position),
                                               pos=pos))


def test_count_measure_and_classify_objects(make_napari_viewer, qtbot, small, tmp_path):
    import pandas as pd

    from pixelforest.objects import measure
    from pixelforest.objects.classifier import ObjectClassifier

    image, _, scribbles = small
    viewer, widget = _painted(make_napari_viewer, image, scribbles)
    model = widget.update(wait=True)
    threads = []
    predict_instances = model.predict_instances

    def recording(*args, **kwargs):
        threads.append(threading.current_thread())
        return predict_instances(*args, **kwargs)

    model.predict_instances = recording
    with qtbot.waitSignal(widget.objects_counted, timeout=WAIT_MS):
        widget.count_objects()
    assert threads and all(t is not threading.main_thread() for t in threads)
    labels = PixelClassifier().fit(image, scribbles).predict_instances(image)
    assert np.array_equal(widget.objects_layer.data, labels)
    table = measure(labels, image)
    pd.testing.assert_frame_equal(widget.objects_table, table)
    from pixelforest.napari._widget import ObjectsTable

    dock = viewer.window.dock_widgets["Objects"]
    assert isinstance(dock, ObjectsTable) and dock.model.rowCount() == len(table) >= 10
    assert dock.cell(0, "area") == str(table["area"].iloc[0])
    assert f"{len(table)} objects, mean area {table['area'].mean():.1f} px" in dock.summary.text()
    # click the two largest objects as class 2, the two smallest as class 1
    order = table.sort_values("area")["label"].tolist()
    layer = widget.objects_layer
    assert widget.selected_object_class == 1
    for label in order[:2]:
        _click(layer, _inside(labels, label))
    assert widget.object_annotations == {order[0]: 1, order[1]: 1}
    assert widget.object_model is None        # one class only: nothing to train yet
    # a drag pans the view: no class given
    _click(layer, _inside(labels, order[2]), drag_to=(0.0, 0.0))
    assert order[2] not in widget.object_annotations
    widget.selected_object_class = 2
    _click(layer, _inside(labels, order[-1]))
    with qtbot.waitSignal(widget.objects_classified, timeout=WAIT_MS):
        _click(layer, _inside(labels, order[-2]))
    annotations = {order[0]: 1, order[1]: 1, order[-1]: 2, order[-2]: 2}
    assert widget.object_annotations == annotations
    ref = ObjectClassifier().fit_table(table, annotations).predict_table(table)
    assert widget.objects_table["class"].tolist() == ref.tolist()
    lut = np.zeros(labels.max() + 1, np.uint8)
    lut[table["label"].to_numpy()] = ref.to_numpy()
    assert np.array_equal(widget.object_classes_layer.data, lut[labels])
    assert {1, 2} <= set(ref.tolist())
    # a third class, assigned from a script, waits for the classifier
    value = widget.add_object_class("clump")
    widget.assign_object_class(order[len(order) // 2], value, wait=True)
    assert widget.object_model.classes_.tolist() == [1, 2, 3]
    classes = [dock.cell(i, "class") for i in range(dock.model.rowCount())]
    assert "clump" in classes and set(classes) <= {"class 1", "class 2", "clump"}
    annotated = {int(dock.cell(i, "label")): dock.cell(i, "annotated")
                 for i in range(dock.model.rowCount())}
    assert annotated[order[-1]] == "class 2" and annotated[order[2]] == ""
    # saved as OME-Zarr labels (classes named per object) with the table beside
    from pixelforest.io.ngff import read_ome_zarr_labels

    written = widget.export_objects(tmp_path / "objects.ome.zarr")
    assert written == [tmp_path / "objects.ome.zarr", tmp_path / "objects.csv"]
    back, info = read_ome_zarr_labels(written[0])
    assert np.array_equal(back, labels) and info["name"] == "objects"
    names = {1: "class 1", 2: "class 2", 3: "clump"}
    assert info["class_names"] == {int(k): names[int(v)] for k, v in
                                   zip(table["label"], widget.objects_table["class"])}
    csv = pd.read_csv(written[1])
    assert csv["label"].tolist() == table["label"].tolist()
    assert csv["class"].tolist() == classes
    # the object classifier as a model file, for pixelforest classify-objects
    from pixelforest.io.model_file import load_object_model

    widget.export_objects(tmp_path / "objects.skops")
    loaded = load_object_model(tmp_path / "objects.skops")
    assert loaded.predict_table(table).tolist() == widget.objects_table["class"].tolist()


def _inside(labels, label):
    """A pixel of object ``label`` (the one farthest from its border)."""
    from scipy import ndimage as ndi

    inside = ndi.distance_transform_edt(labels == label)
    return tuple(float(v) for v in np.unravel_index(int(np.argmax(inside)), labels.shape))


def test_export_prediction_as_ome_zarr_labels(make_napari_viewer, small, tmp_path):
    import importlib.util

    import zarr

    from pixelforest.errors import UnsupportedFormatError
    from pixelforest.io.ngff import read_ome_zarr_labels

    image, _, scribbles = small
    viewer = make_napari_viewer()
    viewer.add_image(image, name="nuclei", scale=(0.5, 0.5))
    widget = _widget(viewer)
    widget.live = False
    _paint(widget.scribbles_layer, scribbles)
    widget.update(wait=True)
    widget.rename_class(2, "nucleus")
    out = tmp_path / "nuclei.ome.zarr"
    widget.export_prediction(out)
    labels, info = read_ome_zarr_labels(out)
    assert np.array_equal(labels, widget.prediction_layer.data)
    assert info["name"] == "prediction" and info["source"] is not None
    assert info["class_names"] == {1: "background", 2: "nucleus"}
    assert info["spacing"] == (0.5, 0.5)
    # the NGFF keys, read with zarr alone
    root = zarr.open_group(out, mode="r")
    ome = root.attrs["ome"]
    assert [a["name"] for a in ome["multiscales"][0]["axes"]] == ["y", "x"]
    assert np.array_equal(root[ome["multiscales"][0]["datasets"][0]["path"]][...], image)
    assert root["labels"].attrs["ome"]["labels"] == ["prediction"]
    label = root["labels/prediction"].attrs["ome"]["image-label"]
    colors = {c["label-value"]: c["rgba"] for c in label["colors"]}
    assert colors[2][:3] == [255, 210, 31]          # the widget's foreground yellow
    assert {p["label-value"]: p["class"] for p in label["properties"]} == {
        1: "background", 2: "nucleus"}
    if importlib.util.find_spec("napari_ome_zarr") is not None:
        with warnings.catch_warnings():  # the reader's colour map has no default colour
            warnings.filterwarnings("ignore", "color_dict did not provide a default",
                                    UserWarning)
            layers = viewer.open(out, plugin="napari-ome-zarr")
        opened = [lay for lay in layers if lay.__class__.__name__ == "Labels"]
        assert len(opened) == 1
        data = opened[0].data
        data = data[0] if opened[0].multiscale else data
        assert np.array_equal(np.asarray(data), widget.prediction_layer.data)
    with pytest.raises(UnsupportedFormatError):
        widget.export_prediction(tmp_path / "prediction.png")


def test_objects_of_an_anisotropic_stack(make_napari_viewer, qtbot):
    from pixelforest.objects import measure

    volume, labels = datasets.synthetic_nuclei((24, 64, 64), 8, 0)
    viewer = make_napari_viewer()
    viewer.add_image(volume, name="stack", scale=(2.0, 0.5, 0.5))
    widget = _widget(viewer)
    widget.live = False
    widget.feature_preset = "small"
    viewer.dims.set_current_step(0, 8)
    widget.scribbles_layer.paint((8, 3, 3), 1)
    ys, xs = np.nonzero(labels[8] > 0)
    widget.scribbles_layer.data_setitem((np.full(ys.size, 8), ys, xs), 2)
    model = widget.update(wait=True)
    objects, table = widget.count_objects(wait=True)
    expected = model.predict_instances(volume, spacing=(2.0, 0.5, 0.5))
    assert np.array_equal(objects, expected) and objects.max() > 0
    assert np.array_equal(widget.objects_layer.data, expected)
    assert tuple(widget.objects_layer.scale) == (2.0, 0.5, 0.5)
    ref = measure(expected, volume, spacing=(2.0, 0.5, 0.5))
    assert table["volume_physical"].tolist() == ref["volume_physical"].tolist()
    assert np.allclose(table["volume_physical"], table["volume"] * 0.5)
