"""Microscope files (CZI, ND2, LIF, OME-TIFF) through bioio's readers.

The optional extra ``pip install "pixelforest[formats]"`` installs bioio and
its plugins bioio-czi (Zeiss), bioio-nd2 (Nikon), bioio-lif (Leica) and
bioio-ome-tiff.  :func:`pixelforest.io.imread`, :func:`~pixelforest.io.imread_lazy`
and :func:`~pixelforest.io.read_metadata` use them for these extensions, so
does every command of the CLI; without the extra, a ``.czi``, ``.nd2`` or
``.lif`` file raises :class:`~pixelforest.errors.MissingDependencyError`
naming that command, and an OME-TIFF is read by tifffile as any TIFF (data
as stored, no spacing).

Arrays come back in pixelforest's layout: the spatial axes ``(Y, X)`` or
``(Z, Y, X)`` (Z only when the file has more than one plane), then the
channels last when there are several (pass ``channel_axis=-1`` to
pixelforest functions; :func:`read_bioio`'s ``info["channel_axis"]`` says
so), e.g. ``(Z, Y, X, C)``.  RGB files (bioio's samples axis) count as
channels.  Time series are read one time point at a time (``timepoint=``).
Intensities are never rescaled: the dtype and values are the file's.

The physical pixel size becomes ``spacing``, one value per spatial axis of
the returned array (``(z, y, x)`` or ``(y, x)``), in bioio's unit
(micrometres for these readers), ready for
:func:`pixelforest.objects.measure`, ``PixelClassifier.predict_instances``
and :func:`pixelforest.io.ngff.write_ome_zarr_labels`.
"""

import struct
import warnings
from pathlib import Path

import numpy as np

from pixelforest.errors import (
    CorruptFileError,
    ImageFileNotFoundError,
    InvalidParameterError,
    MissingDependencyError,
    MultipleScenesWarning,
    UnsupportedFormatError,
)

__all__ = ["BIOIO_EXTENSIONS", "INSTALL_HINT", "bioio_extension", "bioio_available",
           "ome_tiff_layout", "read_bioio"]

#: Extensions read through bioio, and the plugin module and package of each.
BIOIO_EXTENSIONS = {
    ".czi": ("bioio_czi", "bioio-czi"),
    ".nd2": ("bioio_nd2", "bioio-nd2"),
    ".lif": ("bioio_lif", "bioio-lif"),
    ".ome.tif": ("bioio_ome_tiff", "bioio-ome-tiff"),
    ".ome.tiff": ("bioio_ome_tiff", "bioio-ome-tiff"),
}

#: How to install the readers.
INSTALL_HINT = 'pip install "pixelforest[formats]"'

#: The deprecation that bioio-ome-tiff's call of ome-types triggers on every file.
_OME_TYPES_DEPRECATION = r"As of version 0\.4\.0, the parser argument is ignored"

#: What bioio's readers raise on a broken or foreign file (besides bioio's own errors).
_READ_ERRORS = (OSError, ValueError, KeyError, IndexError, EOFError, RuntimeError,
                TypeError, AttributeError, NotImplementedError, struct.error)


