"""Labels as OME-Zarr (OME-NGFF 0.5): open next to their image in napari and other NGFF tools.

A store written by :func:`write_ome_zarr_labels` looks like this::

    out.ome.zarr/              image group: multiscales (axes, scale = spacing)
      0/                       the image, full resolution (1/, 2/ ...: coarser levels)
      labels/                  {"labels": ["prediction"]}
        prediction/            multiscales + "image-label" (colours, class names,
          0/                   source "../../") + "pixelforest" metadata
                               the labels, uint8 ... uint64

Without an image, the store root is the label image itself (multiscales and
``image-label``, no ``source``); pass the image whenever you can, as viewers
look for the image two folders up from a label image (napari-ome-zarr 0.10
even creates an empty Zarr group there when it finds none).
:func:`add_ome_zarr_labels` adds a label image to an existing OME-Zarr 0.5
image (e.g. the input of a prediction) without copying the image.

Metadata follow OME-NGFF 0.5: Zarr v3, the
OME attributes under the key ``"ome"`` with ``"version": "0.5"``, and the
arrays' ``dimension_names`` equal to the axis names; that is what
ome-zarr-py (the library behind napari-ome-zarr) writes by default with
zarr-python 3.  :func:`read_ome_zarr_labels` also reads 0.4 stores (Zarr v2,
attributes at the top level).

``image-label`` holds one ``colors`` entry (``label-value``, ``rgba``) and
one ``properties`` entry (``label-value``, ``class``) per named label value:
for semantic labels each class, for instance labels the objects that were
given a class (e.g. by an object classifier), coloured by class.  Instance
labels without classes carry no colours, so viewers pick their own per
object.  Default colours are the Okabe-Ito palette (:data:`PALETTE`), which
stays distinguishable with the common forms of colour blindness; the value
0 (background) is transparent.

Writing is atomic (a temporary store, then renamed) and chunk by chunk: a
dask array is stored one chunk at a time, never gathered in memory.  For a
writer that stores its own blocks (``pixelforest predict``), the steps are
public: :func:`create_ome_zarr_labels` lays out the groups and empty arrays
inside a temporary store and returns the path of the full-resolution label
array, the caller fills it block by block, then :func:`write_label_pyramid`
derives the coarser levels; :func:`ngff_image_attrs`,
:func:`ngff_labels_attrs` and :func:`ngff_label_attrs` give the attribute
dicts alone.
"""

import numbers
import re
from pathlib import Path

import numpy as np

from pixelforest._shared.atomic import atomic_output
from pixelforest.errors import (
    ImageFileNotFoundError,
    InvalidImageError,
    InvalidParameterError,
    ShapeMismatchError,
    UnsupportedFormatError,
)

__all__ = ["NGFF_VERSION", "PALETTE", "SPACE_UNITS", "add_ome_zarr_labels",
           "create_ome_zarr_labels",
           "label_colors", "ngff_image_attrs", "ngff_label_attrs", "ngff_labels_attrs",
           "read_ome_zarr_labels", "store_ome_zarr_labels", "write_label_pyramid",
           "write_ome_zarr_labels"]

#: The OME-NGFF version written.
NGFF_VERSION = "0.5"

#: Okabe-Ito colours (RGB, 0-255), in the order given to label values: orange,
#: sky blue, bluish green, yellow, blue, vermillion, reddish purple.
PALETTE = ((230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66),
           (0, 114, 178), (213, 94, 0), (204, 121, 167))

#: Units of space axes that OME-NGFF allows (UDUNITS-2 names).
SPACE_UNITS = frozenset({
    "angstrom", "attometer", "centimeter", "decimeter", "exameter", "femtometer", "foot",
    "gigameter", "hectometer", "inch", "kilometer", "megameter", "meter", "micrometer",
    "mile", "millimeter", "nanometer", "parsec", "petameter", "picometer", "terameter",
    "yard", "yoctometer", "yottameter", "zeptometer", "zettameter",
})

#: Spellings of units microscope files use, and the NGFF name they mean.
_UNIT_ALIASES = {"µm": "micrometer", "um": "micrometer", "μm": "micrometer",
                 "micron": "micrometer", "nm": "nanometer", "mm": "millimeter",
                 "m": "meter", "å": "angstrom"}

#: Label dtypes that OME-NGFF allows.
_LABEL_DTYPES = tuple(np.dtype(t) for t in ("uint8", "int8", "uint16", "int16", "uint32",
                                            "int32", "uint64", "int64"))
_AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


# --------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------

def _is_dask(array):
    return type(array).__module__.split(".")[0] == "dask"


def _check_axes(axes, ndim, *, name="labels"):
    """The axes of a label image: ``"yx"``/``"zyx"`` by default, or e.g. ``"tyx"``."""
    if axes is None:
        if ndim not in (2, 3):
            raise InvalidImageError(
                f"{name} are {ndim}-D; pass axes= (e.g. 'tzyx') to say what each axis is, "
                "or give 2-D (y, x) or 3-D (z, y, x) labels."
            )
        return "zyx"[-ndim:]
    axes = str(axes).lower()
    spatial = axes.lstrip("t")
    if (len(axes) != ndim or len(set(axes)) != ndim or not set(axes) <= set("tzyx")
            or spatial not in ("yx", "zyx")):
        raise InvalidParameterError(
            f"axes={axes!r} do not describe {ndim}-D {name}; give one letter per axis in "
            "the order t, z, y, x (e.g. 'yx', 'zyx', 'tyx', 'tzyx')."
        )
    return axes


def _check_spacing(spacing, axes):
    """Pixel size along each spatial axis of ``axes`` as floats (None: 1)."""
    n = len(axes.lstrip("t"))
    if spacing is None:
        return (1.0,) * n
    values = ([spacing] * n if isinstance(spacing, numbers.Real)
              and not isinstance(spacing, bool) else list(spacing))
    ok = len(values) == n and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and np.isfinite(v) and v > 0
        for v in values)
    if not ok:
        raise InvalidParameterError(
            f"spacing must be one positive number or {n} (one per spatial axis "
            f"{', '.join(axes.lstrip('t'))}), got {spacing!r}."
        )
    return tuple(float(v) for v in values)


