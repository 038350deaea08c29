"""Screenshots of the pixelforest napari widget for the lesson, from a real viewer.

The lesson's Part 5 ("Paint your own labels in napari") shows the
*Pixel classifier* widget the way a learner sees it.  Those pictures are
made here, in a real napari viewer (Qt, OpenGL; headless under Xvfb), on
the lesson's own image, painted through napari's Labels API, so they can
never fall out of date with the widget::

    PIXELFOREST_DATA_DIR=../shared/data xvfb-run -a -s "-screen 0 1920x1080x24" \\
        python docs/_ext/napari_screenshots.py docs/_generated

``.ci/run`` runs ``tests/docs/test_napari_screenshots.py`` (which calls
:func:`make_screenshots` and checks what it drew) *before* the docs build;
the page embeds the files with the ``pixelforest-screenshot`` directive
(``pixelforest_docs.py``), which fails the build when one is missing and
``PIXELFOREST_REQUIRE_SCREENSHOTS=1``, and otherwise shows a note saying how
to make them.

Only public API is used: napari's ``Viewer``, ``window.add_plugin_dock_widget``
(the *Plugins > pixelforest > Pixel classifier* menu entry), Labels
``data_setitem``, ``viewer.screenshot``; the widget's ``scribbles_layer``,
``update(wait=True)``, ``prediction_layer``, ``uncertainty_layer`` and
``go_to_uncertain()``; Qt's ``QWidget.grab`` for the widget alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

#: The lesson's sample (the same image as docs/lessons/09-segment-with-ml.md).
SAMPLE = "243443ae303c"

#: File names written by :func:`make_screenshots`, by what they show.
FILES = {
    "strokes": "napari-widget-strokes.png",
    "uncertainty": "napari-widget-uncertainty.png",
    "panel": "napari-widget-panel.png",
}

#: Size of the napari window (pixels): wide enough for the dock widget and
#: the canvas, small enough to stay legible when the page shrinks it.
WINDOW = (1280, 760)

#: How many simulated strokes are painted: a first try, as a learner would.
N_BACKGROUND, N_FOREGROUND = 2, 5


def strokes(scribbles):
    """The strokes of a scribble image: ``[(class, pixel indices)]``, one per component."""
    from scipy import ndimage as ndi

    out = []
    for value in np.unique(scribbles[scribbles > 0]):
        components, n = ndi.label(scribbles == value)
        out += [(int(value), np.nonzero(components == k)) for k in range(1, n + 1)]
    return out


def lesson_scribbles():
    """The training half of the lesson's image and a few simulated strokes on it.

    Returns ``(training_half, [(class, pixel indices)])``: ``N_BACKGROUND``
    background (1) strokes and ``N_FOREGROUND`` nucleus (2) strokes of
    :func:`pixelforest.classify.scribbles.simulate_scribbles`.
    """
    from pixelforest import datasets
    from pixelforest.classify.scribbles import simulate_scribbles

    image, labels = datasets.load_sample(SAMPLE)
    half = image.shape[0] // 2
    scribbles = simulate_scribbles(labels[:half], random_state=0)
    found = strokes(scribbles)
    chosen = ([s for s in found if s[0] == 1][:N_BACKGROUND]
              + [s for s in found if s[0] == 2][:N_FOREGROUND])
    return image[:half], chosen


def _trim_bottom(rgb, margin=8):
    """Cut the empty rows below a widget's last control (they are all the bottom row's colour)."""
    differs = np.any(np.abs(rgb.astype(int) - rgb[-1:].astype(int)) > 8, axis=(1, 2))
    rows = np.nonzero(differs)[0]
    last = int(rows[-1]) + 1 + margin if rows.size else rgb.shape[0]
    return rgb[:min(last, rgb.shape[0])]


#: The last button of the pixel classifier's part of the panel (the panel may go
#: on with other tools below it, which Part 5 does not use).
LAST_BUTTON = "Export prediction..."


def _panel_grab(widget):
    """The widget as a picture, down to the row of :data:`LAST_BUTTON` (all if absent)."""
    from qtpy.QtCore import QPoint, QRect
    from qtpy.QtWidgets import QPushButton

    buttons = [b for b in widget.findChildren(QPushButton) if b.text() == LAST_BUTTON]
    if not buttons:
        return widget.grab()
    bottom = buttons[0].mapTo(widget, QPoint(0, buttons[0].height())).y() + 3
    return widget.grab(QRect(0, 0, widget.width(), min(bottom, widget.height())))


def _settle(app, rounds=5):
    """Let Qt and vispy draw (process pending events a few times)."""
    import time

    for _ in range(rounds):
        app.processEvents()
        time.sleep(0.05)


def make_screenshots(outdir, *, viewer=None):
    """Paint a few strokes with the widget in a real viewer and save three screenshots.

    Parameters
    ----------
    outdir : path
        Folder for the files of :data:`FILES` (created if needed).
    viewer : napari.Viewer, optional
        A shown viewer to work in (a test's ``make_napari_viewer(show=True)``);
        by default one is made and closed.

    Returns
    -------
    info : dict
        ``paths`` (name -> Path of each file), ``widget`` (the
        PixelClassifierWidget), ``viewer``, ``training_half`` (the image
        painted on), ``scribbles`` (the painted label image, a copy),
        ``paint_next`` (the point ``go_to_uncertain`` chose) and the arrays
        of each screenshot (``shots``).
    """
    import napari
    from qtpy.QtWidgets import QApplication
    from skimage.io import imread, imsave

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    own = viewer is None
    if own:
        viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    try:
        viewer.window.resize(*WINDOW)
        image, chosen = lesson_scribbles()
        viewer.add_image(image, name="training half")
        # the menu entry Plugins > pixelforest > Pixel classifier does exactly this
        _, widget = viewer.window.add_plugin_dock_widget("pixelforest", "Pixel classifier")
        layer = widget.scribbles_layer
        for value, where in chosen:
            layer.data_setitem(where, value)
        widget.update(wait=True)
        viewer.reset_view()
        _settle(app)
        paths = {name: outdir / filename for name, filename in FILES.items()}
        shots = {"strokes": viewer.screenshot(str(paths["strokes"]), canvas_only=False)}
        _panel_grab(widget).save(str(paths["panel"]))
        shots["panel"] = _trim_bottom(np.asarray(imread(paths["panel"])))
        imsave(paths["panel"], shots["panel"], check_contrast=False)
        # the uncertainty, with the point "Where should I paint next?" marks
        widget.prediction_layer.visible = False
        widget.uncertainty_layer.visible = True
        point = widget.go_to_uncertain()
        viewer.reset_view()  # go_to_uncertain centres on the point; show the whole image
        _settle(app)
        shots["uncertainty"] = viewer.screenshot(str(paths["uncertainty"]), canvas_only=False)
        return {"paths": paths, "widget": widget, "viewer": viewer, "training_half": image,
                "scribbles": np.array(layer.data, copy=True), "paint_next": point,
                "shots": shots}
    finally:
        if own:
            viewer.close()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    outdir = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "_generated"
    info = make_screenshots(outdir)
    for path in info["paths"].values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
