"""The objects part of the dock widget: count, measure and classify the objects of an image.

*Count objects* splits the pixel classifier's foreground into objects
(:meth:`PixelClassifier.predict_instances
<pixelforest.classify.classifier.PixelClassifier.predict_instances>`) and
measures them (:func:`pixelforest.objects.measure`) on a background
thread; the GUI thread then shows them as a Labels layer ``objects`` (drawn
as outlines) and their measurements in a table dock.  Clicking an object of
that layer gives it the selected object class; once two classes are given,
an :class:`~pixelforest.objects.classifier.ObjectClassifier` is trained on
the measurements of the clicked objects (in the background) and every
object is shown in its predicted class in the Labels layer
``object classes``.
"""

from __future__ import annotations

import threading

import numpy as np
from qtpy.QtCore import QAbstractTableModel, QModelIndex, QObject, Qt, Signal
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from pixelforest.errors import InvalidImageError, NotFittedError

__all__ = ["ObjectsPanel", "ObjectsTable"]

#: Colours of object classes 1, 2, ... (then repeated): matplotlib's Dark2.
_PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
            "#a6761d", "#666666")

#: Canvas pixels the mouse may move between press and release for a click.
_CLICK_SLOP = 4.0


def _class_color(value):
    return _PALETTE[(int(value) - 1) % len(_PALETTE)]


class _Bridge(QObject):
    message = Signal(object)


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
        self._columns = []
        self._values = []

    def set_frame(self, table):
        self.beginResetModel()
        self._columns = [str(c) for c in table.columns]
        self._values = [table[c].tolist() for c in table.columns]
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()):  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() or not self._values else len(self._values[0])

    def columnCount(self, parent=QModelIndex()):  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self._columns)

    def data(self, index, role=Qt.DisplayRole):
        if role != Qt.DisplayRole or not index.isValid():
            return None
        return _format(self._values[index.column()][index.row()])

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if role != Qt.DisplayRole:
            return None
        if orientation == Qt.Horizontal:
            return self._columns[section] if section < len(self._columns) else None
        return str(section + 1)


class ObjectsTable(QWidget):
    """A dock with one row per object (the measurements) and a summary line."""

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
            column = self.model._columns.index(column)
        return self.model.data(self.model.index(row, column))