def _check_unit(unit):
    if unit is None:
        return None
    name = _UNIT_ALIASES.get(str(unit).strip().lower(), str(unit).strip().lower())
    if name not in SPACE_UNITS:
        raise InvalidParameterError(
            f"unit {unit!r} is not a space unit of OME-NGFF; use e.g. 'micrometer' or "
            "'nanometer' (UDUNITS-2 names; 'µm' and 'nm' are understood)."
        )
    return name


def _check_levels(levels, shape, axes):
    if isinstance(levels, bool) or not isinstance(levels, numbers.Integral) or levels < 1:
        raise InvalidParameterError(
            f"levels must be a positive integer (1 = full resolution only), got {levels!r}."
        )
    yx = shape[-2:]
    if min(yx) // 2 ** (int(levels) - 1) < 1:
        raise InvalidParameterError(
            f"levels={levels} halves y and x {levels - 1} times, more than the "
            f"{yx[0]} x {yx[1]} labels allow; pass a smaller levels."
        )
    return int(levels)


def _check_name(name):
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise InvalidParameterError(
            f"name must be a folder name of letters, digits, '_', '-' or '.', got {name!r}."
        )
    return name


def _check_labels(labels):
    """``labels`` as a numpy or dask array of an integer dtype NGFF allows."""
    if not _is_dask(labels):
        labels = np.asarray(labels)
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    if np.dtype(labels.dtype) not in _LABEL_DTYPES:
        raise InvalidImageError(
            f"labels have dtype {labels.dtype}, but OME-NGFF labels are integers (uint8 ... "
            "int64); convert them explicitly, e.g. labels.astype(np.uint32) for instances."
        )
    if 0 in labels.shape:
        raise InvalidImageError(f"labels are empty (shape {labels.shape}); nothing to write.")
    return labels


def _check_image(image, labels_shape, axes, channel_axis):
    """The image as an array with its channel axis first (after t), or None."""
    if image is None:
        if channel_axis is not None:
            raise InvalidParameterError("channel_axis applies to image=, which was not given.")
        return None, None
    if not _is_dask(image):
        image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8)
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise InvalidImageError(
            f"image has dtype {image.dtype}, which is not a number type; convert it first."
        )
    shape = tuple(labels_shape)
    if channel_axis is None:
        if image.ndim == len(shape) + 1:
            raise InvalidParameterError(
                f"image has shape {image.shape}, one axis more than the labels {shape}; pass "
                "channel_axis= (e.g. -1 for channels last) to say which axis is channels."
            )
        if tuple(image.shape) != shape:
            raise ShapeMismatchError(
                f"image has shape {image.shape} but the labels {shape}; they must cover the "
                "same pixels."
            )
        return image, None
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, numbers.Integral) \
            or not -image.ndim <= channel_axis < image.ndim:
        raise InvalidParameterError(
            f"channel_axis={channel_axis!r} is not an axis of the {image.ndim}-D image."
        )
    moved = np.moveaxis(image, int(channel_axis), 0) if not _is_dask(image) else \
        image.transpose([int(channel_axis) % image.ndim]
                        + [i for i in range(image.ndim) if i != int(channel_axis) % image.ndim])
    if tuple(moved.shape[1:]) != shape:
        raise ShapeMismatchError(
            f"image has shape {image.shape} (channels on axis {channel_axis}) but the labels "
            f"{shape}; apart from channels they must cover the same pixels."
        )
    n_t = len(axes) - len(axes.lstrip("t"))
    if n_t:  # t, c, z, y, x: the channel axis goes after time
        order = list(range(1, 1 + n_t)) + [0] + list(range(1 + n_t, moved.ndim))
        moved = moved.transpose(order)
    return moved, moved.shape[n_t]


def _value_key(value):
    """A label value (int, or a string of digits as JSON keys are) as an int."""
    try:
        as_int = int(value)
    except (TypeError, ValueError):
        as_int = None
    if as_int is None or isinstance(value, bool) or (
            isinstance(value, numbers.Real) and as_int != value) or (
            isinstance(value, str) and not re.fullmatch(r"-?\d+", value.strip())):
        raise InvalidParameterError(
            f"label values must be integers (or strings of digits), got {value!r}."
        )
    return as_int


def _rgba(colour, value):
    if isinstance(colour, str):
        text = colour.lstrip("#")
        if not re.fullmatch(r"[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?", text):
            raise InvalidParameterError(
                f"colour {colour!r} of label {value} is not '#RRGGBB' or '#RRGGBBAA'."
            )
        rgba = [int(text[i:i + 2], 16) for i in range(0, len(text), 2)]
    else:
        rgba = list(colour)
    if len(rgba) == 3:
        rgba.append(255)
    if len(rgba) != 4 or not all(isinstance(c, numbers.Integral) and not isinstance(c, bool)
                                 and 0 <= c <= 255 for c in rgba):
        raise InvalidParameterError(
            f"colour {colour!r} of label {value} must be 3 or 4 integers in 0-255 (RGB(A)) "
            "or '#RRGGBB'."
        )
    return [int(c) for c in rgba]


# --------------------------------------------------------------------------
# metadata
# --------------------------------------------------------------------------

def label_colors(class_names):
    """Default colours: one Okabe-Ito colour per distinct class name, 0 transparent.

    Parameters
    ----------
    class_names : dict
        Class name by label value.  Values sharing a name (objects of one
        class) share a colour; names get colours in the order they first
        appear among the sorted values, cycling through :data:`PALETTE`.

    Returns
    -------
    colors : dict
        RGBA (0-255) by label value (int).

    Examples
    --------
    >>> label_colors({0: "background", 1: "nucleus", 2: "cytoplasm"})
    {0: [0, 0, 0, 0], 1: [230, 159, 0, 255], 2: [86, 180, 233, 255]}
    >>> label_colors({"3": "mitotic", "4": "normal", "5": "mitotic"})[5]
    [230, 159, 0, 255]
    """
    names = {_value_key(v): str(n) for v, n in class_names.items()}
    order = {}
    colors = {}
    for value in sorted(names):
        if value == 0:
            colors[0] = [0, 0, 0, 0]
            continue
        index = order.setdefault(names[value], len(order))
        colors[value] = [*PALETTE[index % len(PALETTE)], 255]
    return colors