def bioio_extension(path):
    """The bioio extension of ``path`` (``".czi"``, ``".ome.tif"``, ...), or None.

    Examples
    --------
    >>> bioio_extension("cells.OME.TIF"), bioio_extension("scan.czi"), bioio_extension("a.tif")
    ('.ome.tif', '.czi', None)
    """
    name = Path(path).name.lower()
    for ext in sorted(BIOIO_EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return ext
    return None


def _plugin(ext):
    """The bioio reader class for ``ext``, or None when bioio or the plugin is missing."""
    import importlib

    module, _ = BIOIO_EXTENSIONS[ext]
    try:
        importlib.import_module("bioio")
        return importlib.import_module(module).Reader
    except ImportError:
        return None


def bioio_available(path):
    """Whether bioio and the plugin for ``path``'s extension are installed.

    Examples
    --------
    >>> bioio_available("image.png")
    False
    """
    ext = bioio_extension(path)
    return ext is not None and _plugin(ext) is not None


def _missing(path, ext):
    _, package = BIOIO_EXTENSIONS[ext]
    return MissingDependencyError(
        f"reading {Path(path).name} needs bioio and {package}, which are not installed; "
        f"run {INSTALL_HINT} (or convert the file to OME-TIFF, e.g. with Fiji)."
    )


def _open(path, ext):
    import bioio
    import bioio_base.exceptions

    reader = _plugin(ext)
    if reader is None:
        raise _missing(path, ext)
    # bioio-ome-tiff passes ome-types an argument ome-types deprecated: harmless, but
    # with warnings as errors (python -W error) the reader would refuse valid files
    warnings.filterwarnings("ignore", message=_OME_TYPES_DEPRECATION,
                            category=DeprecationWarning)
    try:
        return bioio.BioImage(path, reader=reader)
    except (*_READ_ERRORS, bioio_base.exceptions.UnsupportedFileFormatError) as exc:
        raise _corrupt(path, ext, exc) from exc


def _corrupt(path, ext, exc):
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return CorruptFileError(
        f"{path} could not be read as {ext.lstrip('.').upper()} ({type(exc).__name__}: "
        f"{detail[:200]}); the file may be truncated or corrupt: copy it again, or open "
        "it in Fiji to check."
    )


def _size(dims, name):
    return int(getattr(dims, name)) if name in dims.order else 1


def _layout(img, path, timepoint):
    """The dimension order to request, the indices of the other axes, and the channel dim."""
    dims = img.dims
    sizes = {d: _size(dims, d) for d in dims.order}
    extra = [d for d, n in sizes.items() if d not in "TCZYXS" and n > 1]
    if extra:
        raise UnsupportedFormatError(
            f"{path} has the axes {', '.join(f'{d} ({sizes[d]})' for d in extra)} besides "
            "time, channels, Z, Y and X (e.g. unstitched mosaic tiles); export it as "
            "OME-TIFF with those merged (e.g. in Fiji or the microscope's software) first."
        )
    n_t = sizes.get("T", 1)
    if timepoint is None:
        if n_t > 1:
            raise UnsupportedFormatError(
                f"{path} is a time series of {n_t} time points; pixelforest segments one at "
                "a time: read one with pixelforest.io.formats.read_bioio(path, timepoint=i)."
            )
        timepoint = 0
    if isinstance(timepoint, bool) or not isinstance(timepoint, (int, np.integer)) \
            or not 0 <= timepoint < n_t:
        raise InvalidParameterError(
            f"timepoint must be an integer from 0 to {n_t - 1} for {path}, got {timepoint!r}."
        )
    n_c, n_s = sizes.get("C", 1), sizes.get("S", 1)
    if n_c > 1 and n_s > 1:
        raise UnsupportedFormatError(
            f"{path} has {n_c} channels of {n_s} colour samples each; export the channels "
            "you need as separate images first."
        )
    channel = "C" if n_c > 1 else ("S" if n_s > 1 else None)
    order = ("Z" if sizes.get("Z", 1) > 1 else "") + "YX" + (channel or "")
    others = {d: (int(timepoint) if d == "T" else 0) for d in sizes if d not in order}
    return order, others, channel


def _spacing(img, order):
    sizes = img.physical_pixel_sizes
    values = [getattr(sizes, d) for d in order if d in "ZYX"]
    if any(v is None or not np.isfinite(v) or v <= 0 for v in values):
        return None
    return tuple(float(v) for v in values)


def _unit(img):
    try:
        unit = img.dimension_properties.X.unit
    except AttributeError:  # pragma: no cover - older bioio
        unit = None
    return str(unit) if unit else "micrometer"


def read_bioio(path, *, scene=None, timepoint=None, level=0, lazy=False, chunks=None):
    """Read a microscope file through bioio, in pixelforest's layout, with its spacing.

    Parameters
    ----------
    path : str or Path
        A ``.czi``, ``.nd2``, ``.lif``, ``.ome.tif`` or ``.ome.tiff`` file.
    scene : int or str, optional
        Which scene (series, position) of the file: its index or name.
        Default the first; a file with several then warns
        :class:`~pixelforest.errors.MultipleScenesWarning`.
    timepoint : int, optional
        Which time point of a time series (required when there are several).
    level : int, optional
        Resolution level of a pyramidal file; 0 is full resolution.
    lazy : bool, optional
        Return a dask array that reads the file when computed.
    chunks : int, tuple or "auto", optional
        Dask chunks of a lazy array (default bioio's: a plane or a stack).

    Returns
    -------
    image : ndarray or dask.array.Array
        ``(Y, X)``, ``(Z, Y, X)``, ``(Y, X, C)`` or ``(Z, Y, X, C)``, the
        file's dtype and values.
    info : dict
        ``axes`` (e.g. ``"zyxc"``), ``channel_axis`` (-1 or None),
        ``channel_names``, ``spacing`` (one per spatial axis, or None when
        the file does not record it), ``unit`` (None without spacing),
        ``scene``, ``scenes`` and
        ``reader`` (the bioio plugin).

    Raises
    ------
    MissingDependencyError
        bioio or the plugin for this extension is not installed.
    ImageFileNotFoundError
        ``path`` does not exist.
    UnsupportedFormatError
        Not one of these extensions, or axes pixelforest cannot use
        (several time points without ``timepoint``, unstitched tiles).
    InvalidParameterError
        Unknown ``scene``, ``timepoint`` or ``level``.
    CorruptFileError
        The reader cannot decode the file.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, tifffile, pytest
    >>> _ = pytest.importorskip("bioio_ome_tiff")   # the formats extra
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "cells.ome.tif"
    >>> stack = np.zeros((5, 2, 32, 32), np.uint16)          # Z, C, Y, X as stored
    >>> tifffile.imwrite(path, stack, metadata={"axes": "ZCYX", "PhysicalSizeZ": 2.0,
    ...                  "PhysicalSizeY": 0.5, "PhysicalSizeX": 0.5})
    >>> image, info = read_bioio(path)
    >>> image.shape, info["axes"], info["spacing"]
    ((5, 32, 32, 2), 'zyxc', (2.0, 0.5, 0.5))
    """
    path = Path(path)
    ext = bioio_extension(path)
    if ext is None:
        raise UnsupportedFormatError(
            f"{path} is not a file bioio reads here; pixelforest uses bioio for "
            f"{', '.join(BIOIO_EXTENSIONS)}."
        )
    if _plugin(ext) is None:
        raise _missing(path, ext)
    if not path.exists():
        raise ImageFileNotFoundError(f"{path} does not exist; check the spelling and the folder.")
    img = _open(path, ext)
    import bioio_base.exceptions

    try:
        scenes = tuple(img.scenes)
        chosen = _choose_scene(img, scenes, scene, path)
        levels = tuple(img.resolution_levels)
        if isinstance(level, bool) or not isinstance(level, (int, np.integer)) \
                or level not in levels:
            raise InvalidParameterError(
                f"{path} has no resolution level {level!r}; it has {len(levels)} (0 = full "
                f"resolution, up to {max(levels)})."
            )
        if level:
            img.set_resolution_level(int(level))
        order, others, channel = _layout(img, path, timepoint)
        if lazy:
            image = img.get_image_dask_data(order, **others)
            if chunks is not None:
                image = image.rechunk(chunks)
        else:
            image = np.asarray(img.get_image_data(order, **others))
        spacing = _spacing(img, order)
        names = [str(n) for n in (img.channel_names or [])] if channel == "C" else (
            ["red", "green", "blue", "alpha"][:_size(img.dims, "S")] if channel else [])
        info = {
            "axes": order.lower().replace("s", "c"),
            "channel_axis": -1 if channel else None,
            "channel_names": names,
            "spacing": spacing,
            "unit": _unit(img) if spacing is not None else None,
            "scene": chosen,
            "scenes": list(scenes),
            "reader": type(img.reader).__module__.split(".")[0],
        }
    except (InvalidParameterError, UnsupportedFormatError):
        raise
    except (*_READ_ERRORS, bioio_base.exceptions.UnsupportedFileFormatError) as exc:
        raise _corrupt(path, ext, exc) from exc
    return image, info


def ome_tiff_layout(image, path):
    """An OME-TIFF's first series as stored, in :func:`read_bioio`'s layout (for lazy reads).

    :func:`pixelforest.io.imread_lazy` reads OME-TIFF tile by tile through
    tifffile, which bioio-ome-tiff does not (it reads whole planes), and
    arranges the axes that tifffile reads from the OME metadata as
    :func:`read_bioio` does: ``(Z,) Y, X`` then the channels (or RGB
    samples) last, size-1 axes dropped.

    Parameters
    ----------
    image : ndarray or dask.array.Array
        The first series of ``path``, as stored (its axes: ``series.axes``).
    path : str or Path
        The OME-TIFF.

    Returns
    -------
    image : ndarray or dask.array.Array

    Raises
    ------
    UnsupportedFormatError
        No OME metadata, a time series (read one time point with
        ``read_bioio(path, timepoint=i, lazy=True)``), or axes pixelforest
        cannot use.
    """
    import tifffile

    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tif:
            ome, series = tif.is_ome, tif.series
            axes, shape, n_series = series[0].axes, tuple(series[0].shape), len(series)
    except _READ_ERRORS as exc:
        raise _corrupt(path, ".ome.tif", exc) from exc
    if not ome:
        raise UnsupportedFormatError(
            f"{path} is named like an OME-TIFF but holds no OME metadata; rename it to .tif "
            "(it is then read as stored)."
        )
    if tuple(image.shape) != shape:  # pragma: no cover - another series or level
        raise UnsupportedFormatError(f"{path}: shape {image.shape} is not that of {axes} {shape}.")
    sizes = dict(zip(axes, shape))
    extra = [a for a in axes if a not in "TCZYXS" and sizes[a] > 1]
    if extra or sizes.get("T", 1) > 1 or (sizes.get("C", 1) > 1 and sizes.get("S", 1) > 1):
        what = (f"the axes {', '.join(extra)}" if extra else
                f"{sizes['T']} time points" if sizes.get("T", 1) > 1 else "channels of RGB samples")
        raise UnsupportedFormatError(
            f"{path} has {what}; read one time point or scene with "
            "pixelforest.io.formats.read_bioio(path, timepoint=..., lazy=True), or export "
            "the planes you need as separate images."
        )
    if n_series > 1:
        warnings.warn(
            f"{path} holds {n_series} scenes; the first was read. Read another with "
            "pixelforest.io.formats.read_bioio(path, scene=..., lazy=True).",
            MultipleScenesWarning, stacklevel=3,
        )
    index = tuple(0 if sizes[a] == 1 and a not in "YX" else slice(None) for a in axes)
    kept = [a for a, i in zip(axes, index) if i != 0]
    image = image[index]
    order = [kept.index(a) for a in "ZYXCS" if a in kept]
    return image.transpose(order)


def _choose_scene(img, scenes, scene, path):
    if scene is None:
        if len(scenes) > 1:
            warnings.warn(
                f"{path} holds {len(scenes)} scenes ({', '.join(map(str, scenes[:5]))}"
                f"{', ...' if len(scenes) > 5 else ''}); the first was read. Read another "
                "with pixelforest.io.formats.read_bioio(path, scene=...).",
                MultipleScenesWarning, stacklevel=4,
            )
        return str(scenes[0]) if scenes else None
    if isinstance(scene, (int, np.integer)) and not isinstance(scene, bool):
        if not 0 <= scene < len(scenes):
            raise InvalidParameterError(
                f"{path} has {len(scenes)} scenes; scene must be 0 to {len(scenes) - 1} or "
                f"a name ({', '.join(map(str, scenes[:5]))}), got {scene!r}."
            )
        img.set_scene(int(scene))
        return str(scenes[scene])
    if str(scene) not in [str(s) for s in scenes]:
        raise InvalidParameterError(
            f"{path} has no scene {scene!r}; its scenes are {', '.join(map(str, scenes[:10]))}."
        )
    img.set_scene(str(scene))
    return str(scene)
