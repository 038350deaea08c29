"""The objects of one image, for the dock widget: count, measure, classify from clicks, save.

No Qt here (like :mod:`pixelforest.napari.live`): the dock widget runs
:meth:`ObjectSet.count` and :func:`classify` on background threads and
shows the results.  :meth:`ObjectSet.count` splits the pixel classifier's
foreground into objects (:meth:`PixelClassifier.predict_instances
<pixelforest.classify.classifier.PixelClassifier.predict_instances>`) and
measures them (:func:`pixelforest.objects.measure`); objects the user
clicked get a class (``{object label: class}``), and once two classes are
given :func:`classify` fits an
:class:`~pixelforest.objects.classifier.ObjectClassifier` on the
measurements of the clicked objects and predicts the class of every
object.  :meth:`ObjectSet.export` writes the objects as OME-Zarr labels
next to their image (:func:`pixelforest.io.ngff.write_ome_zarr_labels`)
with the table as CSV beside them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pixelforest.errors import InvalidLabelsError, NotFittedError, UnsupportedFormatError

__all__ = ["ObjectSet", "classify", "object_class_color"]

#: Colours of object classes 1, 2, ... (then repeated): matplotlib's Dark2.
PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
           "#a6761d", "#666666")


def object_class_color(value):
    """The colour (``"#RRGGBB"``) of object class ``value`` (1, 2, ...).

    Examples
    --------
    >>> object_class_color(1), object_class_color(9)
    ('#1b9e77', '#1b9e77')
    """
    return PALETTE[(int(value) - 1) % len(PALETTE)]


class ObjectSet:
    """The objects of one image: instance labels, measurements and classes.

    Made by :meth:`count`.  ``table`` gains a ``class`` column (the
    predicted object class of every object) with :meth:`adopt`.

    Attributes
    ----------
    labels : ndarray of uint32
        Instance labels (0 = background).
    table : pandas.DataFrame
        One row per object (:func:`pixelforest.objects.measure`).
    summary : pandas.DataFrame
        One row: count, sizes, coverage (:func:`pixelforest.objects.summarize`).
    image : ndarray
        The image measured (and exported with the labels).
    channel_axis : int or None
        Its channel axis.
    spacing : tuple of float
        Its pixel size along each spatial axis.
    model : ObjectClassifier or None
        The object classifier of :meth:`adopt`.
    """

    def __init__(self, labels, table, summary, *, image, channel_axis, spacing):
        self.labels = labels
        self.table = table
        self.summary = summary
        self.image = image
        self.channel_axis = channel_axis
        self.spacing = spacing
        self.model = None

    @classmethod
    def count(cls, model, image, *, channel_axis=None, spacing=None):
        """Split ``model``'s foreground of ``image`` into objects and measure them.

        ``spacing`` (pixel size per spatial axis) scales the watershed's
        object size and the physical columns, so anisotropic stacks are
        split and measured in physical units.  Safe on any thread.

        Examples
        --------
        >>> import numpy as np
        >>> from pixelforest import PixelClassifier
        >>> from pixelforest.features import FeatureSpec
        >>> image = np.zeros((64, 96), np.float32)
        >>> image[20:40, 10:30] = image[20:40, 60:80] = 1
        >>> scribbles = np.zeros(image.shape, np.uint8)
        >>> scribbles[2, 2:90], scribbles[30, 15:25] = 1, 2
        >>> clf = PixelClassifier(FeatureSpec(sigmas=(1, 2)), random_state=0)
        >>> objects = ObjectSet.count(clf.fit(image, scribbles), image)
        >>> len(objects.table), objects.summary_text()
        (2, 'two objects, mean area 400.0 px (none touching the border)')
        """
        from pixelforest.objects import measure, summarize

        spatial = np.ndim(image) - (0 if channel_axis is None else 1)
        spacing = (1.0,) * spatial if spacing is None else tuple(float(v) for v in spacing)
        labels = model.predict_instances(image, spacing=spacing)
        table = measure(labels, image, spacing=spacing, channel_axis=channel_axis)
        summary = summarize(table, shape=labels.shape, spacing=spacing)
        return cls(labels, table, summary, image=image, channel_axis=channel_axis,
                   spacing=spacing)

    def summary_text(self):
        """The count and the mean size, in a few words."""
        s = self.summary.iloc[0]
        size = "area" if self.labels.ndim == 2 else "volume"
        n = int(s["count"])
        if n == 0:
            return "no object found"
        count = {1: "one object", 2: "two objects"}.get(n, f"{n} objects")
        border = int(s["touching_border"])
        return (f"{count}, mean {size} {s[f'mean_{size}']:.1f} px "
                f"({border or 'none'} touching the border)")

    def check_label(self, label):
        """``label`` as an int if it is an object of :attr:`labels`, else InvalidLabelsError."""
        label = int(label)
        if label not in set(self.table["label"].tolist()):
            raise InvalidLabelsError(f"{label} is not an object of the objects layer.")
        return label

    def features(self):
        """The measurements an object classifier learns from (the table without ``class``)."""
        return self.table.drop(columns="class", errors="ignore")

    def adopt(self, model, predicted):
        """Keep ``model`` and the ``predicted`` class of every object (``{label: class}``)."""
        self.model = model
        self.table["class"] = [predicted[int(k)] for k in self.table["label"]]

    def predicted(self):
        """``{label: class}`` of the last :meth:`adopt`, or None."""
        if "class" not in self.table:
            return None
        return dict(zip(self.table["label"].tolist(), self.table["class"].tolist()))

    def class_image(self, classes):
        """The class (``{label: class}``, positive ints) of each object painted over its pixels."""
        top = int(self.labels.max(initial=0))
        values = [int(v) for v in classes.values()]
        lut = np.zeros(top + 1, dtype=np.min_scalar_type(max(values, default=0)))
        for label, value in classes.items():
            if 0 < int(label) <= top:
                lut[int(label)] = int(value)
        return lut[self.labels]

    def named_table(self, class_names, annotations):
        """The table with the class names: ``annotated`` (clicked) and ``class`` (predicted)."""
        table = self.table.copy()
        table.insert(1, "annotated", [class_names.get(annotations.get(int(k)), "")
                                      for k in table["label"]])
        if "class" in table:
            names = [class_names.get(int(v), str(v)) for v in table.pop("class")]
            table.insert(1, "class", names)
        return table

    def export(self, path, *, class_names, annotations):
        """Write the objects (``*.ome.zarr`` labels with the image and a CSV beside, or
        ``*.csv``), or the object classifier (``*.skops``).

        The OME-Zarr store holds the image and the instance labels under
        ``labels/objects``; its ``image-label`` metadata name and colour
        each object that has a class (predicted, else clicked), so NGFF
        tools show the classes.  The CSV table (one row per object, with
        the ``annotated`` and ``class`` names) is written next to it as
        ``<name>.csv``.  A ``*.skops`` file is the object classifier
        (:func:`pixelforest.io.model_file.save_object_model`; its classes
        are the object class values), for ``pixelforest classify-objects``.
        Everything is written atomically.

        Parameters
        ----------
        path : str or Path
            ``*.zarr`` (by convention ``*.ome.zarr``), ``*.csv`` or ``*.skops``.
        class_names : dict
            Name of each object class.
        annotations : dict
            ``{object label: class}`` of the clicked objects.

        Returns
        -------
        paths : list of Path
            The files written.

        Raises
        ------
        UnsupportedFormatError
            Another extension.
        NotFittedError
            ``*.skops`` before an object classifier was trained.
        """
        from pixelforest.objects import write_csv

        path = Path(path)
        name = path.name.lower()
        if name.endswith(".skops"):
            from pixelforest.io.model_file import save_object_model

            if self.model is None:
                raise NotFittedError("no object classifier yet; click objects of two classes "
                                     "first.")
            save_object_model(self.model, path)
            return [path]
        table = self.named_table(class_names, annotations)
        if name.endswith(".csv"):
            write_csv(table, path)
            return [path]
        if not name.endswith(".zarr"):
            raise UnsupportedFormatError(
                f"cannot save the objects as {path.name!r}; name the file *.ome.zarr "
                "(labels with the image, and a CSV table beside), *.csv (the table) or "
                "*.skops (the object classifier).")
        from pixelforest.io.ngff import write_ome_zarr_labels

        classes = self.predicted() or dict(annotations)
        write_ome_zarr_labels(
            path, self.labels, image=self.image, name="objects", channel_axis=self.channel_axis,
            class_names={int(k): class_names.get(int(v), f"class {v}")
                         for k, v in classes.items()},
            colors={int(k): object_class_color(v) for k, v in classes.items()},
            spacing=self.spacing)
        stem = path.name[:-len(".ome.zarr")] if name.endswith(".ome.zarr") else path.stem
        table_path = path.with_name(stem + ".csv")
        write_csv(table, table_path)
        return [path, table_path]


def classify(features, annotations, *, channel_axis=None):
    """An ObjectClassifier fitted on the clicked objects and the class of every object.

    Parameters
    ----------
    features : pandas.DataFrame
        The measurements (:meth:`ObjectSet.features`).
    annotations : dict
        ``{object label: class}`` of at least two classes.
    channel_axis : int or None, optional
        Recorded in the model (for using it on images later).

    Returns
    -------
    model : ObjectClassifier
    predicted : dict
        ``{object label: class}`` for every row of ``features``.
    """
    from pixelforest.objects.classifier import ObjectClassifier

    model = ObjectClassifier(channel_axis=channel_axis).fit_table(features, annotations)
    predicted = model.predict_table(features)
    return model, {int(k): int(v) for k, v in zip(features["label"], predicted)}