def _image_label(class_names, colors, source):
    names = {_value_key(v): str(n) for v, n in (class_names or {}).items()}
    given = {_value_key(v): _rgba(c, v) for v, c in (colors or {}).items()}
    unknown = sorted(set(given) - set(names)) if names else []
    if unknown:
        raise InvalidParameterError(
            f"colors are given for label values {unknown} that have no class name; name "
            "them in class_names too (properties and colours must describe the same values)."
        )
    if names:
        merged = label_colors(names)
        merged.update(given)
    else:
        merged = given
    meta = {}
    values = sorted(set(names) | set(merged))
    if merged:
        meta["colors"] = [{"label-value": v, "rgba": merged[v]} for v in values]
        meta["properties"] = [{"label-value": v, "class": names.get(v, f"label {v}")}
                              for v in values]
    if source is not None:
        meta["source"] = {"image": source}
    return meta


def _multiscale(axes, spacing, levels, unit, name):
    axis_list = []
    for a in axes:
        entry = {"name": a, "type": _AXIS_TYPES[a]}
        if unit is not None and _AXIS_TYPES[a] == "space":
            entry["unit"] = unit
        axis_list.append(entry)
    datasets = []
    for level in range(levels):
        scale, spatial = [], iter(spacing)
        for a in axes:
            if a in "tc":
                scale.append(1.0)
            else:
                s = next(spatial)
                scale.append(s * 2 ** level if a in "yx" else s)
        datasets.append({"path": str(level),
                         "coordinateTransformations": [{"type": "scale", "scale": scale}]})
    multiscale = {"axes": axis_list, "datasets": datasets}
    if name is not None:
        multiscale["name"] = str(name)
    return multiscale


def ngff_image_attrs(*, axes, spacing=None, unit=None, levels=1, name=None):
    """The attributes of an OME-NGFF image group: ``{"ome": {"version", "multiscales"}}``.

    Parameters
    ----------
    axes : str
        One letter per array axis in NGFF order, e.g. ``"yx"``, ``"cyx"``,
        ``"czyx"``, ``"tczyx"`` (t: time, c: channel, z/y/x: space).
    spacing : float or sequence of float, optional
        Pixel size along each spatial axis (z, y, x order), the ``scale``
        of full resolution; default 1.
    unit : str, optional
        Unit of the space axes (``"micrometer"``; ``"µm"`` is understood).
    levels : int, optional
        Number of resolution levels ``"0"``, ``"1"``, ...; level ``i`` has y
        and x halved ``i`` times (its scale multiplied by ``2**i``).
    name : str, optional
        The multiscale image's name.

    Returns
    -------
    attrs : dict
        JSON-serialisable attributes of the group.

    Examples
    --------
    >>> attrs = ngff_image_attrs(axes="cyx", spacing=0.5, unit="µm")
    >>> ms = attrs["ome"]["multiscales"][0]
    >>> attrs["ome"]["version"], [a["name"] for a in ms["axes"]], ms["axes"][1]["unit"]
    ('0.5', ['c', 'y', 'x'], 'micrometer')
    >>> ms["datasets"][0]["coordinateTransformations"]
    [{'type': 'scale', 'scale': [1.0, 0.5, 0.5]}]
    """
    axes = str(axes).lower()
    spatial = axes.replace("t", "").replace("c", "")
    if (not set(axes) <= set("tczyx") or len(set(axes)) != len(axes)
            or spatial not in ("yx", "zyx") or not axes.endswith(spatial)
            or axes.lstrip("t").lstrip("c") != spatial or axes.count("t") > 1
            or ("t" in axes and not axes.startswith("t"))):
        raise InvalidParameterError(
            f"axes={axes!r} are not NGFF image axes; use the order t, c, z, y, x, e.g. "
            "'yx', 'cyx', 'czyx' or 'tczyx'."
        )
    spacing = _check_spacing(spacing, spatial)
    multiscale = _multiscale(axes, spacing, int(levels), _check_unit(unit), name)
    return {"ome": {"version": NGFF_VERSION, "multiscales": [multiscale]}}


def ngff_labels_attrs(names):
    """The attributes of an image's ``labels`` group: the names of its label images.

    Examples
    --------
    >>> ngff_labels_attrs(["prediction"])
    {'ome': {'version': '0.5', 'labels': ['prediction']}}
    """
    names = [_check_name(n) for n in names]
    return {"ome": {"version": NGFF_VERSION, "labels": names}}