class ObjectsPanel(QWidget):
    """Count objects, show their measurements, and classify them from clicks.

    Part of :class:`~pixelforest.napari.PixelClassifierWidget` (its
    *Objects* section), which reaches it through its public methods
    (``count_objects``, ``assign_object_class``...).

    Parameters
    ----------
    owner : PixelClassifierWidget
        The dock widget: its ``viewer``, ``model`` and ``image_layer``.
    """

    #: Emitted (GUI thread) when objects were counted and measured.
    counted = Signal()
    #: Emitted (GUI thread) when every object has its predicted class.
    classified = Signal()

    def __init__(self, owner, parent=None):
        super().__init__(parent)
        self.owner = owner
        self.class_names = {1: "class 1", 2: "class 2"}
        self.annotations = {}        # object label -> object class
        self.table = None            # measurements of the objects (DataFrame)
        self.labels = None           # the instance labels measured
        self.object_model = None
        self.objects_layer = None
        self.classes_layer = None
        self.table_dock = None
        self.last_error = None
        self._count_gen = 0          # counting again makes an older count stale
        self._class_gen = 0          # a click or a count makes an older classifier stale
        self._bridge = _Bridge()
        self._bridge.message.connect(self._on_message)
        self._build_ui()

    # -- the user interface --------------------------------------------------
    def _build_ui(self):
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.count_button = QPushButton("Count objects")
        self.count_button.setObjectName("count_objects")
        self.count_button.setToolTip(
            "Split the predicted foreground into objects (touching ones separated) and "
            "measure them (in the background)")
        self.count_button.clicked.connect(lambda: self.owner.count_objects(wait=False))
        row.addWidget(self.count_button)
        self.add_button = QPushButton("Add object class")
        self.add_button.clicked.connect(lambda: self.add_class())
        row.addWidget(self.add_button)
        self.save_button = QPushButton("Save objects...")
        self.save_button.setObjectName("save_objects")
        self.save_button.setToolTip(
            "Save the objects as OME-Zarr labels next to the image with the table as CSV "
            "beside them, or the table alone (*.csv)")
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
        self._fill_class_list()

    def _fill_class_list(self, select=None):
        current = self.selected_class if select is None else select
        self.class_list.blockSignals(True)
        self.class_list.clear()
        for value, name in sorted(self.class_names.items()):
            item = QListWidgetItem(name)
            item.setData(Qt.UserRole, value)
            item.setFlags(item.flags() | Qt.ItemIsEditable)
            pix = QPixmap(12, 12)
            pix.fill(QColor(_class_color(value)))
            item.setIcon(QIcon(pix))
            self.class_list.addItem(item)
            if value == current:
                self.class_list.setCurrentItem(item)
        self.class_list.blockSignals(False)

    @property
    def selected_class(self):
        """The object class a click assigns (the selected row; 1 by default)."""
        item = self.class_list.currentItem() if hasattr(self, "class_list") else None
        return 1 if item is None else int(item.data(Qt.UserRole))

    @selected_class.setter
    def selected_class(self, value):
        if int(value) not in self.class_names:
            from pixelforest.errors import InvalidParameterError

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

    def _ask_export(self):
        from qtpy.QtWidgets import QFileDialog

        from pixelforest.errors import PixelforestError

        zarr_filter, csv_filter = "OME-Zarr labels + CSV table (*.ome.zarr)", "CSV table (*.csv)"
        path, chosen = QFileDialog.getSaveFileName(self, "Save objects", "",
                                                   f"{zarr_filter};;{csv_filter}")
        if not path:
            return
        if not path.lower().endswith((".zarr", ".csv")):
            path += ".csv" if chosen == csv_filter else ".ome.zarr"
        try:
            written = self.export(path)
        except (PixelforestError, OSError, ValueError) as exc:
            self._set_status(f"{type(exc).__name__}: {exc}")
        else:
            self._set_status("written: " + ", ".join(str(p) for p in written))

    # -- counting ----------------------------------------------------------------
    def count(self, *, wait=False):
        """Instance labels and measurements of the owner's image (see ``count_objects``)."""
        owner = self.owner
        if owner.image_layer is None:
            raise InvalidImageError("no image layer; add an image to the viewer.")
        if not owner.model_is_fitted():
            raise NotFittedError("no trained model yet; paint two classes (or load a model) "
                                 "first.")
        model, layer = owner.model, owner.image_layer
        array = np.asarray(layer.data)
        channel_axis = -1 if layer.rgb else None
        ndim = array.ndim - (1 if layer.rgb else 0)
        spacing = tuple(float(v) for v in layer.scale[-ndim:])   # the layer's pixel size
        self._count_gen += 1
        self._class_gen += 1
        gen = self._count_gen
        if wait:
            result = _count(model, array, channel_axis, spacing)
            self._show_counted(layer, *result)
            return result[0], result[1]
        post = self._bridge.message.emit

        def run():
            try:
                post(("counted", gen, layer, *_count(model, array, channel_axis, spacing)))
            except Exception as exc:  # noqa: BLE001 (shown in the widget)
                post(("error", gen, exc))

        self.count_button.setEnabled(False)
        self._set_status("counting objects...")
        threading.Thread(target=run, name="pixelforest-objects", daemon=True).start()
        return None

    def _show_counted(self, layer, labels, table, summary):
        from napari.utils.colormaps import DirectLabelColormap

        self.count_button.setEnabled(True)
        self.labels, self.table = labels, table.copy()
        self.annotations = {}
        self.object_model = None
        viewer = self.owner.viewer
        common = {"scale": layer.scale, "translate": layer.translate}
        classes = np.zeros(labels.shape, np.uint8)
        if self.classes_layer is None or self.classes_layer not in viewer.layers:
            self.classes_layer = viewer.add_labels(
                classes, name="object classes", opacity=0.5,
                colormap=DirectLabelColormap(color_dict=self._colors()),
                metadata={"pixelforest": "object classes"}, **common)
        else:
            self.classes_layer.data = classes
        if self.objects_layer is None or self.objects_layer not in viewer.layers:
            self.objects_layer = viewer.add_labels(
                labels, name="objects", metadata={"pixelforest": "objects"}, **common)
            self.objects_layer.contour = 2
            self.objects_layer.mouse_drag_callbacks.append(self._on_click)
        else:
            self.objects_layer.data = labels
        for lay in (self.classes_layer, self.objects_layer):
            lay.scale, lay.translate = layer.scale, layer.translate
        viewer.layers.selection.active = self.objects_layer
        self.objects_layer.mode = "pan_zoom"
        self._summary = summary
        self._refresh_table()
        text = self._summary_text()
        self._set_status(text + "; click objects to classify them.")
        self.counted.emit()

    def _summary_text(self):
        s = self._summary.iloc[0]
        size = "area" if self.labels.ndim == 2 else "volume"
        n = int(s["count"])
        if n == 0:
            return "no object found"
        return (f"{n} object{'s' * (n != 1)}, mean {size} {s[f'mean_{size}']:.1f} px "
                f"({int(s['touching_border'])} touching the border)")

    def named_table(self):
        """The measurements with the class names: ``annotated`` (by hand) and ``class`` (predicted)."""
        table = self.table.copy()
        names = self.class_names
        table.insert(1, "annotated", [names.get(self.annotations.get(int(k)), "")
                                      for k in table["label"]])
        if "class" in table:
            table["class"] = [names.get(int(v), str(v)) for v in table["class"]]
            table.insert(1, "class", table.pop("class"))
        return table

    def _refresh_table(self):
        if self.table is None:
            return
        self._dock().show_table(self.named_table(), self._summary_text())

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
            colors[value] = _class_color(value)
        return colors

    def _apply_colormap(self):
        from napari.utils.colormaps import DirectLabelColormap

        if self.classes_layer is not None:
            self.classes_layer.colormap = DirectLabelColormap(color_dict=self._colors())

    # -- files -----------------------------------------------------------------------
    def export(self, path):
        """Write the objects: ``*.csv`` the table, ``*.zarr`` OME-Zarr labels and the table beside.

        The OME-Zarr store holds the image and the instance labels under
        ``labels/objects``; its ``image-label`` metadata name and colour
        each object that has a class (predicted, else given by hand), so
        NGFF tools show the classes.  The CSV table (one row per object,
        with the ``annotated`` and ``class`` names) is written next to it
        as ``<name>.csv``.  Both are written atomically.

        Returns
        -------
        paths : list of Path
            The files written.
        """
        from pathlib import Path

        from pixelforest.errors import UnsupportedFormatError
        from pixelforest.objects import write_csv

        if self.table is None:
            raise NotFittedError("no objects yet; count objects first.")
        path = Path(path)
        name = path.name.lower()
        if name.endswith(".csv"):
            write_csv(self.named_table(), path)
            return [path]
        if not name.endswith(".zarr"):
            raise UnsupportedFormatError(
                f"cannot export the objects as {path.name!r}; name the file *.ome.zarr "
                "(labels with the image, and a CSV table beside) or *.csv (the table).")
        from pixelforest.io.ngff import write_ome_zarr_labels

        layer = self.owner.image_layer
        classes = (dict(zip(self.table["label"].tolist(), self.table["class"].tolist()))
                   if "class" in self.table else dict(self.annotations))
        ndim = self.labels.ndim
        write_ome_zarr_labels(
            path, self.labels, image=np.asarray(layer.data), name="objects",
            channel_axis=-1 if layer.rgb else None,
            class_names={int(k): self.class_names.get(int(v), str(v))
                         for k, v in classes.items()},
            colors={int(k): _class_color(v) for k, v in classes.items()},
            spacing=tuple(float(v) for v in layer.scale[-ndim:]))
        stem = path.name[:-len(".ome.zarr")] if name.endswith(".ome.zarr") else path.stem
        table_path = path.with_name(stem + ".csv")
        write_csv(self.named_table(), table_path)
        return [path, table_path]

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
            self.assign(int(value), self.selected_class)

    def assign(self, label, value=None, *, wait=False):
        """Give object ``label`` the object class ``value`` (default: the selected one)."""
        from pixelforest.errors import InvalidLabelsError, InvalidParameterError

        if self.table is None:
            raise NotFittedError("no objects yet; count objects first.")
        value = self.selected_class if value is None else int(value)
        if value not in self.class_names:
            raise InvalidParameterError(
                f"object class {value!r} does not exist; the classes are "
                f"{sorted(self.class_names)}.")
        if int(label) not in set(self.table["label"].tolist()):
            raise InvalidLabelsError(f"{label} is not an object of the objects layer.")
        self.annotations[int(label)] = value
        self._show_classes()
        self._classify(wait=wait)

    def _show_classes(self, predicted=None):
        """Paint the object classes layer: predicted classes if known, else the clicked ones."""
        mapping = dict(self.annotations) if predicted is None else predicted
        top = int(self.labels.max(initial=0))
        lut = np.zeros(top + 1, np.uint8)
        for label, value in mapping.items():
            if 0 < label <= top:
                lut[label] = value
        self.classes_layer.data = lut[self.labels]
        self._apply_colormap()

    def _classify(self, *, wait=False):
        """Train the object classifier on the clicked objects once they hold two classes.

        In the background, unless ``wait``; a newer click or count makes
        the result stale (dropped).
        """
        if len(set(self.annotations.values())) < 2:
            self.object_model = None
            self._set_status(f"{len(self.annotations)} object(s) classified by hand; give "
                             "objects of a second class to train the object classifier.")
            self._refresh_table()
            return
        self._class_gen += 1
        gen = self._class_gen
        table = self.table.drop(columns="class", errors="ignore")
        annotations = dict(self.annotations)
        channel_axis = -1 if self.owner.image_layer is not None and \
            self.owner.image_layer.rgb else None
        if wait:
            self._on_message(("classified", gen, *_classify(table, annotations, channel_axis)))
            return
        post = self._bridge.message.emit

        def run():
            try:
                post(("classified", gen, *_classify(table, annotations, channel_axis)))
            except Exception as exc:  # noqa: BLE001 (shown in the widget)
                post(("class-error", gen, exc))

        self._set_status("training the object classifier...")
        threading.Thread(target=run, name="pixelforest-object-classes", daemon=True).start()

    def _on_message(self, msg):
        kind, gen = msg[0], msg[1]
        if gen != (self._class_gen if kind.startswith("class") else self._count_gen):
            return
        if kind == "counted":
            self._show_counted(*msg[2:])
        elif kind == "classified":
            model, predicted = msg[2], msg[3]
            self.object_model = model
            self.table["class"] = [predicted[int(k)] for k in self.table["label"]]
            self._show_classes(predicted)
            self._refresh_table()
            counts = np.bincount(list(predicted.values()), minlength=max(self.class_names) + 1)
            self._set_status(
                f"object classifier trained on {len(self.annotations)} objects: "
                + ", ".join(f"{self.class_names[v]} {int(counts[v])}"
                            for v in sorted(self.class_names) if v < counts.size))
            self.classified.emit()
        elif kind in ("error", "class-error"):
            self.count_button.setEnabled(True)
            self.last_error = msg[2]
            self._set_status(f"{type(msg[2]).__name__}: {msg[2]}")


def _count(model, array, channel_axis, spacing):
    """Instance labels, measurements and summary of ``array`` (any thread).

    ``spacing`` (the image layer's scale) makes the watershed's object size
    and the physical columns follow anisotropic pixels (a z step larger
    than the xy pixel).
    """
    from pixelforest.objects import measure, summarize

    labels = model.predict_instances(array, spacing=spacing)
    table = measure(labels, array, spacing=spacing, channel_axis=channel_axis)
    return labels, table, summarize(table, shape=labels.shape, spacing=spacing)


def _classify(table, annotations, channel_axis):
    """An ObjectClassifier fitted on the annotated rows and the class of every object."""
    from pixelforest.objects.classifier import ObjectClassifier

    clf = ObjectClassifier(channel_axis=channel_axis).fit_table(table, annotations)
    predicted = clf.predict_table(table)
    return clf, {int(k): int(v) for k, v in zip(table["label"], predicted)}
