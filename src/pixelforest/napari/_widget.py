"""The "Pixel classifier" dock widget: paint scribbles, watch the segmentation follow.

Training and prediction run on one background thread (a plain
:class:`threading.Thread`; results come back to the GUI thread through a
queued Qt signal), so the GUI never waits for them.  Every request carries
a generation number: a new stroke starts a new generation, and work of an
older one stops at its next step (between the fit and the prediction,
and between two regions) and its results are dropped.  The region in
view is predicted first, then the rest of the image, nearest to the view
first.  A camera move (pan, zoom, another slice) while a prediction runs
makes its order stale: the pixels not yet predicted are planned again
around the new view, with the same model (no retraining), and the
regions already predicted are kept.

The numbers are those of the library: :class:`~pixelforest.napari.live.LiveTrainer`
fits what :class:`~pixelforest.classify.classifier.PixelClassifier` fits
from the same scribbles (featurizing only pixels labelled since the last
stroke), and every region is predicted through ``clf.pipeline_`` with the
whole image's normalization statistics, so the prediction layer equals
``PixelClassifier(...).fit(images, scribbles).predict(image)``.

Besides the live loop: *Export prediction...* (OME-Zarr with NGFF labels
metadata, or TIFF), *Apply to folder...* (the batch predictor on a
thread, with a progress bar and *Cancel*; see ``_batch.py``) and the
*Objects* section (count, measure and classify objects; ``_objects.py``).
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from qtpy.QtCore import QAbstractTableModel, QModelIndex, QObject, Qt, QTimer, Signal
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from pixelforest.classify.classifier import PixelClassifier
from pixelforest.errors import (
    Cancelled,
    InvalidImageError,
    InvalidParameterError,
    NotFittedError,
    PixelforestError,
    UnsupportedFormatError,
)
from pixelforest.features.spec import PRESETS
from pixelforest.napari._objects import ObjectSet, classify, object_class_color
from pixelforest.napari.live import LiveTrainer, plan_regions

__all__ = ["PixelClassifierWidget"]

#: Colours of classes 1, 2, ... (then repeated): blue-ish background, yellow
#: foreground, then matplotlib's tab10 without those two.
_PALETTE = ("#3b6fd6", "#ffd21f", "#d62728", "#2ca02c", "#9467bd", "#8c564b",
            "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")

#: What the widget marks its own layers with (``layer.metadata``).
_ROLE = "pixelforest"


def _class_color(value):
    return _PALETTE[(int(value) - 1) % len(_PALETTE)]


@dataclass(eq=False)
class _LayerSet:
    """An image layer with the scribbles, prediction and uncertainty layers made for it."""

    image: object
    scribbles: object
    prediction: object
    uncertainty: object
    key: int
    array: np.ndarray = field(default=None)


@dataclass
class _Job:
    gen: int
    train: list | None           # [(key, image, labels copy)] or None: predict only
    clf: object                  # the model to predict with when train is None
    key: int
    image: np.ndarray
    started: float


class _Bridge(QObject):
    """Carries messages from the worker thread to the GUI thread (queued connection)."""

    message = Signal(object)


class _Worker(threading.Thread):
    """One background thread running the newest job; older ones stop early."""

    def __init__(self, run):
        super().__init__(name="pixelforest-live", daemon=True)
        self._run = run
        self._cond = threading.Condition()
        self._job = None
        self._stopping = False
        self.busy = False

    def submit(self, job):
        with self._cond:
            self._job = job
            self._cond.notify()

    def stop(self):
        with self._cond:
            self._stopping = True
            self._job = None
            self._cond.notify()

    def run(self):
        while True:
            with self._cond:
                while self._job is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job, self._job = self._job, None
                self.busy = True
            try:
                self._run(job)
            finally:
                self.busy = False


class PixelClassifierWidget(QWidget):
    """Dock widget that trains a pixel classifier from scribbles, live.

    Opened on a viewer holding an image, it picks the newest image layer
    and adds three layers for it: ``scribbles`` (Labels, ready to paint;
    1 = background, 2 = foreground), ``prediction`` (Labels) and
    ``uncertainty`` (Image, hidden at first: 1 minus the margin between
    the two most probable classes).  With *Live* on (the default) every
    paint stroke retrains the forest and refreshes both, the region in view
    first.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer to work in.
    parent : QWidget, optional
        Qt parent.

    Attributes
    ----------
    updated : Signal
        Emitted (on the GUI thread) after each refresh of the whole
        prediction.
    model : PixelClassifier
        The last trained (or loaded) model; before any training, an
        unfitted classifier with the current settings (the library's
        defaults unless changed).
    class_names : dict of int to str
        Name of each scribble class.
    last_timings : dict
        Seconds from the request to the visible region (``"visible"``) and
        to the whole image (``"whole"``) of the last refresh, and the
        ``"fit"`` time.
    batch_progress, batch_finished : Signal
        Files done of the batch under way; its report when it ends.
    last_batch_report : BatchReport or None
        The report of the last *Apply to folder...*.
    objects_counted, objects_classified : Signal
        Emitted when *Count objects* has shown the objects, and when the
        object classifier has classified them.

    Examples
    --------
    In a script or a test (``update(wait=True)`` trains and predicts
    synchronously)::

        viewer = napari.Viewer()
        viewer.add_image(image)
        widget = PixelClassifierWidget(viewer)
        widget.scribbles_layer.data_setitem(background_pixels, 1)
        widget.scribbles_layer.data_setitem(nucleus_pixels, 2)
        widget.update(wait=True)
        mask = widget.prediction_layer.data == 2
    """

    updated = Signal()
    #: ``(n_done, n_total)`` files of the batch under way (GUI thread).
    batch_progress = Signal(int, int)
    #: The :class:`~pixelforest.scale.batch.BatchReport` of a finished or
    #: cancelled batch (GUI thread).
    batch_finished = Signal(object)
    #: Emitted (GUI thread) when *Count objects* has shown the objects and their table.
    objects_counted = Signal()
    #: Emitted (GUI thread) when the object classifier has classified every object.
    objects_classified = Signal()

    #: Side of the regions predicted after the one in view (the engine's
    #: ``block``); a camera move takes effect at the next region.
    region_block = 1024

    def __init__(self, viewer: napari.viewer.Viewer, parent=None):  # noqa: F821
        super().__init__(parent)
        self.viewer = viewer
        self.class_names = {1: "background", 2: "foreground"}
        self.last_timings = {}
        self.last_error = None
        self.last_stroke_scores = None
        self.last_batch_report = None
        self._batch = None       # (cancel event, future) of the batch under way
        self._sets = {}          # id(image layer) -> _LayerSet
        self._current = None     # the _LayerSet shown
        self._gen = 0
        self._next_key = 0
        self._visible = None
        self._view_gen = 0       # counts changes of the region in view
        self._loaded = None      # a model from a file, used until the next training
        self._trainer = LiveTrainer(self._make_classifier())
        self.model = self._make_classifier()
        self._bridge = _Bridge()
        self._bridge.message.connect(self._on_message)
        self._worker = None
        self._refresh_pending = set()
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(0)
        self._refresh_timer.timeout.connect(self._flush_refresh)
        self._stroke_timer = QTimer(self)  # coalesces the paint events of one event-loop turn
        self._stroke_timer.setSingleShot(True)
        self._stroke_timer.setInterval(0)
        self._stroke_timer.timeout.connect(self._on_stroke_timer)
        self._build_ui()
        viewer.layers.events.inserted.connect(self._refresh_layer_choices)
        viewer.layers.events.removed.connect(self._on_layer_removed)
        camera = _camera(viewer)
        camera.events.center.connect(self._on_view_changed)
        camera.events.zoom.connect(self._on_view_changed)
        viewer.dims.events.current_step.connect(self._on_view_changed)
        self._worker_box = []   # the worker, reachable without the widget
        self.destroyed.connect(_stopper(self._worker_box))
        self._refresh_layer_choices()
        image = self._newest_image()
        if image is not None:
            self.set_image_layer(image)

    # -- the user interface --------------------------------------------------
    def _build_ui(self):
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self._image_combo = QComboBox()
        self._image_combo.setToolTip("The image to paint on and predict")
        self._image_combo.activated.connect(self._on_image_chosen)
        form.addRow("Image", self._image_combo)
        self._features_combo = QComboBox()
        for name, (description, _) in PRESETS.items():
            self._features_combo.addItem(name)
            self._features_combo.setItemData(self._features_combo.count() - 1, description,
                                             Qt.ToolTipRole)
        self._features_combo.setToolTip("Feature preset, by object size")
        self._features_combo.currentTextChanged.connect(self._on_settings_changed)
        form.addRow("Features", self._features_combo)
        self._reference_combo = QComboBox()
        self._reference_combo.setToolTip(
            "A Labels layer to compare the prediction with (foreground = not class 1)")
        self._reference_combo.activated.connect(lambda _: self._show_scores())
        form.addRow("Reference", self._reference_combo)
        layout.addLayout(form)

        layout.addWidget(QLabel("Classes (double-click to rename):"))
        self._class_list = QListWidget()
        self._class_list.setMinimumHeight(44)
        self._class_list.setMaximumHeight(90)
        self._class_list.itemChanged.connect(self._on_class_renamed)
        self._class_list.currentItemChanged.connect(self._on_class_selected)
        layout.addWidget(self._class_list)
        self._fill_class_list()

        row = QHBoxLayout()
        self._add_class_button = QPushButton("Add class")
        self._add_class_button.clicked.connect(lambda: self.add_class())
        row.addWidget(self._add_class_button)
        self._live_check = QCheckBox("Live")
        self._live_check.setChecked(True)
        self._live_check.setToolTip("Retrain and predict after every paint stroke")
        self._live_check.toggled.connect(self._on_live_toggled)
        row.addWidget(self._live_check)
        self._update_button = QPushButton("Update")
        self._update_button.setToolTip("Train on the scribbles and predict once")
        self._update_button.clicked.connect(lambda: self.update(wait=False))
        row.addWidget(self._update_button)
        layout.addLayout(row)

        self._progress = QProgressBar()
        self._progress.setRange(0, 100)
        self._progress.setValue(0)
        self._progress.setTextVisible(False)
        self._progress.setMaximumHeight(8)
        layout.addWidget(self._progress)
        self._status = QLabel("Paint background (1) and foreground (2).")
        self._status.setWordWrap(True)
        layout.addWidget(self._status)
        self._scores = QLabel("")
        self._scores.setWordWrap(True)
        layout.addWidget(self._scores)
        self._importances = QLabel("")
        self._importances.setWordWrap(True)
        self._importances.setToolTip("Feature importances of the forest (impurity decrease)")
        layout.addWidget(self._importances)

        row = QHBoxLayout()
        self._cv_button = QPushButton("Score strokes")
        self._cv_button.setToolTip(
            "Leave-one-stroke-out accuracy: each stroke predicted by a model trained "
            "without it (in the background)")
        self._cv_button.clicked.connect(lambda: self.stroke_scores(wait=False))
        row.addWidget(self._cv_button)
        self._next_button = QPushButton("Where should I paint next?")
        self._next_button.setToolTip("Move the view to the most uncertain region in view")
        self._next_button.clicked.connect(lambda: self.go_to_uncertain())
        row.addWidget(self._next_button)
        layout.addLayout(row)
        self._cv_label = QLabel("")
        self._cv_label.setWordWrap(True)
        layout.addWidget(self._cv_label)

        row = QHBoxLayout()
        for text, slot in (("Save model...", self._ask_save_model),
                           ("Load model...", self._ask_load_model),
                           ("Export prediction...", self._ask_export)):
            button = QPushButton(text)
            if slot == self._ask_export:
                button.setToolTip("Save the prediction as OME-Zarr (labels with class names "
                                  "and colours, next to the image) or TIFF")
            button.clicked.connect(slot)
            row.addWidget(button)
        layout.addLayout(row)

        row = QHBoxLayout()
        self._batch_button = QPushButton("Apply to folder...")
        self._batch_button.setObjectName("apply_to_folder")
        self._batch_button.setToolTip(
            "Predict every image of a folder with the current model, one output file per "
            "image (finished files are skipped: run again to resume)")
        self._batch_button.clicked.connect(self._ask_apply_to_folder)
        row.addWidget(self._batch_button)
        self._batch_bar = QProgressBar()
        self._batch_bar.setObjectName("batch_progress")
        self._batch_bar.setRange(0, 1)
        self._batch_bar.setValue(0)
        self._batch_bar.setFormat("")
        row.addWidget(self._batch_bar, 1)
        self._cancel_button = QPushButton("Cancel")
        self._cancel_button.setObjectName("cancel_batch")
        self._cancel_button.setToolTip("Stop after the file being predicted")
        self._cancel_button.setEnabled(False)
        self._cancel_button.clicked.connect(lambda: self.cancel_batch())
        row.addWidget(self._cancel_button)
        layout.addLayout(row)
        self._batch_label = QLabel("")
        self._batch_label.setWordWrap(True)
        layout.addWidget(self._batch_label)

        layout.addWidget(QLabel("<b>Objects</b>"))
        self._objects = _ObjectsPanel(self)
        self._objects.counted.connect(self.objects_counted.emit)
        self._objects.classified.connect(self.objects_classified.emit)
        layout.addWidget(self._objects)
        layout.addStretch(1)

    def _fill_class_list(self):
        self._class_list.blockSignals(True)
        self._class_list.clear()
        for value, name in sorted(self.class_names.items()):
            item = QListWidgetItem(name)
            item.setData(Qt.UserRole, value)
            item.setFlags(item.flags() | Qt.ItemIsEditable)
            pix = QPixmap(12, 12)
            pix.fill(QColor(_class_color(value)))
            item.setIcon(QIcon(pix))
            item.setToolTip(f"label value {value}")
            self._class_list.addItem(item)
        self._class_list.blockSignals(False)
        self._select_class_row(self.scribbles_layer.selected_label
                               if self.scribbles_layer is not None else 1)

    def _select_class_row(self, value):
        for row in range(self._class_list.count()):
            item = self._class_list.item(row)
            if item.data(Qt.UserRole) == value:
                self._class_list.blockSignals(True)
                self._class_list.setCurrentRow(row)
                self._class_list.blockSignals(False)

    def _set_status(self, text):
        self._status.setText(text)

    # -- layers ----------------------------------------------------------------
    @property
    def image_layer(self):
        """The image layer trained on and predicted (None before one is chosen)."""
        return None if self._current is None else self._current.image

    @property
    def scribbles_layer(self):
        """The Labels layer of the scribbles of :attr:`image_layer`."""
        return None if self._current is None else self._current.scribbles

    @property
    def prediction_layer(self):
        """The Labels layer of the prediction of :attr:`image_layer`."""
        return None if self._current is None else self._current.prediction

    @property
    def uncertainty_layer(self):
        """The Image layer of the uncertainty (1 - margin of the top two classes)."""
        return None if self._current is None else self._current.uncertainty

    def _is_ours(self, layer):
        return isinstance(layer.metadata, dict) and _ROLE in layer.metadata

    def _images(self):
        from napari.layers import Image

        return [lay for lay in self.viewer.layers
                if isinstance(lay, Image) and not self._is_ours(lay)]

    def _newest_image(self):
        images = self._images()
        return images[-1] if images else None

    def _refresh_layer_choices(self, event=None):
        from napari.layers import Labels

        self._image_combo.blockSignals(True)
        self._image_combo.clear()
        for layer in self._images():
            self._image_combo.addItem(layer.name)
        if self.image_layer is not None:
            self._image_combo.setCurrentText(self.image_layer.name)
        self._image_combo.blockSignals(False)
        chosen = self._reference_combo.currentText()
        self._reference_combo.blockSignals(True)
        self._reference_combo.clear()
        self._reference_combo.addItem("(none)")
        for layer in self.viewer.layers:
            if isinstance(layer, Labels) and not self._is_ours(layer):
                self._reference_combo.addItem(layer.name)
        if chosen:
            self._reference_combo.setCurrentText(chosen)
        self._reference_combo.blockSignals(False)

    def _on_layer_removed(self, event):
        layer = event.value
        for key, lset in list(self._sets.items()):
            if layer is lset.image or layer is lset.scribbles:
                del self._sets[key]
                self._trainer.forget(lset.key)
                if lset is self._current:
                    self._current = None
                    self._gen += 1
        self._refresh_layer_choices()

    def _on_image_chosen(self, index):
        name = self._image_combo.itemText(index)
        if name in self.viewer.layers:
            self.set_image_layer(self.viewer.layers[name])

    def set_image_layer(self, layer):
        """Train on and predict ``layer``; its scribbles, prediction and uncertainty are made if new.

        Scribbles already painted on other images keep training the model.

        Parameters
        ----------
        layer : napari.layers.Image
            A 2D or 3D image layer (grey, or RGB/RGBA).
        """
        array = self._image_array(layer)
        lset = self._sets.get(id(layer))
        if lset is None:
            lset = self._make_layers(layer, array)
            self._sets[id(layer)] = lset
        self._current = lset
        self._on_settings_changed()  # the channel axis follows the image
        self._refresh_layer_choices()
        self.viewer.layers.selection.active = lset.scribbles
        lset.scribbles.mode = "paint"
        self._on_view_changed()
        if self._loaded is not None or self.model_is_fitted():
            self._request(train=False)

    def _image_array(self, layer):
        if getattr(layer, "multiscale", False):
            raise InvalidImageError(
                f"layer {layer.name!r} is multiscale; open its full-resolution level as a "
                "plain image layer to train on it.")
        array = np.asarray(layer.data)
        spatial = array.ndim - (1 if layer.rgb else 0)
        if spatial not in (2, 3):
            raise InvalidImageError(
                f"layer {layer.name!r} has {spatial} spatial axes; the pixel classifier "
                "works on 2D images and 3D stacks (split channels or time first).")
        return array

    def _make_layers(self, image, array):
        from napari.utils.colormaps import DirectLabelColormap

        spatial = array.shape[:-1] if image.rgb else array.shape
        colors = self._colormap_dict()
        common = {"scale": image.scale, "translate": image.translate}
        key = self._next_key
        self._next_key += 1
        prediction = self.viewer.add_labels(
            np.zeros(spatial, np.uint8), name="prediction", opacity=0.6,
            colormap=DirectLabelColormap(color_dict=self._colormap_dict(faint_background=True)),
            metadata={_ROLE: "prediction", "class_names": dict(self.class_names)}, **common)
        uncertainty = self.viewer.add_image(
            np.zeros(spatial, np.float32), name="uncertainty", colormap="magma",
            contrast_limits=(0.0, 1.0), opacity=0.7, blending="additive", visible=False,
            metadata={_ROLE: "uncertainty"}, **common)
        scribbles = self.viewer.add_labels(
            np.zeros(spatial, np.uint8), name="scribbles",
            colormap=DirectLabelColormap(color_dict=colors),
            metadata={_ROLE: "scribbles", "class_names": dict(self.class_names)}, **common)
        scribbles.brush_size = max(3, int(round(min(spatial[-2:]) / 100)))
        scribbles.selected_label = 1
        scribbles.events.paint.connect(self._on_scribbles_changed)
        scribbles.events.data.connect(self._on_scribbles_changed)
        scribbles.events.selected_label.connect(self._on_label_selected)
        image.events.data.connect(self._on_image_data_changed)
        return _LayerSet(image, scribbles, prediction, uncertainty, key, array)

    def _colormap_dict(self, *, faint_background=False):
        colors = {None: "transparent", 0: "transparent"}
        for value in self.class_names:
            colors[value] = _class_color(value)
        if faint_background:  # the image stays readable under predicted background
            colors[1] = QColor(_class_color(1)).getRgbF()[:3] + (0.25,)
        return colors

    def _apply_class_names(self):
        from napari.utils.colormaps import DirectLabelColormap

        for lset in self._sets.values():
            for layer, faint in ((lset.scribbles, False), (lset.prediction, True)):
                layer.colormap = DirectLabelColormap(
                    color_dict=self._colormap_dict(faint_background=faint))
                layer.metadata["class_names"] = dict(self.class_names)
        self._fill_class_list()

    def add_class(self, name=None):
        """Add a scribble class (the next label value) and select it for painting.

        Parameters
        ----------
        name : str, optional
            Its name (default ``"class N"``).

        Returns
        -------
        value : int
            Its label value.
        """
        value = max(self.class_names) + 1
        self.class_names[value] = name or f"class {value}"
        self._apply_class_names()
        if self.scribbles_layer is not None:
            self.scribbles_layer.selected_label = value
        self._select_class_row(value)
        return value

    def rename_class(self, value, name):
        """Rename class ``value`` (kept with the layers' metadata and the exports)."""
        self.class_names[int(value)] = str(name)
        self._apply_class_names()

    def _on_class_renamed(self, item):
        value = item.data(Qt.UserRole)
        if item.text() and item.text() != self.class_names.get(value):
            self.class_names[value] = item.text()
            self._apply_class_names()

    def _on_class_selected(self, current, previous=None):
        if current is not None and self.scribbles_layer is not None:
            self.scribbles_layer.selected_label = current.data(Qt.UserRole)
            self.scribbles_layer.mode = "paint"

    def _on_label_selected(self, event=None):
        if self.scribbles_layer is not None:
            self._select_class_row(self.scribbles_layer.selected_label)

    # -- settings --------------------------------------------------------------
    @property
    def feature_preset(self):
        """Name of the feature preset (see :data:`pixelforest.features.PRESETS`)."""
        return self._features_combo.currentText()

    @feature_preset.setter
    def feature_preset(self, name):
        if name not in PRESETS:
            raise InvalidParameterError(f"unknown feature preset {name!r}; choose from "
                                   f"{sorted(PRESETS)}.")
        self._features_combo.setCurrentText(name)

    @property
    def live(self):
        """Retrain after every stroke (the *Live* check box)."""
        return self._live_check.isChecked()

    @live.setter
    def live(self, value):
        self._live_check.setChecked(bool(value))

    def _make_classifier(self):
        preset = self._features_combo.currentText() if hasattr(self, "_features_combo") \
            else "default"
        rgb = self.image_layer is not None and self.image_layer.rgb
        return PixelClassifier(features=None if preset == "default" else preset,
                               channel_axis=-1 if rgb else None)

    def _on_settings_changed(self, *args):
        clf = self._make_classifier()
        if clf.get_params() != self._trainer.classifier.get_params():
            self._trainer.classifier = clf
            if not self.model_is_fitted() and self._loaded is None:
                self.model = clf
            if args and self.live and self._has_scribbles():
                self._request(train=True)

    def _on_live_toggled(self, on):
        if on and self._has_scribbles():
            self._request(train=True)

    def model_is_fitted(self):
        """True once :attr:`model` has been trained or loaded."""
        return hasattr(self.model, "pipeline_")

    # -- events ----------------------------------------------------------------
    def _has_scribbles(self):
        return any(np.any(lset.scribbles.data) for lset in self._sets.values())

    def _on_scribbles_changed(self, event=None):
        self._gen += 1        # whatever runs is stale now
        self._loaded = None   # a stroke trains a new model
        if self.live:
            self._stroke_timer.start()

    def _on_stroke_timer(self):
        if self.live:
            self._request(train=True)

    def _on_image_data_changed(self, event=None):
        for lset in self._sets.values():
            if lset.image is getattr(event, "source", None):
                lset.array = self._image_array(lset.image)
                self._trainer.forget(lset.key)

    def _on_view_changed(self, event=None):
        # corner_pixels follow the canvas, which draws after this event
        QTimer.singleShot(0, self._read_view)
        self._read_view()

    def _read_view(self):
        lset = self._current
        if lset is None:
            self._visible = None
            return
        layer = lset.image
        spatial = lset.array.shape[:-1] if layer.rgb else lset.array.shape
        corners = np.asarray(layer.corner_pixels, dtype=int)
        offset = self.viewer.dims.ndim - len(spatial)
        displayed = [d - offset for d in self.viewer.dims.displayed if d >= offset]
        point = np.asarray(layer.world_to_data(self.viewer.dims.point), dtype=float)
        where = []
        for ax, n in enumerate(spatial):
            if ax in displayed:
                lo, hi = int(corners[0, ax]), int(corners[1, ax]) + 1
                if hi - lo <= 1:   # never drawn: the whole axis
                    lo, hi = 0, n
                where.append(slice(max(0, lo), min(n, hi)))
            else:
                z = int(np.clip(np.round(point[ax]), 0, n - 1))
                where.append(slice(z, z + 1))
        where = tuple(where)
        if where != self._visible:
            self._visible = where
            self._view_gen += 1   # a prediction under way re-plans at its next region

    def visible_region(self):
        """The region of :attr:`image_layer` in view (data coordinates), predicted first."""
        self._read_view()
        return self._visible

    # -- training and prediction -----------------------------------------------
    def training_data(self):
        """The ``(image, scribbles)`` pairs that train the model, in training order.

        Every image layer with scribbles painted, in the order the widget
        first opened them: ``PixelClassifier(...).fit([i for i, _ in pairs],
        [s for _, s in pairs])`` is the model the widget trains.
        """
        return [(lset.array, lset.scribbles.data) for lset in self._sets.values()
                if np.any(lset.scribbles.data)]

    def _train_list(self):
        return [(lset.key, lset.array, np.array(lset.scribbles.data, copy=True))
                for lset in self._sets.values() if np.any(lset.scribbles.data)]

    def update(self, wait=False):
        """Train on the scribbles and refresh the prediction and uncertainty layers.

        Parameters
        ----------
        wait : bool, optional
            False (the *Update* button): run in the background and return
            at once; :attr:`updated` is emitted when done.  True: train and
            predict in this thread (for scripts and tests), then emit
            :attr:`updated` and return.

        Returns
        -------
        model : PixelClassifier or None
            With ``wait=True``, the trained model.

        Raises
        ------
        PixelforestError
            With ``wait=True``: no image, or fewer than two classes painted.
        """
        if not wait:
            self._request(train=True)
            return None
        if self._current is None:
            raise InvalidImageError("no image layer to train on; add an image to the viewer.")
        self._stroke_timer.stop()
        self._gen += 1        # a background job still running is stale
        started = time.perf_counter()
        lset = self._current
        try:
            clf = self._trainer.fit(self._train_list())
        except PixelforestError as exc:
            self._set_status(str(exc))
            raise
        fitted = time.perf_counter()
        labels, unc = self._trainer.predict(clf, lset.key, lset.array,
                                            visible=self.visible_region())
        self._adopt_model(clf, lset)
        self._write(lset, (slice(None),) * labels.ndim, labels, unc)
        self._flush_refresh()
        done = time.perf_counter()
        self.last_timings = {"fit": fitted - started, "visible": None, "whole": done - started}
        self._finish(lset)
        return clf

    def _request(self, *, train):
        """Queue background work (train and predict, or predict with the current model)."""
        lset = self._current
        if lset is None:
            return
        self._gen += 1
        if train and not self._has_scribbles():
            self._set_status("Paint background (1) and foreground (2).")
            return
        clf = self._loaded if self._loaded is not None else self.model
        if not train and not hasattr(clf, "pipeline_"):
            return
        if self._worker is None:
            self._worker = _Worker(self._run_job)
            self._worker_box.append(self._worker)
            self._worker.start()
        self.last_timings = {}
        self._read_view()
        job = _Job(self._gen, self._train_list() if train else None, clf, lset.key,
                   lset.array, time.perf_counter())
        self._progress.setValue(0)
        self._set_status("training..." if train else "predicting...")
        self._worker.submit(job)

    def _run_job(self, job):
        """On the worker thread: fit (if asked), then predict the view first, then the rest."""
        def stale():
            return self._gen != job.gen

        post = self._bridge.message.emit
        try:
            if job.train is not None:
                clf = self._trainer.fit(job.train, cancelled=stale)
                post(("model", job.gen, clf, time.perf_counter() - job.started))
            else:
                clf = job.clf
            self._predict_view_first(job, clf, stale, post)
            post(("done", job.gen, job.key, time.perf_counter() - job.started))
        except Cancelled:
            pass
        except Exception as exc:  # noqa: BLE001 (shown in the widget; the loop goes on)
            post(("error", job.gen, exc))

    def _predict_view_first(self, job, clf, stale, post):
        """On the worker thread: predict ``job.image`` with ``clf``, the region in view first.

        The regions come from :func:`~pixelforest.napari.live.plan_regions`
        (the view, then the rest nearest first) and each is predicted by
        :meth:`LiveTrainer.predict_region
        <pixelforest.napari.live.LiveTrainer.predict_region>`, which keeps
        the view's cached feature blocks.  When the region in view changes
        (a pan, a zoom, another slice) the order is stale: after the region
        under way (so a long pan still shows progress) the pixels not yet
        predicted are planned again around the new view, with the same
        model (no retraining), as often as the view moves.  A new stroke
        (``stale()``) stops at the next block.  Regions are exact whatever
        their cut, so the result is the same image.
        """
        spatial = job.image.shape[:clf.ndim_]
        done = np.zeros(spatial, dtype=bool)
        while True:
            view_gen, view = self._view_gen, self._visible
            for where in plan_regions(spatial, view, block=self.region_block):
                if stale():
                    raise Cancelled("the update was cancelled by newer work.")
                if self._view_gen != view_gen:
                    break   # the view moved: what is left, the new view first
                box = _undone_box(done, where)
                if box is None:
                    continue
                labels, unc = self._trainer.predict_region(clf, job.key, job.image, box,
                                                           keep=view, cancelled=stale)
                done[box] = True
                post(("region", job.gen, job.key, box, labels, unc,
                      time.perf_counter() - job.started, np.count_nonzero(done) / done.size))
            else:
                return

    def _on_message(self, msg):
        """On the GUI thread: apply a worker's message unless a newer request superseded it."""
        kind, gen = msg[0], msg[1]
        if kind.startswith("batch-"):   # a batch is not made stale by strokes
            self._on_batch_message(msg)
            return
        if gen != self._gen:
            return
        lset = None
        if kind in ("region", "done"):
            lset = next((s for s in self._sets.values() if s.key == msg[2]), None)
        if kind == "model":
            self._adopt_model(msg[2], self._current)
            self.last_timings["fit"] = msg[3]
            self._set_status(f"trained in {msg[3]:.2f} s; predicting...")
        elif kind == "region":
            _, _, _, where, labels, unc, elapsed, fraction = msg
            if lset is None:
                return
            if "visible" not in self.last_timings:
                self.last_timings["visible"] = elapsed
            self._write(lset, where, labels, unc)
            self._progress.setValue(int(round(100 * fraction)))
        elif kind == "done":
            if lset is None:
                return
            self._flush_refresh()
            self.last_timings["whole"] = msg[3]
            self._finish(lset)
        elif kind == "cv":
            self._show_stroke_scores(msg[2])
        elif kind == "error":
            self.last_error = msg[2]
            self._progress.setValue(0)
            self._set_status(f"{type(msg[2]).__name__}: {msg[2]}")

    def _adopt_model(self, clf, lset):
        self.model = clf
        self._show_importances()

    def _write(self, lset, where, labels, unc):
        lset.prediction.data[where] = labels
        lset.uncertainty.data[where] = unc
        self._refresh_pending.add(lset.key)
        self._refresh_timer.start()

    def _flush_refresh(self):
        self._refresh_timer.stop()
        for lset in self._sets.values():
            if lset.key in self._refresh_pending:
                lset.prediction.refresh()
                lset.uncertainty.refresh()
        self._refresh_pending.clear()

    def _finish(self, lset):
        self._progress.setValue(100)
        t = self.last_timings
        parts = []
        if t.get("visible") is not None:
            parts.append(f"view {t['visible']:.2f} s")
        if t.get("whole") is not None:
            parts.append(f"whole image {t['whole']:.2f} s")
        fit = self._trainer.last_fit
        trained = (f"{fit['labelled']} labelled pixels on {fit['images']} image(s)"
                   if fit and self._loaded is None else "model loaded from file")
        self._set_status(f"{trained}; {', '.join(parts)}")
        self._show_scores()
        self.updated.emit()

    # -- measured quality ------------------------------------------------------
    def _show_importances(self):
        try:
            imp = self.model.feature_importances_by_name()
        except AttributeError:
            self._importances.setText("")
            return
        top = list(imp.items())[:5]
        self._importances.setText("Top features: " + ", ".join(
            f"{name.replace('[ch0]', '')} {value:.2f}" for name, value in top))

    def reference_layer(self):
        """The Labels layer chosen as reference, or None."""
        name = self._reference_combo.currentText()
        if name and name != "(none)" and name in self.viewer.layers:
            return self.viewer.layers[name]
        return None

    def set_reference_layer(self, layer):
        """Compare the prediction with ``layer`` (a Labels layer; None to stop)."""
        self._refresh_layer_choices()
        self._reference_combo.setCurrentText("(none)" if layer is None else layer.name)
        self._show_scores()

    def scores(self):
        """Foreground IoU and Dice of the prediction against the reference layer.

        Foreground is every class but 1 (background) in the prediction and
        every non-zero label of the reference.

        Returns
        -------
        scores : dict or None
            ``{"iou": ..., "dice": ...}``; None without a reference or a
            prediction.
        """
        from pixelforest.evaluate.metrics import dice, iou

        ref = self.reference_layer()
        if ref is None or self.prediction_layer is None or not self.model_is_fitted():
            return None
        pred = np.asarray(self.prediction_layer.data)
        ref = np.asarray(ref.data)
        if ref.shape != pred.shape:
            return None
        fg, ref_fg = (pred > 1), (ref > 0)
        return {"iou": float(iou(fg, ref_fg)), "dice": float(dice(fg, ref_fg))}

    def _show_scores(self):
        scores = self.scores()
        self._scores.setText("" if scores is None else
                             f"vs {self.reference_layer().name}: IoU {scores['iou']:.3f}, "
                             f"Dice {scores['dice']:.3f}")

    def stroke_scores(self, wait=False):
        """Leave-one-stroke-out accuracy of the scribbles (see :meth:`LiveTrainer.stroke_scores`).

        Parameters
        ----------
        wait : bool, optional
            True: compute here and return the scores; False: in a
            background thread (a new stroke cancels it), shown in the
            widget when done.

        Returns
        -------
        scores : dict or None
            With ``wait=True``; also kept as :attr:`last_stroke_scores`.
        """
        data = self._train_list()
        if not wait:
            gen = self._gen
            post = self._bridge.message.emit

            def run():
                try:
                    post(("cv", gen, self._trainer.stroke_scores(
                        data, cancelled=lambda: self._gen != gen)))
                except Cancelled:
                    pass
                except Exception as exc:  # noqa: BLE001 (shown in the widget)
                    post(("error", gen, exc))

            self._cv_label.setText("scoring strokes...")
            threading.Thread(target=run, name="pixelforest-strokes", daemon=True).start()
            return None
        scores = self._trainer.stroke_scores(data)
        self._show_stroke_scores(scores)
        return scores

    def _show_stroke_scores(self, scores):
        self.last_stroke_scores = scores
        names = ", ".join(f"{self.class_names.get(v, v)} {m:.2f}"
                          for v, m in scores["per_class"].items())
        self._cv_label.setText(
            f"Leave-one-stroke-out accuracy {scores['mean']:.2f} ({names}; "
            f"{scores['strokes']} strokes, {scores['skipped']} not scorable)")

    def most_uncertain_point(self, window=32):
        """Data coordinates of the centre of the most uncertain ``window``-pixel square in view.

        Returns
        -------
        point : tuple of int or None
            None before a prediction.
        """
        from scipy import ndimage as ndi

        if self.uncertainty_layer is None or not self.model_is_fitted():
            return None
        where = self.visible_region()
        unc = np.asarray(self.uncertainty_layer.data)[where]
        unc = np.squeeze(unc, axis=tuple(i for i, s in enumerate(unc.shape)
                                         if s == 1 and unc.ndim > 2))
        smooth = ndi.uniform_filter(unc.astype(np.float32), size=window, mode="constant")
        local = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
        point, k = [], 0
        for s in where:
            if s.stop - s.start == 1 and len(where) > 2 and len(point) < len(where) - 2:
                point.append(s.start)
            else:
                point.append(s.start + int(local[k]))
                k += 1
        return tuple(point)

    def go_to_uncertain(self):
        """Mark the most uncertain region in view (a ``paint next`` point) and centre the view on it."""
        point = self.most_uncertain_point()
        if point is None:
            self._set_status("train first: the uncertainty is not known yet.")
            return None
        world = self.image_layer.data_to_world(point)
        if "paint next" in self.viewer.layers:
            marker = self.viewer.layers["paint next"]
            marker.data = np.array([world])
        else:
            marker = self.viewer.add_points(np.array([world]), name="paint next", size=40,
                                            symbol="ring", face_color="transparent",
                                            border_color="#ff3bd1", border_width=0.1,
                                            metadata={_ROLE: "paint next"})
        camera = _camera(self.viewer)
        displayed = list(self.viewer.dims.displayed)
        camera.center = tuple(float(world[d]) for d in displayed)
        self.viewer.layers.selection.active = self.scribbles_layer
        return point

    # -- objects ---------------------------------------------------------------------
    def count_objects(self, wait=False):
        """Split the prediction's foreground into objects, measure them, show layer and table.

        Runs :meth:`model.predict_instances
        <pixelforest.classify.classifier.PixelClassifier.predict_instances>`
        on :attr:`image_layer` and :func:`pixelforest.objects.measure` on
        the result, with the layer's scale as the pixel size (``spacing``:
        anisotropic stacks are split and measured in physical units), in
        the background unless ``wait``; then shows the
        Labels layer ``objects`` (outlines; click an object to give it the
        selected object class), the Labels layer ``object classes`` and an
        *Objects* dock with one row per object, the count and the mean
        size.  Counting again starts the object classes afresh.

        Parameters
        ----------
        wait : bool, optional
            True: compute in this thread and return the result.

        Returns
        -------
        labels, table : ndarray of uint32 and pandas.DataFrame, or None
            With ``wait=True``, the instance labels and their measurements.

        Raises
        ------
        InvalidImageError, NotFittedError
            No image, or no trained or loaded model.
        """
        return self._objects.count(wait=wait)

    @property
    def objects_layer(self):
        """The Labels layer of the counted objects (None before *Count objects*)."""
        return self._objects.objects_layer

    @property
    def object_classes_layer(self):
        """The Labels layer of the object classes: predicted, or clicked before training."""
        return self._objects.classes_layer

    @property
    def objects_table(self):
        """The measurements of the objects (a DataFrame; a ``class`` column once classified)."""
        return None if self._objects.objects is None else self._objects.objects.table

    @property
    def object_class_names(self):
        """Name of each object class (``{1: "class 1", 2: "class 2"}`` at first)."""
        return self._objects.class_names

    @property
    def object_annotations(self):
        """The objects given a class by hand: ``{object label: object class}``."""
        return self._objects.annotations

    @property
    def object_model(self):
        """The :class:`~pixelforest.objects.classifier.ObjectClassifier` trained on the clicks."""
        return None if self._objects.objects is None else self._objects.objects.model

    @property
    def selected_object_class(self):
        """The object class a click on an object assigns."""
        return self._objects.selected_class

    @selected_object_class.setter
    def selected_object_class(self, value):
        self._objects.selected_class = value

    def add_object_class(self, name=None):
        """Add an object class (the next value) and select it; returns its value."""
        return self._objects.add_class(name)

    def rename_object_class(self, value, name):
        """Rename object class ``value`` (in the list and the table)."""
        self._objects.rename_class(value, name)

    def assign_object_class(self, label, value=None, *, wait=False):
        """Give object ``label`` the object class ``value`` (default: the selected one).

        What a click on an object does.  Once the objects given a class
        hold two classes, an
        :class:`~pixelforest.objects.classifier.ObjectClassifier` is fitted
        on their measurements (``fit_table``) and predicts every object's
        class (in the background unless ``wait``).
        """
        self._objects.assign(label, value, wait=wait)

    def export_objects(self, path):
        """Write the counted objects: ``*.ome.zarr`` labels with the image and a CSV table
        beside, ``*.csv`` the table alone, or ``*.skops`` the object classifier (see
        :meth:`ObjectSet.export <pixelforest.napari._objects.ObjectSet.export>`); returns
        the paths written."""
        return self._objects.export(path)

    # -- files -----------------------------------------------------------------
    def save_model(self, path):
        """Save :attr:`model` as a ``.skops`` file (see :func:`pixelforest.save_model`)."""
        from pixelforest.io.model_file import save_model

        if not self.model_is_fitted():
            raise NotFittedError("no trained model yet; paint two classes first.")
        save_model(self.model, path)
        self._set_status(f"model saved to {path}")

    def load_model(self, path):
        """Load a ``.skops`` model and predict the image with it (until the next stroke)."""
        from pixelforest.io.model_file import load_model

        clf = load_model(path)
        self._loaded = clf
        self.model = clf
        self._trainer.last_fit = {}
        self._show_importances()
        self._request(train=False)
        return clf

    def export_prediction(self, path):
        """Write the prediction layer to ``path``, atomically; the format follows the extension.

        * ``*.zarr`` (by convention ``*.ome.zarr``): OME-Zarr (NGFF 0.5) with
          the image at the root and the prediction under
          ``labels/prediction``, whose ``image-label`` metadata hold the
          class names and the widget's class colours, so napari's OME-Zarr
          reader and other NGFF tools open it as labels over the image
          (:func:`pixelforest.io.ngff.write_ome_zarr_labels`); the image
          layer's scale is stored as the pixel size (with its unit when the
          layer has one).
        * ``*.tif`` / ``*.tiff``: the label image (:func:`pixelforest.imwrite`).

        Parameters
        ----------
        path : str or Path
            The output file or store.

        Raises
        ------
        NotFittedError
            No prediction yet.
        UnsupportedFormatError
            Another extension.
        """
        from pathlib import Path

        if self.prediction_layer is None or not self.model_is_fitted():
            raise NotFittedError("no prediction yet; paint two classes first.")
        path = Path(path)
        name = path.name.lower()
        labels = np.asarray(self.prediction_layer.data)
        if name.endswith(".zarr"):
            self._export_ome_zarr(path, labels)
        elif name.endswith((".tif", ".tiff")):
            from pixelforest.io.images import imwrite

            imwrite(path, labels)
        else:
            raise UnsupportedFormatError(
                f"cannot export the prediction as {path.name!r}; name the file *.ome.zarr "
                "(OME-Zarr with NGFF labels metadata) or *.tif.")
        self._set_status(f"prediction written to {path}")

    def _export_ome_zarr(self, path, labels):
        from pixelforest.io.ngff import write_ome_zarr_labels
        from pixelforest.scale.outputs import output_metadata, resolve_foreground

        layer = self.image_layer
        classes = np.asarray(self.model.classes_)
        names = {int(v): self.class_names.get(int(v), f"class {int(v)}") for v in classes}
        metadata = output_metadata(classes, "labels", resolve_foreground(classes))
        metadata["pixelforest"]["class_names"] = {str(v): n for v, n in names.items()}
        ndim = labels.ndim
        units = {str(u) for u in getattr(layer, "units", ())[-ndim:]}
        unit = units.pop() if len(units) == 1 and "pixel" not in units else None
        write_ome_zarr_labels(
            path, labels, image=self._current.array, name="prediction",
            channel_axis=-1 if layer.rgb else None, class_names=names,
            colors={v: _class_color(v) for v in names},
            spacing=tuple(float(v) for v in layer.scale[-ndim:]), unit=unit,
            metadata=metadata)

    def _ask(self, dialog, caption, filt):
        path, _ = dialog(self, caption, "", filt)
        return path or None

    def _ask_save_model(self):
        path = self._ask(QFileDialog.getSaveFileName, "Save model", "Model (*.skops)")
        if path:
            self._guard(self.save_model, path if path.endswith(".skops") else path + ".skops")

    def _ask_load_model(self):
        path = self._ask(QFileDialog.getOpenFileName, "Load model", "Model (*.skops)")
        if path:
            self._guard(self.load_model, path)

    def _ask_export(self):
        zarr_filter, tif_filter = "OME-Zarr with labels (*.ome.zarr)", "TIFF (*.tif *.tiff)"
        path, chosen = QFileDialog.getSaveFileName(self, "Export prediction", "",
                                                   f"{tif_filter};;{zarr_filter}")
        if not path:
            return
        if not path.lower().endswith((".tif", ".tiff", ".zarr")):
            path += ".ome.zarr" if chosen == zarr_filter else ".tif"
        self._guard(self.export_prediction, path)

    def _guard(self, func, *args):
        try:
            func(*args)
        except (PixelforestError, OSError, ValueError) as exc:
            self._set_status(f"{type(exc).__name__}: {exc}")

    # -- apply to a folder -------------------------------------------------------
    def apply_to_folder(self, inputs, output, *, kind=None, wait=False):
        """Predict every image of ``inputs`` with :attr:`model`, one file per image in ``output``.

        Runs :func:`pixelforest.scale.batch.predict_files` input by input
        (see :func:`pixelforest.napari._batch.run_batch`): outputs appear
        atomically, outputs already there are skipped (a cancelled batch
        resumes where it stopped), failing inputs are reported.  The
        progress bar counts the files; *Cancel* (:meth:`cancel_batch`)
        stops the file being predicted at its next block (it leaves no
        output) and the batch with it.  Later strokes do not change
        the model of a batch under way.

        Parameters
        ----------
        inputs : str, Path or sequence of them
            Image files, folders or glob patterns.
        output : str or Path
            The folder for the predictions (created if needed; not a folder
            of the inputs).
        kind : {'labels', 'mask', 'probabilities'} or None, optional
            What each output holds (default labels).
        wait : bool, optional
            True: predict in this thread and return the report (scripts,
            tests).  False (the button): in a background thread.

        Returns
        -------
        report : BatchReport or concurrent.futures.Future
            With ``wait=True`` the report; otherwise a future of it (its
            exception is :class:`~pixelforest.errors.Cancelled` after a
            cancel).  :attr:`batch_finished` is emitted with the report
            either way, and it is kept as :attr:`last_batch_report`.

        Raises
        ------
        NotFittedError
            No trained or loaded model.
        InvalidParameterError
            A batch is already running, or ``output`` is not a usable folder.
        """
        from pixelforest.napari._batch import run_batch
        from pixelforest.scale.outputs import resolve_kind

        if not self.model_is_fitted():
            raise NotFittedError("no trained model yet; paint two classes (or load a model) "
                                 "first.")
        if self._batch is not None:
            raise InvalidParameterError("a batch is already running; cancel it or wait for it.")
        kind = resolve_kind(kind, False)
        model = self.model
        cancel = threading.Event()
        post = self._bridge.message.emit
        if wait:
            self._batch = (cancel, None)
            self._batch_started()
            try:
                report = run_batch(model, inputs, output, kind=kind,
                                   progress=lambda n, total, _: self._batch_step(n, total),
                                   cancel=cancel)
            except Cancelled as exc:
                self._batch_ended(exc.report, exc)
                raise
            except BaseException as exc:
                self._batch_ended(None, exc)
                raise
            self._batch_ended(report, None)
            return report
        future = concurrent.futures.Future()
        future.set_running_or_notify_cancel()

        def run():
            try:
                report = run_batch(
                    model, inputs, output, kind=kind, cancel=cancel,
                    progress=lambda n, total, _: post(("batch-progress", None, n, total)))
            except Cancelled as exc:
                post(("batch-done", None, exc.report, exc, future))
            except Exception as exc:  # noqa: BLE001 (shown in the widget and in the future)
                post(("batch-done", None, None, exc, future))
            else:
                post(("batch-done", None, report, None, future))

        self._batch = (cancel, future)
        self._batch_started()
        threading.Thread(target=run, name="pixelforest-batch", daemon=True).start()
        return future

    def cancel_batch(self):
        """Stop the batch under way at the next block (no effect without one).

        Safe from any thread (the widget is updated on the GUI thread).
        """
        batch = self._batch
        if batch is not None:
            batch[0].set()
            self._bridge.message.emit(("batch-cancelling", None))

    def _batch_started(self):
        self._batch_bar.setRange(0, 1)
        self._batch_bar.setValue(0)
        self._batch_bar.setFormat("%v / %m files")
        self._batch_button.setEnabled(False)
        self._cancel_button.setEnabled(True)
        self._batch_label.setText("applying the model to the folder...")

    def _batch_step(self, n, total):
        self._batch_bar.setRange(0, max(total, 1))
        self._batch_bar.setValue(n if total else 1)
        self.batch_progress.emit(n, total)

    def _batch_ended(self, report, exc):
        self._batch = None
        self._batch_button.setEnabled(True)
        self._cancel_button.setEnabled(False)
        if report is not None:
            self.last_batch_report = report
        first = report.summary().splitlines()[0] if report is not None else ""
        if isinstance(exc, Cancelled):
            self._batch_label.setText(f"cancelled: {first} (run again to resume)")
        elif exc is not None:
            self._batch_label.setText(f"{type(exc).__name__}: {exc}")
        else:
            self._batch_label.setText(first + (f"; first failure: {report.failed[0][1]}"
                                               if report.failed else ""))
        if report is not None:
            self.batch_finished.emit(report)

    def _on_batch_message(self, msg):
        if msg[0] == "batch-progress":
            self._batch_step(msg[2], msg[3])
            return
        if msg[0] == "batch-cancelling":
            if self._batch is not None:
                self._cancel_button.setEnabled(False)
                self._batch_label.setText("cancelling after the file being predicted...")
            return
        _, _, report, exc, future = msg
        self._batch_ended(report, exc)
        if exc is None:
            future.set_result(report)
        else:
            future.set_exception(exc)

    def _ask_apply_to_folder(self):
        if not self.model_is_fitted():
            self._set_status("train first (paint two classes) or load a model.")
            return
        inputs = QFileDialog.getExistingDirectory(self, "Folder of images to predict")
        if not inputs:
            return
        output = QFileDialog.getExistingDirectory(
            self, "Folder for the predictions (not the images' folder)")
        if output:
            self._guard(self.apply_to_folder, inputs, output)


    # -- shutting down -----------------------------------------------------------
    def close_worker(self):
        """Stop the background thread (done when the widget is destroyed) and a batch under way."""
        self._gen += 1
        if self._batch is not None:
            self._batch[0].set()   # it stops after the file being predicted
        if self._worker is not None:
            self._worker.stop()
            self._worker.join()
            self._worker_box.clear()
            self._worker = None

    def closeEvent(self, event):
        self.close_worker()
        super().closeEvent(event)


# -- the Objects section -----------------------------------------------------------

#: Canvas pixels the mouse may move between press and release for a click.
_CLICK_SLOP = 4.0


def _format(value):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


class _FrameModel(QAbstractTableModel):
    """A read-only Qt table model over a DataFrame: cells are formatted when drawn,
    so a table of many objects costs no widget per cell."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.columns = []
        self._values = []

    def set_frame(self, table):
        self.beginResetModel()
        self.columns = [str(c) for c in table.columns]
        self._values = [table[c].tolist() for c in table.columns]
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()):  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() or not self._values else len(self._values[0])

    def columnCount(self, parent=QModelIndex()):  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index, role=Qt.DisplayRole):
        if role != Qt.DisplayRole or not index.isValid():
            return None
        return _format(self._values[index.column()][index.row()])

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if role != Qt.DisplayRole:
            return None
        if orientation == Qt.Horizontal:
            return self.columns[section] if section < len(self.columns) else None
        return str(section + 1)


class ObjectsTable(QWidget):
    """The *Objects* dock: one row per object (the measurements) and a summary line."""

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.model = _FrameModel(self)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setEditTriggers(QTableView.NoEditTriggers)
        layout.addWidget(self.view)

    def show_table(self, table, summary_text):
        """Show the DataFrame ``table`` (one row per object) and the summary line."""
        self.summary.setText(summary_text)
        self.model.set_frame(table)

    def cell(self, row, column):
        """The text shown in a cell (``column``: index or name)."""
        if isinstance(column, str):
            column = self.model.columns.index(column)
        return self.model.data(self.model.index(row, column))


class _ObjectsPanel(QWidget):
    """The *Objects* section of the dock widget: count objects, show the table, classify clicks.

    The work (:class:`~pixelforest.napari._objects.ObjectSet`) runs on
    background threads; results come back through a queued signal.  Two
    generation counters drop stale results: counting again makes an older
    count and classifier stale, a new click an older classifier.
    """

    counted = Signal()
    classified = Signal()

    def __init__(self, owner, parent=None):
        super().__init__(parent)
        self.owner = owner
        self.class_names = {1: "class 1", 2: "class 2"}
        self.annotations = {}        # object label -> object class
        self.objects = None          # the ObjectSet shown
        self.objects_layer = None
        self.classes_layer = None
        self.table_dock = None
        self.last_error = None
        self._count_gen = 0
        self._class_gen = 0
        self._bridge = _Bridge()
        self._bridge.message.connect(self._on_message)
        self._build_ui()

    def _build_ui(self):
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.count_button = QPushButton("Count objects")
        self.count_button.setObjectName("count_objects")
        self.count_button.setToolTip(
            "Split the predicted foreground into objects (touching ones separated) and "
            "measure them (in the background)")
        self.count_button.clicked.connect(lambda: self.owner._guard(self.count))
        row.addWidget(self.count_button)
        self.add_button = QPushButton("Add object class")
        self.add_button.clicked.connect(lambda: self.add_class())
        row.addWidget(self.add_button)
        self.save_button = QPushButton("Save objects...")
        self.save_button.setObjectName("save_objects")
        self.save_button.setToolTip(
            "Save the objects as OME-Zarr labels next to the image with the table as CSV "
            "beside them, the table alone (*.csv), or the object classifier (*.skops)")
        self.save_button.clicked.connect(self._ask_export)
        row.addWidget(self.save_button)
        layout.addLayout(row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addWidget(QLabel("Object classes (click objects to assign the selected one):"))
        self.class_list = QListWidget()
        self.class_list.setMinimumHeight(44)
        self.class_list.setMaximumHeight(80)
        self.class_list.itemChanged.connect(self._on_renamed)
        layout.addWidget(self.class_list)
        self._fill_class_list(select=1)

    # -- object classes ----------------------------------------------------------
    def _fill_class_list(self, select=None):
        current = self.selected_class if select is None else select
        self.class_list.blockSignals(True)
        self.class_list.clear()
        for value, name in sorted(self.class_names.items()):
            item = QListWidgetItem(name)
            item.setData(Qt.UserRole, value)
            item.setFlags(item.flags() | Qt.ItemIsEditable)
            pix = QPixmap(12, 12)
            pix.fill(QColor(object_class_color(value)))
            item.setIcon(QIcon(pix))
            self.class_list.addItem(item)
            if value == current:
                self.class_list.setCurrentItem(item)
        self.class_list.blockSignals(False)

    @property
    def selected_class(self):
        item = self.class_list.currentItem()
        return 1 if item is None else int(item.data(Qt.UserRole))

    @selected_class.setter
    def selected_class(self, value):
        if int(value) not in self.class_names:
            raise InvalidParameterError(
                f"object class {value!r} does not exist; the classes are "
                f"{sorted(self.class_names)} (add one with add_object_class).")
        self._fill_class_list(select=int(value))

    def add_class(self, name=None):
        value = max(self.class_names) + 1
        self.class_names[value] = name or f"class {value}"
        self._fill_class_list(select=value)
        self._apply_colormap()
        return value

    def rename_class(self, value, name):
        self.class_names[int(value)] = str(name)
        self._fill_class_list()
        self._refresh_table()

    def _on_renamed(self, item):
        value = item.data(Qt.UserRole)
        if item.text() and item.text() != self.class_names.get(value):
            self.class_names[value] = item.text()
            self._refresh_table()

    def _set_status(self, text):
        self.status.setText(text)

    # -- counting ------------------------------------------------------------------
    def count(self, *, wait=False):
        owner = self.owner
        if owner.image_layer is None:
            raise InvalidImageError("no image layer; add an image to the viewer.")
        if not owner.model_is_fitted():
            raise NotFittedError("no trained model yet; paint two classes (or load a model) "
                                 "first.")
        model, layer = owner.model, owner.image_layer
        image = np.asarray(layer.data)
        channel_axis = -1 if layer.rgb else None
        ndim = image.ndim - (1 if layer.rgb else 0)
        spacing = tuple(float(v) for v in layer.scale[-ndim:])   # the layer's pixel size
        self._count_gen += 1
        self._class_gen += 1
        gen = self._count_gen

        def work():
            return ObjectSet.count(model, image, channel_axis=channel_axis, spacing=spacing)

        if wait:
            objects = work()
            self._show_counted(layer, objects)
            return objects.labels, objects.table
        post = self._bridge.message.emit

        def run():
            try:
                post(("counted", gen, layer, work()))
            except Exception as exc:  # noqa: BLE001 (shown in the widget)
                post(("error", gen, exc))

        self.count_button.setEnabled(False)
        self._set_status("counting objects...")
        threading.Thread(target=run, name="pixelforest-objects", daemon=True).start()
        return None

    def _show_counted(self, layer, objects):
        from napari.utils.colormaps import DirectLabelColormap

        self.count_button.setEnabled(True)
        self.objects = objects
        self.annotations = {}
        viewer = self.owner.viewer
        common = {"scale": layer.scale, "translate": layer.translate}
        classes = np.zeros(objects.labels.shape, np.uint8)
        if self.classes_layer is None or self.classes_layer not in viewer.layers:
            self.classes_layer = viewer.add_labels(
                classes, name="object classes", opacity=0.5,
                colormap=DirectLabelColormap(color_dict=self._colors()),
                metadata={_ROLE: "object classes"}, **common)
        else:
            self.classes_layer.data = classes
        if self.objects_layer is None or self.objects_layer not in viewer.layers:
            self.objects_layer = viewer.add_labels(
                objects.labels, name="objects", metadata={_ROLE: "objects"}, **common)
            self.objects_layer.contour = 2
            self.objects_layer.mouse_drag_callbacks.append(self._on_click)
        else:
            self.objects_layer.data = objects.labels
        for lay in (self.classes_layer, self.objects_layer):
            lay.scale, lay.translate = layer.scale, layer.translate
        viewer.layers.selection.active = self.objects_layer
        self.objects_layer.mode = "pan_zoom"
        self._refresh_table()
        self._set_status(objects.summary_text() + "; click objects to classify them.")
        self.counted.emit()

    def _refresh_table(self):
        if self.objects is not None:
            self._dock().show_table(self.objects.named_table(self.class_names, self.annotations),
                                    self.objects.summary_text())

    def _dock(self):
        """The table dock, made (again, if the user closed it) when needed."""
        dock = self.table_dock
        try:
            alive = dock is not None and dock.parent() is not None
        except RuntimeError:  # deleted with its closed dock
            alive = False
        if not alive:
            self.table_dock = ObjectsTable()
            self.owner.viewer.window.add_dock_widget(self.table_dock, name="Objects",
                                                     area="bottom")
        return self.table_dock

    def _colors(self):
        colors = {None: "transparent", 0: "transparent"}
        for value in self.class_names:
            colors[value] = object_class_color(value)
        return colors

    def _apply_colormap(self):
        from napari.utils.colormaps import DirectLabelColormap

        if self.classes_layer is not None:
            self.classes_layer.colormap = DirectLabelColormap(color_dict=self._colors())

    # -- classifying ---------------------------------------------------------------
    def _on_click(self, layer, event):
        """Mouse callback of the objects layer: a click (no drag) assigns the selected class."""
        if layer.mode != "pan_zoom" or getattr(event, "button", 1) not in (1, None):
            return
        value = layer.get_value(event.position, view_direction=event.view_direction,
                                dims_displayed=event.dims_displayed, world=True)
        start = np.asarray(event.pos, dtype=float)
        yield
        while event.type == "mouse_move":
            yield
        moved = float(np.max(np.abs(np.asarray(event.pos, dtype=float) - start)))
        if moved <= _CLICK_SLOP and value is not None and np.ndim(value) == 0 and value > 0:
            self.owner._guard(self.assign, int(value), self.selected_class)

    def assign(self, label, value=None, *, wait=False):
        if self.objects is None:
            raise NotFittedError("no objects yet; count objects first.")
        value = self.selected_class if value is None else int(value)
        if value not in self.class_names:
            raise InvalidParameterError(
                f"object class {value!r} does not exist; the classes are "
                f"{sorted(self.class_names)}.")
        self.annotations[self.objects.check_label(label)] = value
        self.classes_layer.data = self.objects.class_image(self.annotations)
        self._classify(wait=wait)

    def _classify(self, *, wait=False):
        """Train the object classifier on the clicked objects once they hold two classes."""
        self._class_gen += 1
        gen = self._class_gen
        if len(set(self.annotations.values())) < 2:
            self.objects.model = None
            self._set_status(f"{len(self.annotations)} object(s) classified by hand; give "
                             "objects of a second class to train the object classifier.")
            self._refresh_table()
            return
        features, annotations = self.objects.features(), dict(self.annotations)
        channel_axis = self.objects.channel_axis
        if wait:
            self._on_message(("classified", gen, self.objects,
                              *classify(features, annotations, channel_axis=channel_axis)))
            return
        post = self._bridge.message.emit
        objects = self.objects

        def run():
            try:
                post(("classified", gen, objects,
                      *classify(features, annotations, channel_axis=channel_axis)))
            except Exception as exc:  # noqa: BLE001 (shown in the widget)
                post(("class-error", gen, exc))

        self._set_status("training the object classifier...")
        threading.Thread(target=run, name="pixelforest-object-classes", daemon=True).start()

    def _on_message(self, msg):
        kind, gen = msg[0], msg[1]
        if gen != (self._class_gen if kind.startswith("class") else self._count_gen):
            return
        if kind == "counted":
            self._show_counted(msg[2], msg[3])
        elif kind == "classified":
            objects, model, predicted = msg[2], msg[3], msg[4]
            if objects is not self.objects:
                return
            objects.adopt(model, predicted)
            self.classes_layer.data = objects.class_image(predicted)
            self._refresh_table()
            counts = np.bincount(list(predicted.values()), minlength=max(self.class_names) + 1)
            self._set_status(
                f"object classifier trained on {len(self.annotations)} objects: "
                + ", ".join(f"{self.class_names[v]} {int(counts[v])}"
                            for v in sorted(self.class_names)))
            self.classified.emit()
        elif kind in ("error", "class-error"):
            self.count_button.setEnabled(True)
            self.last_error = msg[2]
            self._set_status(f"{type(msg[2]).__name__}: {msg[2]}")

    # -- files -------------------------------------------------------------------------
    def export(self, path):
        if self.objects is None:
            raise NotFittedError("no objects yet; count objects first.")
        written = self.objects.export(path, class_names=self.class_names,
                                      annotations=self.annotations)
        self._set_status("written: " + ", ".join(str(p) for p in written))
        return written

    def _ask_export(self):
        filters = {"OME-Zarr labels + CSV table (*.ome.zarr)": ".ome.zarr",
                   "CSV table (*.csv)": ".csv", "Object classifier (*.skops)": ".skops"}
        path, chosen = QFileDialog.getSaveFileName(self, "Save objects", "",
                                                   ";;".join(filters))
        if not path:
            return
        if not path.lower().endswith((".zarr", ".csv", ".skops")):
            path += filters.get(chosen, ".ome.zarr")
        self.owner._guard(self.export, path)


def _camera(viewer):
    """The viewer's camera (``viewer.scene.camera`` since napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def _undone_box(done, where):
    """The bounding box, within region ``where``, of the pixels ``done`` is False at (or None)."""
    todo = ~done[where]
    if not todo.any():
        return None
    box = []
    for ax, s in enumerate(where):
        hit = np.flatnonzero(todo.any(axis=tuple(a for a in range(todo.ndim) if a != ax)))
        box.append(slice(s.start + int(hit[0]), s.start + int(hit[-1]) + 1))
    return tuple(box)


def _stopper(box):
    """A callback that stops the worker in ``box`` without keeping the widget alive."""
    def stop(*_):
        for worker in box:
            worker.stop()

    return stop