def ngff_label_attrs(*, axes, spacing=None, unit=None, levels=1, class_names=None,
                     colors=None, source="../../", name=None, metadata=None):
    """The attributes of an OME-NGFF label image: multiscales and ``image-label``.

    Parameters
    ----------
    axes : str
        The label image's axes, e.g. ``"yx"``, ``"zyx"``, ``"tzyx"`` (no
        channel axis).
    spacing, unit, levels, name
        As :func:`ngff_image_attrs`.
    class_names : dict, optional
        Class name by label value (int, or a string of digits as in
        pixelforest's metadata ``class_names``): each becomes a
        ``properties`` entry ``{"label-value": v, "class": name}`` and, by
        default, a colour (:func:`label_colors`).
    colors : dict, optional
        RGBA (4 ints 0-255), RGB or ``"#RRGGBB"`` by label value, replacing
        the default colours of those values.
    source : str or None, optional
        Relative path from the label image to its image (``"../../"`` for
        ``image/labels/<name>``); None for a label image without one.
    metadata : dict, optional
        pixelforest's metadata (:func:`pixelforest.scale.outputs.output_metadata`),
        stored beside ``"ome"`` under ``"pixelforest"``.

    Returns
    -------
    attrs : dict
        ``{"ome": {"version", "multiscales", "image-label"}, ...}``.

    Raises
    ------
    InvalidParameterError
        Bad axes, spacing, unit, label values or colours.

    Examples
    --------
    >>> attrs = ngff_label_attrs(axes="yx", spacing=(0.5, 0.5),
    ...                          class_names={"1": "background", "2": "nucleus"})
    >>> label = attrs["ome"]["image-label"]
    >>> label["colors"][1]
    {'label-value': 2, 'rgba': [86, 180, 233, 255]}
    >>> label["properties"][1], label["source"]
    ({'label-value': 2, 'class': 'nucleus'}, {'image': '../../'})
    """
    axes = _check_axes(axes, len(str(axes)))
    attrs = ngff_image_attrs(axes=axes, spacing=spacing, unit=unit, levels=levels, name=name)
    attrs["ome"]["image-label"] = _image_label(class_names, colors, source)
    if metadata is not None:
        from pixelforest.io.images import METADATA_KEY, _unwrap_metadata

        attrs[METADATA_KEY] = _unwrap_metadata(metadata)
    return attrs


# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------

def _default_chunks(shape, axes):
    """Chunks of about a megapixel: 1024 x 1024 in 2-D, 32 x 256 x 256 in 3-D, t and c 1."""
    spatial = axes.replace("t", "").replace("c", "")
    edge = {"yx": {"y": 1024, "x": 1024}, "zyx": {"z": 32, "y": 256, "x": 256}}[spatial]
    return tuple(1 if a in "tc" else min(n, edge[a]) for a, n in zip(axes, shape))


def _level_shape(shape, axes, level):
    return tuple(-(-n // 2 ** level) if a in "yx" else n for a, n in zip(axes, shape))


def _create_arrays(group, shape, dtype, chunks, axes, levels):
    """Empty arrays "0", "1", ...: ``levels`` halvings of ``shape``, or the shapes listed."""
    from pixelforest.io.images import _zarr_compressors

    shapes = ([_level_shape(shape, axes, level) for level in range(levels)]
              if isinstance(levels, int) else [tuple(s) for s in levels])
    for level, lshape in enumerate(shapes):
        group.create_array(
            str(level), shape=lshape, dtype=dtype,
            chunks=tuple(min(c, n) for c, n in zip(chunks, lshape)),
            fill_value=0, dimension_names=list(axes),
            compressors=_zarr_compressors(None),
            # every chunk is stored, so that a missing one always means lost data
            config={"write_empty_chunks": True},
        )


def _check_chunks(chunks, shape, axes):
    if chunks is None:
        return _default_chunks(shape, axes)
    if isinstance(chunks, numbers.Integral) and not isinstance(chunks, bool):
        chunks = (int(chunks),) * len(shape)
    chunks = tuple(chunks)
    if len(chunks) != len(shape) or not all(
            isinstance(c, numbers.Integral) and not isinstance(c, bool) and c > 0
            for c in chunks):
        raise InvalidParameterError(
            f"chunks must be one positive integer or {len(shape)} (one per axis "
            f"{', '.join(axes)}), got {chunks!r}."
        )
    return tuple(int(c) for c in chunks)


def _store(source, target):
    """Write ``source`` (numpy or dask) into the Zarr array ``target``, chunk by chunk.

    Every chunk is stored, also one holding only zeros, so that a missing
    chunk always means lost data (:class:`~pixelforest.errors.MissingChunksWarning`).
    """
    target = target.with_config({"write_empty_chunks": True})
    if _is_dask(source):
        import dask.array as da

        da.store(source.rechunk(target.chunks), target, lock=False)
    else:
        target[...] = source


def create_ome_zarr_labels(path, *, shape, dtype, name="prediction", image=None,
                           channel_axis=None, class_names=None, colors=None, spacing=None,
                           unit=None, axes=None, chunks=None, levels=1, metadata=None):
    """Lay out an OME-Zarr store for labels and return where to write them.

    The groups, their metadata and empty arrays are created at ``path``
    (which must not exist yet: inside :func:`~pixelforest._shared.atomic.atomic_output`,
    its temporary path); ``image``, when given, is written now, chunk by
    chunk.  The labels are then written into the returned array, e.g. block
    by block with ``zarr.open_array(str(array_path), mode="r+")[region] =
    block`` (one writer per chunk; open it with ``.with_config({"write_empty_chunks":
    True})`` so that all-zero chunks are stored too, as pixelforest's readers
    take a missing chunk for lost data), and the coarser levels derived
    with :func:`write_label_pyramid`.

    Parameters
    ----------
    path : str or Path
        The new store (a folder, by convention named ``*.ome.zarr``).
    shape : tuple of int
        Shape of the labels.
    dtype : dtype
        Integer dtype of the labels (uint8 ... int64; bool is stored as uint8).
    name : str, optional
        Name of the label image under ``labels/`` (when there is an image).
    image : array_like or dask.array.Array, optional
        The image the labels segment, same spatial shape; written as it is
        (never rescaled) at the store root with the same spacing.  Without
        it, the store root is the label image.
    channel_axis : int, optional
        The image's channel axis, if it has one (stored first, as NGFF asks).
    class_names, colors, spacing, unit, axes, levels, metadata
        As :func:`write_ome_zarr_labels`.
    chunks : int or tuple of int, optional
        Chunk shape of the labels (and of the image, channels one by one).

    Returns
    -------
    array_path : Path
        The full-resolution label array (``path/labels/<name>/0``, or
        ``path/0`` without an image).

    Raises
    ------
    InvalidImageError, InvalidParameterError, ShapeMismatchError
        As :func:`write_ome_zarr_labels`.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, zarr
    >>> store = pathlib.Path(tempfile.mkdtemp()) / "out.ome.zarr"
    >>> target = create_ome_zarr_labels(store, shape=(4, 6), dtype=np.uint8, chunks=(2, 3),
    ...                                 image=np.zeros((4, 6), np.uint16))
    >>> target.relative_to(store).as_posix()
    'labels/prediction/0'
    >>> block = zarr.open_array(str(target), mode="r+")
    >>> block.with_config({"write_empty_chunks": True})[:2, :3] = 1   # one block
    >>> write_label_pyramid(store)
    >>> int(zarr.open_array(str(target))[:].sum())
    6
    """
    import zarr

    path = Path(path)
    if path.exists():
        raise InvalidParameterError(
            f"{path} already exists; create_ome_zarr_labels lays out a new store (write to "
            "a temporary path and rename it, or use write_ome_zarr_labels)."
        )
    shape = tuple(int(n) for n in shape)
    dtype = np.dtype(dtype)
    if dtype == bool:
        dtype = np.dtype(np.uint8)
    if dtype not in _LABEL_DTYPES:
        raise InvalidImageError(
            f"labels have dtype {dtype}, but OME-NGFF labels are integers (uint8 ... int64); "
            "convert them explicitly, e.g. labels.astype(np.uint32) for instances."
        )
    axes = _check_axes(axes, len(shape))
    spacing = _check_spacing(spacing, axes)
    levels = _check_levels(levels, shape, axes)
    chunks = _check_chunks(chunks, shape, axes)
    name = _check_name(name)
    image, n_channels = _check_image(image, shape, axes, channel_axis)
    label_attrs = ngff_label_attrs(
        axes=axes, spacing=spacing, unit=unit, levels=levels, class_names=class_names,
        colors=colors, source="../../" if image is not None else None, metadata=metadata)
    if image is None:
        root = zarr.create_group(store=str(path), zarr_format=3, attributes=label_attrs)
        _create_arrays(root, shape, dtype, chunks, axes, levels)
        return path / "0"
    n_t = len(axes) - len(axes.lstrip("t"))
    image_axes = axes[:n_t] + ("c" if n_channels is not None else "") + axes[n_t:]
    image_chunks = (chunks[:n_t] + ((1,) if n_channels is not None else ()) + chunks[n_t:])
    root = zarr.create_group(store=str(path), zarr_format=3, attributes=ngff_image_attrs(
        axes=image_axes, spacing=spacing, unit=unit, levels=levels))
    _create_arrays(root, image.shape, image.dtype, image_chunks, image_axes, levels)
    labels_group = root.create_group("labels", attributes=ngff_labels_attrs([name]))
    label_group = labels_group.create_group(name, attributes=label_attrs)
    _create_arrays(label_group, shape, dtype, chunks, axes, levels)
    _store(image, root["0"])
    _fill_levels(root, image_axes, levels)
    return path / "labels" / name / "0"


def _fill_levels(group, axes, levels):
    """Levels 1.. of a multiscale group from level 0, pixels taken (never averaged).

    Each level takes every other y and x pixel of the one above it (pixels
    ``(k * n) // m`` along an axis of ``n`` pixels shrunk to ``m``, when
    the level's shape was set by another writer's image), so label values
    stay exact and image values as stored.  Read lazily, chunk by chunk.
    """
    if levels < 2:
        return
    import dask.array as da

    for level in range(1, levels):
        source = da.from_zarr(group[str(level - 1)])
        target = group[str(level)]
        for axis, (n, m) in enumerate(zip(source.shape, target.shape)):
            if n == m:
                continue
            if m == -(-n // 2):
                index = slice(None, None, 2)
            else:
                index = (np.arange(m) * n) // m
            source = source[(slice(None),) * axis + (index,)]
        _store(source, target)


def _label_group(root, name, path):
    """The label image group inside ``root`` (its ``labels/<name>``, or the root itself)."""
    attrs = _ome_attrs(root)
    if "image-label" in attrs:
        return root, Path(path).name, [], attrs
    if "labels" not in root:
        raise InvalidParameterError(
            f"{path} holds no labels (neither 'image-label' metadata nor a 'labels' "
            "group); write them with write_ome_zarr_labels."
        )
    labels = root["labels"]
    names = list(_ome_attrs(labels).get("labels", []))
    if name is None:
        if len(names) != 1:
            raise InvalidParameterError(
                f"{path} holds {len(names)} label images ({', '.join(names) or 'none'}"
                "); pass name= to choose one."
            )
        name = names[0]
    if name not in names or name not in labels:
        raise InvalidParameterError(
            f"{path} has no label image {name!r}; it has {', '.join(names) or 'none'}."
        )
    group = labels[name]
    return group, name, names, _ome_attrs(group)


def write_label_pyramid(path, *, name=None):
    """Derive the coarser levels of a store's label image from its full resolution.

    For a writer that filled level 0 itself (see
    :func:`create_ome_zarr_labels`); reads and writes chunk by chunk.  A
    store with one level is left as it is.

    Parameters
    ----------
    path : str or Path
        The store.
    name : str, optional
        The label image under ``labels/`` (default: the only one).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, zarr
    >>> store = pathlib.Path(tempfile.mkdtemp()) / "l.ome.zarr"
    >>> target = create_ome_zarr_labels(store, shape=(4, 4), dtype=np.uint8, levels=2)
    >>> zarr.open_array(str(target), mode="r+")[...] = np.arange(16).reshape(4, 4)
    >>> write_label_pyramid(store)
    >>> zarr.open_array(str(store / "1"))[:]
    array([[ 0,  2],
           [ 8, 10]], dtype=uint8)
    """
    import zarr

    root = zarr.open_group(str(path), mode="r+")
    group, _, _, attrs = _label_group(root, name, path)
    multiscale = attrs["multiscales"][0]
    axes = "".join(a["name"] for a in multiscale["axes"])
    _fill_levels(group, axes, len(multiscale["datasets"]))


def store_ome_zarr_labels(path, labels, *, name=None):
    """Write ``labels`` into the label arrays :func:`create_ome_zarr_labels` laid out.

    A dask array is stored chunk by chunk (rechunked to the store's chunks,
    so each chunk has one writer), then the coarser levels are derived.

    Parameters
    ----------
    path : str or Path
        The store.
    labels : array_like or dask.array.Array
        Same shape and dtype as the store's labels.
    name : str, optional
        The label image under ``labels/`` (default: the only one).

    Raises
    ------
    ShapeMismatchError
        ``labels`` have another shape than the store's.
    InvalidImageError
        ``labels`` are not integers, or of another dtype than the store's.
    """
    import zarr

    labels = _check_labels(labels)
    root = zarr.open_group(str(path), mode="r+")
    group, _, _, attrs = _label_group(root, name, path)
    target = group["0"]
    if tuple(labels.shape) != tuple(target.shape):
        raise ShapeMismatchError(
            f"labels have shape {labels.shape}, but the store {path} holds {target.shape}."
        )
    if np.dtype(labels.dtype) != target.dtype:
        raise InvalidImageError(
            f"labels are {labels.dtype}, but the store {path} holds {target.dtype}; convert "
            "them explicitly (values are never converted for you)."
        )
    _store(labels, target)
    axes = "".join(a["name"] for a in attrs["multiscales"][0]["axes"])
    _fill_levels(group, axes, len(attrs["multiscales"][0]["datasets"]))


def write_ome_zarr_labels(path, labels, *, image=None, name="prediction", channel_axis=None,
                          class_names=None, colors=None, spacing=None, unit=None, axes=None,
                          levels=1, chunks=None, metadata=None, overwrite=True):
    """Write labels (and their image) as OME-Zarr with NGFF ``labels`` metadata, atomically.

    napari's OME-Zarr reader (napari-ome-zarr) then opens the image and the
    labels as a Labels layer on top of it, with the class colours; other
    NGFF tools (ome-zarr-py, Fiji's MoBIE, webKnossos, ...) read the same
    metadata.  The store is written to a temporary folder and renamed into
    place: an interrupted write leaves ``path`` as it was.

    Parameters
    ----------
    path : str or Path
        Output store, by convention ``*.ome.zarr``.  Missing parent folders
        are created.
    labels : array_like or dask.array.Array
        Semantic or instance labels, integer (uint8 ... int64; bool becomes
        uint8), 2-D ``(y, x)``, 3-D ``(z, y, x)`` or with a leading time
        axis (pass ``axes``).  Values are stored as they are.  A dask array
        is written chunk by chunk.
    image : array_like or dask.array.Array, optional
        The image the labels belong to, same spatial shape (plus a channel
        axis: pass ``channel_axis``), stored as it is at the store root,
        the labels under ``labels/<name>``.  Without it, the root is the
        label image.
    name : str, optional
        Name of the label image (a folder name).
    channel_axis : int, optional
        The channel axis of ``image``.
    class_names : dict, optional
        Class name by label value, e.g. ``{1: "background", 2: "nucleus"}``
        or pixelforest's metadata ``class_names`` (``{"1": ...}``).  For
        instance labels: the class of each classified object.  Default for
        numpy labels: ``"background"`` for 0 and ``"class v"`` for each
        other value when there are at most 255 values (semantic labels);
        nothing otherwise (instance labels, dask arrays).
    colors : dict, optional
        Colour by label value (RGBA or RGB ints 0-255, or ``"#RRGGBB"``);
        default :func:`label_colors` of ``class_names``.
    spacing : float or sequence of float, optional
        Pixel size along each spatial axis (z, y, x), stored as the
        ``scale`` of full resolution (e.g. from
        :func:`pixelforest.io.read_metadata`'s ``"spacing"``); default 1.
    unit : str, optional
        Unit of ``spacing``, e.g. ``"micrometer"`` (``"µm"`` is understood).
    axes : str, optional
        Axes of the labels: default ``"yx"`` or ``"zyx"``; ``"tyx"``,
        ``"tzyx"`` for time series.
    levels : int, optional
        Resolution levels (y and x halved from one to the next, every other
        pixel kept: label values stay exact), for viewing large images.
    chunks : int or tuple of int, optional
        Chunk shape of the labels (default about a megapixel).
    metadata : dict, optional
        pixelforest's metadata (what the values mean, e.g.
        :func:`pixelforest.scale.outputs.output_metadata`), stored with the
        label image and read back by :func:`pixelforest.io.read_metadata`.
    overwrite : bool, optional
        If False and ``path`` exists, raise
        :class:`~pixelforest.errors.OutputExistsError`.

    Returns
    -------
    path : Path
        The store written.

    Raises
    ------
    InvalidImageError
        Labels are not integers, or empty; the image is not numeric.
    ShapeMismatchError
        Image and labels cover different pixels.
    InvalidParameterError
        Bad axes, spacing, unit, levels, chunks, name, class names or colours.
    OutputExistsError
        ``overwrite=False`` and ``path`` exists.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "nuclei.ome.zarr"
    >>> image = np.arange(24, dtype=np.uint16).reshape(4, 6)
    >>> labels = (image > 11).astype(np.uint8) + 1
    >>> _ = write_ome_zarr_labels(out, labels, image=image, spacing=0.65, unit="µm",
    ...                           class_names={1: "background", 2: "nucleus"})
    >>> back, info = read_ome_zarr_labels(out)
    >>> np.array_equal(back, labels), info["class_names"], info["spacing"]
    (True, {1: 'background', 2: 'nucleus'}, (0.65, 0.65))
    """
    path = Path(path)
    labels = _check_labels(labels)
    if class_names is None:
        class_names = _default_class_names(labels)
    with atomic_output(path, overwrite=overwrite) as tmp:
        create_ome_zarr_labels(
            tmp, shape=labels.shape, dtype=labels.dtype, name=name, image=image,
            channel_axis=channel_axis, class_names=class_names, colors=colors,
            spacing=spacing, unit=unit, axes=axes, chunks=chunks, levels=levels,
            metadata=metadata)
        store_ome_zarr_labels(tmp, labels, name=name if image is not None else None)
    return path


def _default_class_names(labels):
    """``background`` for 0, ``class v`` for each other value of semantic numpy labels."""
    if _is_dask(labels):
        return None
    values = np.unique(labels)
    if len(values) > 255:  # instance labels: viewers colour the objects themselves
        return None
    return {int(v): "background" if v == 0 else f"class {int(v)}" for v in values}


def add_ome_zarr_labels(path, labels, *, name="prediction", class_names=None, colors=None,
                        chunks=None, metadata=None, overwrite=True):
    """Add a label image to an existing OME-Zarr image (NGFF 0.5), next to its other labels.

    The labels take the image's axes (without channels), unit and
    resolution levels: one level per level of the image, with its shape and
    coordinate transformations (as NGFF asks), each coarser one taking
    every n-th pixel of the labels (values stay exact).  The label image is
    written to a temporary folder inside ``labels/`` and renamed into
    place, then listed in the ``labels`` group; the image and other label
    images are left as they are.

    Parameters
    ----------
    path : str or Path
        An OME-Zarr 0.5 image (Zarr v3), e.g. one written by
        :func:`write_ome_zarr_labels` or by ome-zarr-py.
    labels : array_like or dask.array.Array
        Integer labels covering the image's pixels (its shape without the
        channel axis).
    name : str, optional
        Name of the label image under ``labels/``.
    class_names, colors, chunks, metadata
        As :func:`write_ome_zarr_labels`.
    overwrite : bool, optional
        Replace a label image of that name; if False, raise
        :class:`~pixelforest.errors.OutputExistsError` instead.

    Returns
    -------
    label_path : Path
        The label image written (``path/labels/<name>``).

    Raises
    ------
    UnsupportedFormatError
        ``path`` is not an OME-Zarr 0.5 image.
    ShapeMismatchError
        The labels do not cover the image's pixels.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "cells.ome.zarr"
    >>> image = np.arange(24, dtype=np.uint16).reshape(4, 6)
    >>> _ = write_ome_zarr_labels(out, (image > 11).astype(np.uint8), image=image, spacing=0.5)
    >>> _ = add_ome_zarr_labels(out, (image > 5).astype(np.uint8), name="otsu")
    >>> info = read_ome_zarr_labels(out, "otsu")[1]
    >>> info["names"], info["spacing"]
    (['prediction', 'otsu'], (0.5, 0.5))
    """
    import zarr

    path = Path(path)
    labels = _check_labels(labels)
    name = _check_name(name)
    if not path.exists():
        raise ImageFileNotFoundError(f"{path} does not exist; check the spelling and the folder.")
    try:
        root = zarr.open_group(str(path), mode="r")
    except (FileNotFoundError, ValueError, KeyError, OSError, TypeError) as exc:
        raise UnsupportedFormatError(
            f"{path} is not an OME-Zarr image ({type(exc).__name__}: {exc}); write a new "
            "store with write_ome_zarr_labels(path, labels, image=...)."
        ) from exc
    attrs = _ome_attrs(root)
    multiscale = (attrs.get("multiscales") or [None])[0]
    if root.metadata.zarr_format != 3 or not multiscale or "image-label" in attrs:
        raise UnsupportedFormatError(
            f"{path} is not an OME-Zarr 0.5 image (Zarr v3 with multiscales); pixelforest "
            "adds labels to those only: write a new store with write_ome_zarr_labels(path, "
            "labels, image=imread(path))."
        )
    image_axes = "".join(a["name"] if isinstance(a, dict) else str(a)
                         for a in multiscale["axes"])
    shape = root[multiscale["datasets"][0]["path"]].shape
    label_axes = image_axes.replace("c", "")
    expected = tuple(n for a, n in zip(image_axes, shape) if a != "c")
    if tuple(labels.shape) != expected:
        raise ShapeMismatchError(
            f"labels have shape {labels.shape}, but the image {path} has {shape} (axes "
            f"{image_axes}): the labels must have its shape without channels, {expected}."
        )
    spatial = [i for i, a in enumerate(image_axes) if a != "c"]
    level_shapes, level_transforms = [], []
    for dataset in multiscale["datasets"]:
        level_shapes.append(tuple(root[dataset["path"]].shape[i] for i in spatial))
        # the image's transforms (scale, translation) without the channel axis
        level_transforms.append([
            {**t, t["type"]: [t[t["type"]][i] for i in spatial]}
            if isinstance(t.get(t.get("type")), list) else dict(t)
            for t in dataset.get("coordinateTransformations", [])])
    scale0 = _scale_of(multiscale, 0)
    spacing = tuple(float(scale0[i]) for i in spatial if image_axes[i] in "zyx")
    unit = next((a.get("unit") for a in multiscale["axes"]
                 if isinstance(a, dict) and a.get("name") == "y"), None)
    try:
        unit = _check_unit(unit)
    except InvalidParameterError:  # a unit NGFF does not name: not repeated
        unit = None
    chunks = _check_chunks(chunks, labels.shape, label_axes)
    if class_names is None:
        class_names = _default_class_names(labels)
    label_attrs = ngff_label_attrs(axes=label_axes, spacing=spacing, unit=unit,
                                   levels=len(level_shapes), class_names=class_names,
                                   colors=colors, source="../../", metadata=metadata)
    for dataset, transforms in zip(label_attrs["ome"]["multiscales"][0]["datasets"],
                                   level_transforms):
        dataset["coordinateTransformations"] = transforms
    labels_dir = path / "labels"
    if "labels" not in root:
        zarr.create_group(store=str(labels_dir), zarr_format=3,
                          attributes=ngff_labels_attrs([]))
    with atomic_output(labels_dir / name, overwrite=overwrite) as tmp:
        group = zarr.create_group(store=str(tmp), zarr_format=3, attributes=label_attrs)
        _create_arrays(group, labels.shape, labels.dtype, chunks, label_axes, level_shapes)
        _store(labels, group["0"])
        _fill_levels(group, label_axes, len(level_shapes))
    listing = zarr.open_group(str(labels_dir), mode="r+")
    ome = dict(listing.attrs.asdict().get("ome") or {})
    names = list(ome.get("labels") or [])
    if name not in names:
        names.append(name)
    ome.update({"version": NGFF_VERSION, "labels": names})
    listing.attrs["ome"] = ome
    return labels_dir / name


# --------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------

def _ome_attrs(group):
    """The OME attributes of a group: under "ome" (0.5) or at the top (0.4)."""
    attrs = group.attrs.asdict()
    ome = attrs.get("ome")
    return dict(ome) if isinstance(ome, dict) else attrs


def _scale_of(multiscale, level):
    """The scale of dataset ``level``, including a multiscale-wide scale."""
    n = len(multiscale["axes"])
    scale = np.ones(n)
    transforms = list(multiscale["datasets"][level].get("coordinateTransformations", []))
    transforms += list(multiscale.get("coordinateTransformations", []) or [])
    for t in transforms:
        if t.get("type") == "scale" and "scale" in t:
            scale = scale * np.asarray(t["scale"], dtype=float)
    return scale


def read_ome_zarr_labels(path, name=None, *, level=0, lazy=False):
    """Read a label image of an OME-Zarr store and what its metadata say.

    Parameters
    ----------
    path : str or Path
        An OME-Zarr image with a ``labels`` group, or a label image (its
        root has ``image-label`` metadata).  NGFF 0.5 (Zarr v3) and 0.4
        (Zarr v2).
    name : str, optional
        Which label image under ``labels/``; default the only one.
    level : int, optional
        Resolution level, 0 = full resolution.
    lazy : bool, optional
        Return a dask array that reads chunks when computed.

    Returns
    -------
    labels : ndarray or dask.array.Array
        The labels as stored.
    info : dict
        ``name``, ``names`` (every label image of the store), ``version``,
        ``axes`` (e.g. ``"zyx"``), ``spacing`` (scale of the spatial axes at
        this level), ``units`` (unit by axis, None where absent),
        ``class_names`` and ``colors`` (by label value, int), ``source``
        (the image path, or None), ``levels`` and ``metadata`` (pixelforest's,
        or None).

    Raises
    ------
    ImageFileNotFoundError
        ``path`` does not exist.
    UnsupportedFormatError
        ``path`` is not an OME-Zarr store.
    InvalidParameterError
        No labels, several without ``name``, unknown ``name`` or ``level``.
    CorruptFileError
        A chunk cannot be decoded (named).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "cells.ome.zarr"
    >>> _ = write_ome_zarr_labels(out, np.eye(3, dtype=np.uint32), class_names={1: "cell"})
    >>> labels, info = read_ome_zarr_labels(out)
    >>> str(labels.dtype), info["axes"], info["colors"][1], info["source"]
    ('uint32', 'yx', (230, 159, 0, 255), None)
    """
    import zarr

    from pixelforest.io.images import METADATA_KEY, _check_level, imread, imread_lazy

    path = Path(path)
    if not path.exists():
        raise ImageFileNotFoundError(f"{path} does not exist; check the spelling and the folder.")
    level = _check_level(level)
    try:
        root = zarr.open_group(str(path), mode="r")
    except (FileNotFoundError, ValueError, KeyError, OSError, TypeError) as exc:
        raise UnsupportedFormatError(
            f"{path} is not an OME-Zarr store ({type(exc).__name__}: {exc}); pass the "
            "folder written by write_ome_zarr_labels (or another NGFF image)."
        ) from exc
    group, name, names, attrs = _label_group(root, name, path)
    multiscale = (attrs.get("multiscales") or [None])[0]
    if not multiscale or not multiscale.get("datasets"):
        raise UnsupportedFormatError(
            f"the label image {name!r} of {path} has no multiscales datasets; it is not "
            "valid OME-NGFF."
        )
    datasets = multiscale["datasets"]
    if level >= len(datasets):
        raise InvalidParameterError(
            f"{path} label image {name!r} has no level {level}; it has {len(datasets)} "
            f"(0 to {len(datasets) - 1})."
        )
    ndim = group[datasets[0]["path"]].ndim
    axes_meta = multiscale.get("axes") or [{"name": a} for a in "tczyx"[-ndim:]]  # 0.3
    axes = [a["name"] if isinstance(a, dict) else str(a) for a in axes_meta]
    array_path = path / (group.path or "") / datasets[level]["path"]
    labels = imread_lazy(array_path) if lazy else imread(array_path)
    scale = _scale_of(multiscale, level)
    types = [a.get("type") if isinstance(a, dict) else None for a in axes_meta]
    spatial = [i for i, (a, t) in enumerate(zip(axes, types))
               if t == "space" or (t is None and a in ("z", "y", "x"))]
    image_label = attrs.get("image-label") or {}
    class_names, colors = {}, {}
    for prop in image_label.get("properties") or []:
        if "label-value" in prop and "class" in prop:
            class_names[int(prop["label-value"])] = prop["class"]
    for colour in image_label.get("colors") or []:
        if "label-value" in colour and colour.get("rgba") is not None:
            colors[int(colour["label-value"])] = tuple(int(c) for c in colour["rgba"])
    meta = group.attrs.asdict().get(METADATA_KEY)
    info = {
        "name": name,
        "names": names or [name],
        "version": attrs.get("version") or multiscale.get("version"),
        "axes": "".join(axes),
        "spacing": tuple(float(scale[i]) for i in spatial),
        "units": tuple(a.get("unit") if isinstance(a, dict) else None for a in axes_meta),
        "class_names": class_names,
        "colors": colors,
        "source": (image_label.get("source") or {}).get("image"),
        "levels": len(datasets),
        "metadata": dict(meta) if isinstance(meta, dict) else None,
    }
    return labels, info
