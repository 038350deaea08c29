"""Read and write images: TIFF, PNG/JPEG, Zarr and OME-Zarr.

Three functions cover every format pixelforest handles:

- :func:`imread` loads a whole image into a numpy array,
- :func:`imread_lazy` returns a :class:`dask.array.Array` that reads the
  file block by block only when computed (for images larger than memory),
- :func:`imwrite` writes an array atomically (temporary file, then rename),
- :func:`read_metadata` returns the ``"pixelforest"`` metadata of a file
  (what its values mean: labels, mask or probabilities, and which class is
  the foreground), which :func:`imwrite` writes with ``metadata=``.

The format is chosen from the file extension:

==================  ========================  ===============================
extension           read                      write
==================  ========================  ===============================
``.tif``, ``.tiff`` tifffile, as stored       tifffile (BigTIFF when large)
``.png``            imageio (Pillow)          uint8 2-D/RGB/RGBA, uint16 2-D
``.jpg``, ``.jpeg`` imageio (Pillow)          uint8 2-D or RGB (lossy)
``.zarr``           zarr v2/v3, OME-Zarr      zarr v3, chunked
``.czi``, ``.nd2``  bioio (``formats``        not written
``.lif``            extra), see below
``.ome.tif(f)``     bioio-ome-tiff (extra),   tifffile, as ``.tif``
                    else tifffile as stored
==================  ========================  ===============================

Microscope files (:mod:`pixelforest.io.formats`) come back as ``(Z,) Y, X``
with the channels last when there are several, and :func:`read_metadata`
gives their physical pixel size as ``"spacing"``.  Without
``pip install "pixelforest[formats]"``, reading ``.czi``, ``.nd2`` or
``.lif`` raises :class:`~pixelforest.errors.MissingDependencyError`.

Intensities are never rescaled: a uint16 image comes back as uint16 with the
same values.

Broken files raise :class:`~pixelforest.errors.CorruptFileError` naming the
file (and, for Zarr, the chunk), also when the pixels are decoded later by
dask; a Zarr array with missing chunks (read as the fill value) warns with
:class:`~pixelforest.errors.MissingChunksWarning`.
"""

import json
import os
import struct
import threading
import warnings
import zlib
from pathlib import Path

import numpy as np

from pixelforest._shared.atomic import atomic_output
from pixelforest.errors import (
    CorruptFileError,
    ImageFileNotFoundError,
    InvalidImageError,
    InvalidParameterError,
    MissingChunksWarning,
    UnsupportedFormatError,
)

__all__ = ["imread", "imread_lazy", "imwrite", "read_metadata", "METADATA_KEY",
           "READ_EXTENSIONS", "WRITE_EXTENSIONS"]

#: The key of pixelforest's metadata: in a TIFF's ImageDescription JSON, in
#: Zarr attributes and in a PNG text chunk.
METADATA_KEY = "pixelforest"

#: Extensions :func:`imread` and :func:`imread_lazy` understand (``.czi``,
#: ``.nd2``, ``.lif`` with the ``formats`` extra, see :mod:`pixelforest.io.formats`).
READ_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".zarr", ".czi", ".nd2", ".lif")
#: Extensions :func:`imwrite` understands.
WRITE_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".zarr")

_FORMATS = {
    ".tif": "tiff", ".tiff": "tiff",
    ".png": "png",
    ".jpg": "jpeg", ".jpeg": "jpeg",
    ".zarr": "zarr",
}
_ZARR_METADATA = ("zarr.json", ".zarray", ".zgroup")
#: Arrays larger than this many bytes are written as BigTIFF (classic TIFF
#: offsets are 32-bit; the margin leaves room for tags and metadata).
_BIGTIFF_THRESHOLD = 2**32 - 2**25
_JPEG_QUALITY = 95
#: What decoders raise on broken data: tifffile (ValueError, struct.error,
#: zlib.error, ...), numcodecs and imagecodecs (RuntimeError), zarr (KeyError).
_DECODE_ERRORS = (ValueError, OSError, IndexError, KeyError, EOFError, struct.error,
                  zlib.error, RuntimeError, NotImplementedError)
#: File signatures, to say what a file really is when its extension lies.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG", ".png"),
    (b"\xff\xd8\xff", "JPEG", ".jpg"),
    (b"II*\x00", "TIFF", ".tif"), (b"MM\x00*", "TIFF", ".tif"),
    (b"II+\x00", "TIFF", ".tif"), (b"MM\x00+", "TIFF", ".tif"),
    (b"GIF8", "GIF", ".gif"),
    (b"BM", "BMP", ".bmp"),
    (b"PK\x03\x04", "a zip archive", ".zip"),
)


# --------------------------------------------------------------------------
# format detection and checks
# --------------------------------------------------------------------------

def _existing(path):
    path = Path(path)
    if not path.exists():
        raise ImageFileNotFoundError(
            f"{path} does not exist; check the spelling and the folder "
            f"(the current folder is {os.getcwd()})."
        )
    return path


def _read_format(path):
    from pixelforest.io import formats

    ext = formats.bioio_extension(path)
    if ext is not None and (not ext.startswith(".ome.") or formats.bioio_available(path)):
        if path.is_dir():
            raise UnsupportedFormatError(
                f"{path} is a folder, not a {ext} file; pass one image file."
            )
        return "bioio"  # without the extra, an OME-TIFF is read as any TIFF
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None and path.is_dir() and any((path / m).exists() for m in _ZARR_METADATA):
        fmt = "zarr"  # a Zarr array or group inside a store, e.g. store.zarr/raw
    if fmt is None:
        raise UnsupportedFormatError(
            f"cannot read {path}: the extension {path.suffix or '(none)'!r} is not "
            f"supported; pixelforest reads {', '.join(READ_EXTENSIONS)} "
            "(convert the file to TIFF, e.g. with Fiji, first)."
        )
    if fmt == "zarr" and not path.is_dir():
        raise CorruptFileError(
            f"{path} is a file, but a Zarr store is a folder; check that it was "
            "copied completely (zip archives must be unpacked first)."
        )
    if fmt != "zarr" and path.is_dir():
        raise UnsupportedFormatError(
            f"{path} is a folder, not a {path.suffix} file; pass one image file "
            "(or a .zarr store)."
        )
    return fmt


def _write_format(path):
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UnsupportedFormatError(
            f"cannot write {path}: the extension {path.suffix or '(none)'!r} is not "
            f"supported; use one of {', '.join(WRITE_EXTENSIONS)}."
        )
    return fmt


def _is_dask(array):
    return type(array).__module__.split(".")[0] == "dask"


def _check_writable(array):
    """Return ``array`` (numpy or dask) checked for writing; bool becomes uint8."""
    if not _is_dask(array):
        array = np.asarray(array)
    if array.ndim < 2:
        hint = " It looks like a single row of values: reshape it to (1, N)." if array.ndim == 1 else ""
        raise InvalidImageError(
            f"cannot write an array of shape {array.shape} as an image: it needs at "
            f"least 2 dimensions (Y, X).{hint}"
        )
    if 0 in array.shape:
        raise InvalidImageError(
            f"cannot write an empty array (shape {array.shape}) as an image; check "
            "the crop or slice that produced it."
        )
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise InvalidImageError(
            f"cannot write an array of dtype {array.dtype} as an image; convert it "
            "to an integer or float type first."
        )
    return array


# --------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------

def _corrupt(path, exc, what):
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return CorruptFileError(
        f"{path} could not be read as {what} ({detail}); the file may be truncated "
        "(an interrupted copy or download) or corrupt: copy it again."
    )


def _check_signature(path, fmt):
    """Refuse a file whose first bytes say it is another format than its extension."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise _corrupt(path, exc, fmt.upper()) from exc
    for magic, name, suffix in _SIGNATURES:
        if head.startswith(magic):
            if name.lower() == fmt:
                return
            readable = suffix in READ_EXTENSIONS
            fix = (f"rename it to {suffix}" if readable else
                   "convert it to TIFF or PNG (e.g. with Fiji) first")
            raise CorruptFileError(
                f"{path} is not a {fmt.upper()} file (it looks like {name}); {fix}."
            )


def _read_tiff(path, level):
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            levels = len(series.levels)
            if not 0 <= level < levels:
                raise InvalidParameterError(_level_message(path, level, levels))
            return series.levels[level].asarray()
    except InvalidParameterError:
        raise
    except _DECODE_ERRORS as exc:
        raise _corrupt(path, exc, "TIFF") from exc


def _read_pillow(path, fmt):
    import imageio.v3 as iio

    try:
        arr = iio.imread(path, plugin="pillow", extension=path.suffix.lower())
    except (*_DECODE_ERRORS, SyntaxError) as exc:
        raise _corrupt(path, exc, fmt.upper()) from exc
    if arr.ndim == 3 and arr.shape[-1] in (2, 4):  # LA or RGBA: drop alpha
        arr = arr[..., :-1]
        if arr.shape[-1] == 1:
            arr = arr[..., 0]
    if arr.dtype == bool:  # 1-bit images: 0/1 like the masks imwrite writes
        arr = arr.astype(np.uint8)
    return np.ascontiguousarray(arr)


def _level_message(path, level, n_levels):
    return (
        f"{path} has no resolution level {level}; it has {n_levels} "
        f"(use level=0 for full resolution, up to level={n_levels - 1})."
    )


def _zarr_node(path, level):
    """Open the Zarr array to read: a plain array, a one-array group, or an OME-Zarr level."""
    import zarr

    try:
        node = zarr.open(store=str(path), mode="r")
    except (FileNotFoundError, ValueError, KeyError, OSError) as exc:
        raise CorruptFileError(
            f"{path} is not a readable Zarr store ({type(exc).__name__}: {exc}); it "
            "may be incomplete: copy it again, or check that it holds zarr.json, "
            ".zarray or .zgroup."
        ) from exc
    if isinstance(node, zarr.Array):
        if level != 0:
            raise InvalidParameterError(_level_message(path, level, 1))
        return node
    attrs = dict(node.attrs)
    if "bioformats2raw.layout" in attrs and "0" in node:
        node = node["0"]  # bioformats2raw: the first image is the group "0"
        attrs = dict(node.attrs)
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if multiscales:
        datasets = multiscales[0]["datasets"]
        if not 0 <= level < len(datasets):
            raise InvalidParameterError(_level_message(path, level, len(datasets)))
        return node[datasets[level]["path"]]
    arrays = sorted(name for name, _ in node.arrays())
    if len(arrays) == 1 and level == 0:
        return node[arrays[0]]
    if not arrays:
        raise CorruptFileError(
            f"{path} is a Zarr group without arrays or OME-Zarr metadata; point to "
            "the array inside it, or check that the store was copied completely."
        )
    if len(arrays) == 1:
        raise InvalidParameterError(_level_message(path, level, 1))
    raise UnsupportedFormatError(
        f"{path} is a Zarr group with several arrays ({', '.join(arrays)}) and no "
        f"OME-Zarr multiscales metadata; pass the one to read, e.g. {path / arrays[0]}."
    )


def _chunk_file(path, array, coords):
    """The file (under the store ``path``) that holds chunk ``coords`` of ``array``."""
    key = array.metadata.encode_chunk_key(tuple(int(c) for c in coords))
    inner = (array.path or "").strip("/")
    return Path(path) / inner / key if inner else Path(path) / key


def _corrupt_chunk(path, array, region, exc):
    """The error for a failed read of ``region``: find the chunk that fails and name it."""
    import itertools

    chunks = array.chunks
    ranges = []
    for sl, n, c in zip(region, array.shape, chunks):
        start, stop, _ = sl.indices(n)
        ranges.append(range(start // c, max(start, stop - 1) // c + 1))
    bad = None
    for coords in itertools.product(*ranges):
        piece = tuple(slice(i * c, min((i + 1) * c, n))
                      for i, c, n in zip(coords, chunks, array.shape))
        try:
            array[piece]
        except _DECODE_ERRORS as chunk_exc:
            bad, exc = coords, chunk_exc
            break
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    name = f"array {array.path!r} of {path}" if array.path else f"Zarr array {path}"
    if bad is None:  # pragma: no cover - the region failed but no single chunk did
        where = f"region {tuple((s.start, s.stop) for s in region)}"
    else:
        where = f"chunk {array.metadata.encode_chunk_key(bad)!r} ({_chunk_file(path, array, bad)})"
    return CorruptFileError(
        f"{where} of the {name} cannot be decoded ({type(exc).__name__}: {detail}); the "
        "store is damaged: copy it again (or delete that chunk file to read it as the "
        "fill value)."
    )


def _read_zarr(path, array, region=None):
    """Read ``region`` (default: everything) of a Zarr array; a broken chunk is named."""
    region = tuple(slice(0, n) for n in array.shape) if region is None else region
    try:
        return np.asarray(array[region])
    except _DECODE_ERRORS as exc:
        raise _corrupt_chunk(path, array, region, exc) from exc


def _warn_missing_chunks(path, array, stacklevel=3):
    """Warn when chunks of ``array`` are absent from the store (they read as the fill value)."""
    try:
        total, present = int(array.nchunks), int(array.nchunks_initialized)
    except (AttributeError, NotImplementedError, TypeError):  # pragma: no cover - a store
        return                                                   # that cannot list keys
    if present >= total:
        return
    name = f"array {array.path!r} of {path}" if array.path else str(path)
    fill = array.fill_value
    fill = fill.item() if hasattr(fill, "item") else fill
    warnings.warn(
        f"{name}: {total - present} of {total} chunks are missing and read as the fill "
        f"value {fill!r}; if the store was copied or written incompletely, "
        "copy it again (stores written with zarr's write_empty_chunks=False omit chunks "
        "holding only the fill value, which is harmless).",
        MissingChunksWarning, stacklevel=stacklevel,
    )


class _ZarrBlocks:
    """Array-like over a Zarr array for dask: a chunk that cannot be decoded is named.

    Picklable (zarr arrays are), so a dask graph built on it also runs on
    dask.distributed.
    """

    def __init__(self, path, array):
        self.path = str(path)
        self.array = array
        self.shape, self.dtype, self.chunks = array.shape, array.dtype, array.chunks
        self.ndim = len(self.shape)

    def __dask_tokenize__(self):
        stat = os.stat(self.path)
        return (type(self).__name__, self.path, self.array.path, self.shape,
                str(self.dtype), stat.st_mtime_ns)

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        if len(key) < self.ndim:
            key = key + (slice(None),) * (self.ndim - len(key))
        return _read_zarr(self.path, self.array, key)


def _to_gray(arr, path):
    if arr.ndim >= 3 and arr.shape[-1] == 3:
        if np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
            return np.ascontiguousarray(arr[..., 0])
        raise InvalidImageError(
            f"{path} is a colour image (its red, green and blue channels differ), so "
            "as_gray=True would have to invent grey values; read it with "
            "as_gray=False and pass channel_axis=-1 to pixelforest functions, or "
            "convert it explicitly (e.g. skimage.color.rgb2gray)."
        )
    return arr


def imread(path, *, as_gray=False, level=0):
    """Read an image file into a numpy array.

    Parameters
    ----------
    path : str or Path
        A ``.tif``/``.tiff``, ``.png``, ``.jpg``/``.jpeg`` file or a ``.zarr``
        store (a Zarr v2/v3 array, a group holding one array, or an OME-Zarr
        image).  A folder inside a store (``store.zarr/raw``) also works.
        With the ``formats`` extra also ``.czi``, ``.nd2``, ``.lif`` and
        ``.ome.tif``/``.ome.tiff`` (the first scene; see
        :func:`pixelforest.io.formats.read_bioio` for others).
    as_gray : bool, optional
        Return a single-channel image for an RGB image whose three channels
        are identical (a grey image saved as RGB), by keeping one of them.
        Colour images are *not* averaged: they raise
        :class:`~pixelforest.errors.InvalidImageError`; keep them as they
        are and pass ``channel_axis=-1``.  Images without a colour axis are
        returned unchanged.
    level : int, optional
        Resolution level of a pyramid (OME-Zarr multiscales, pyramidal
        TIFF); 0 is full resolution.

    Returns
    -------
    image : ndarray
        TIFF and Zarr data exactly as stored (shape and dtype, stacks and
        channels included).  PNG/JPEG: ``(H, W)`` grey or ``(H, W, 3)`` RGB;
        an alpha channel is dropped, a palette is applied (RGB), and 1-bit
        images come back as uint8 0/1.  Microscope files read by bioio:
        ``(Z,) Y, X`` then the channels last when there are several (pass
        ``channel_axis=-1``).  Values are never rescaled.

    Raises
    ------
    ImageFileNotFoundError
        ``path`` does not exist.
    UnsupportedFormatError
        The extension is not one of :data:`READ_EXTENSIONS`.
    MissingDependencyError
        A ``.czi``, ``.nd2`` or ``.lif`` file without the ``formats`` extra.
    CorruptFileError
        The file is truncated, corrupt (for Zarr: the chunk is named) or not
        what its extension says.
    InvalidImageError
        ``as_gray=True`` on a colour image.
    InvalidParameterError
        ``level`` is not an existing resolution level.

    Warns
    -----
    MissingChunksWarning
        A Zarr array lacks chunks, which read as the fill value.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "cells.tif"
    >>> imwrite(path, np.arange(12, dtype=np.uint16).reshape(3, 4))
    >>> imread(path)
    array([[ 0,  1,  2,  3],
           [ 4,  5,  6,  7],
           [ 8,  9, 10, 11]], dtype=uint16)
    """
    path = _existing(path)
    fmt = _read_format(path)
    level = _check_level(level)
    if fmt not in ("zarr", "bioio"):
        _check_signature(path, fmt)
    if fmt == "bioio":
        from pixelforest.io.formats import read_bioio

        arr, _ = read_bioio(path, level=level)
    elif fmt == "tiff":
        arr = _read_tiff(path, level)
    elif fmt == "zarr":
        node = _zarr_node(path, level)
        _warn_missing_chunks(path, node)
        arr = _read_zarr(path, node)
    else:
        if level != 0:
            raise InvalidParameterError(_level_message(path, level, 1))
        arr = _read_pillow(path, fmt)
    if as_gray:
        arr = _to_gray(arr, path)
    return arr


def _check_level(level):
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or level < 0:
        raise InvalidParameterError(
            f"level must be a non-negative integer (0 = full resolution), got {level!r}."
        )
    return int(level)


class _TiffBlocks:
    """Picklable array-like over one TIFF level, read through tifffile's Zarr store.

    Only the path is pickled; each process opens the file on first access,
    so a dask graph built on it works with threads and with distributed.
    """

    def __init__(self, path, level):
        import tifffile
        import zarr

        self.path = str(path)
        self.level = level
        try:
            store = tifffile.imread(self.path, aszarr=True, level=level)
        except (ValueError, OSError, IndexError, KeyError) as exc:
            if isinstance(exc, IndexError):
                with tifffile.TiffFile(self.path) as tif:
                    n_levels = len(tif.series[0].levels)
                raise InvalidParameterError(_level_message(path, level, n_levels)) from exc
            raise _corrupt(path, exc, "TIFF") from exc
        try:
            z = zarr.open(store=store, mode="r")
            if not isinstance(z, zarr.Array):  # multi-level store: pick the level
                z = z[str(level)]
            self.shape, self.dtype, self.chunks = z.shape, z.dtype, z.chunks
        except _DECODE_ERRORS as exc:
            # a truncated TIFF may parse as an image with no data at all
            raise _corrupt(path, exc, "TIFF") from exc
        finally:
            store.close()
        self.ndim = len(self.shape)
        self._lock = threading.Lock()
        self._store = self._array = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_store", "_array")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._store = self._array = None

    def __dask_tokenize__(self):
        stat = os.stat(self.path)
        return (type(self).__name__, self.path, self.level, stat.st_mtime_ns, stat.st_size)

    def _open(self):
        import tifffile
        import zarr

        with self._lock:
            if self._array is None:
                self._store = tifffile.imread(self.path, aszarr=True, level=self.level)
                z = zarr.open(store=self._store, mode="r")
                self._array = z if isinstance(z, zarr.Array) else z[str(self.level)]
        return self._array

    def __getitem__(self, key):
        try:
            return self._open()[key]
        except _DECODE_ERRORS as exc:
            raise _corrupt(self.path, exc, "TIFF") from exc

    def close(self):
        if self._store is not None:
            self._store.close()
            self._store = self._array = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


def _lazy_tiff(path, level, chunks):
    """One TIFF level as a dask array read tile (or strip) by tile, as stored."""
    import dask.array as da

    blocks = _TiffBlocks(path, level)
    meta = np.empty((0,) * blocks.ndim, dtype=blocks.dtype)
    return da.from_array(blocks, chunks="auto" if chunks is None else chunks,
                         asarray=True, fancy=False, lock=False, meta=meta,
                         name=f"imread-tiff-{da.core.tokenize(blocks)}")


def imread_lazy(path, *, level=0, chunks=None):
    """Open an image as a dask array without reading its pixels.

    Pixels are read block by block when the array (or a part of it) is
    computed, so images larger than memory can be processed tile by tile.

    Parameters
    ----------
    path : str or Path
        A ``.zarr`` store (Zarr v2 or v3 array, one-array group, OME-Zarr)
        or a ``.tif``/``.tiff`` file (strips or tiles are read on demand
        through tifffile's Zarr interface; nothing is loaded up front).
        PNG/JPEG cannot be read partially: the whole file is read, once, when
        the first block is computed.  Microscope files (``formats`` extra)
        are read lazily by bioio (OME-TIFF tile by tile through tifffile),
        in :func:`imread`'s layout.
    level : int, optional
        Pyramid level (OME-Zarr multiscales or pyramidal TIFF); 0 is full
        resolution.
    chunks : int, tuple or "auto", optional
        Dask chunk shape.  Default: the store's own chunks for Zarr; for TIFF,
        dask's "auto" chunks aligned to the file's strips or tiles (strips are
        often a few rows only); one chunk for PNG/JPEG.

    Returns
    -------
    image : dask.array.Array
        Same shape and dtype as :func:`imread` would return (for PNG/JPEG,
        alpha dropped).

    Raises
    ------
    ImageFileNotFoundError, UnsupportedFormatError, CorruptFileError, InvalidParameterError
        As :func:`imread`.  A block that cannot be decoded raises
        :class:`~pixelforest.errors.CorruptFileError` when it is computed,
        naming the file (for Zarr: the array and the chunk key).

    Warns
    -----
    MissingChunksWarning
        A Zarr array lacks chunks, which read as the fill value.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "big.zarr"
    >>> imwrite(path, np.ones((64, 48), dtype=np.uint8), chunks=(32, 16))
    >>> lazy = imread_lazy(path)
    >>> lazy.chunksize, int(lazy[:32].sum().compute())
    ((32, 16), 1536)
    """
    import dask.array as da

    path = _existing(path)
    fmt = _read_format(path)
    level = _check_level(level)
    if fmt == "bioio":
        from pixelforest.io import formats

        if formats.bioio_extension(path).startswith(".ome."):
            # tile by tile through tifffile (bioio reads whole planes), same layout
            _check_signature(path, "tiff")
            image = formats.ome_tiff_layout(_lazy_tiff(path, level, None), path)
            return image if chunks is None else image.rechunk(chunks)
        return formats.read_bioio(path, level=level, lazy=True, chunks=chunks)[0]
    if fmt == "zarr":
        node = _zarr_node(path, level)
        _warn_missing_chunks(path, node)
        blocks = _ZarrBlocks(path, node)
        meta = np.empty((0,) * blocks.ndim, dtype=blocks.dtype)
        return da.from_array(blocks, chunks=chunks if chunks is not None else node.chunks,
                             asarray=True, fancy=False, lock=False, meta=meta,
                             name=f"imread-zarr-{da.core.tokenize(blocks)}")
    _check_signature(path, fmt)
    if fmt == "tiff":
        return _lazy_tiff(path, level, chunks)
    if level != 0:
        raise InvalidParameterError(_level_message(path, level, 1))
    # PNG/JPEG: decode the header only, now, to know shape and dtype.
    import imageio.v3 as iio

    try:
        props = iio.improps(path, plugin="pillow", extension=path.suffix.lower())
    except (*_DECODE_ERRORS, SyntaxError) as exc:
        raise _corrupt(path, exc, fmt.upper()) from exc
    shape = props.shape
    if len(shape) == 3 and shape[-1] in (2, 4):  # alpha is dropped on reading
        shape = shape[:-1] + (shape[-1] - 1,) if shape[-1] == 4 else shape[:-1]
    import dask

    delayed = dask.delayed(_read_pillow, pure=True)(path, fmt)
    image = da.from_delayed(delayed, shape=shape, dtype=props.dtype)
    return image if chunks is None else image.rechunk(chunks)


# --------------------------------------------------------------------------
# metadata
# --------------------------------------------------------------------------

def _unwrap_metadata(metadata):
    """The inner dict of ``metadata`` (``{...}`` or ``{"pixelforest": {...}}``), checked."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise InvalidParameterError(
            f"metadata must be a dict (e.g. {{'kind': 'labels', 'foreground': 2}}), got "
            f"{type(metadata).__name__}."
        )
    if set(metadata) == {METADATA_KEY} and isinstance(metadata[METADATA_KEY], dict):
        metadata = metadata[METADATA_KEY]
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            f"metadata must hold only JSON values (str, int, float, bool, None, lists, "
            f"dicts with str keys): {exc}; convert numpy values with .item() or .tolist()."
        ) from exc
    return dict(metadata)


def _found(value):
    return dict(value) if isinstance(value, dict) else None


def _ome_annotation(xml):
    """pixelforest's metadata in an OME-XML key-value annotation (see :func:`imwrite`)."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "M" and element.get("K") == METADATA_KEY:
            try:
                return _found(json.loads(element.text or ""))
            except ValueError:
                return None
    return None


def _tiff_metadata(path):
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            if tif.is_ome:
                return _ome_annotation(tif.ome_metadata or "")
            for meta in tif.shaped_metadata or ():
                if isinstance(meta, dict) and METADATA_KEY in meta:
                    return _found(meta[METADATA_KEY])
            description = tif.pages.first.description if tif.pages else ""
    except _DECODE_ERRORS as exc:
        raise _corrupt(path, exc, "TIFF") from exc
    try:  # a JSON description tifffile did not take as shaped
        meta = json.loads(description)
    except ValueError:
        return None
    return _found(meta.get(METADATA_KEY)) if isinstance(meta, dict) else None


def _png_metadata(path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            text = dict(getattr(img, "text", None) or img.info)
    except (*_DECODE_ERRORS, UnidentifiedImageError, SyntaxError) as exc:
        raise _corrupt(path, exc, "PNG") from exc
    try:
        return _found(json.loads(text.get(METADATA_KEY, "")))
    except (TypeError, ValueError):
        return None


def _zarr_metadata(path):
    import zarr

    node = _zarr_node(path, 0)  # checks the store; the array that imread reads
    if METADATA_KEY in node.attrs:
        return _found(node.attrs[METADATA_KEY])
    # else the groups above it, up to the store root (OME-Zarr, bioformats2raw)
    root = zarr.open(store=str(path), mode="r")
    parts = [p for p in (node.path or "").split("/") if p]
    root_parts = [p for p in (root.path or "").split("/") if p]
    for depth in range(len(parts) - 1, len(root_parts) - 1, -1):
        inner = "/".join(parts[len(root_parts):depth])
        group = root[inner] if inner else root
        attrs = group.attrs
        if METADATA_KEY in attrs:
            return _found(attrs[METADATA_KEY])
        ome = attrs.get("ome")
        if isinstance(ome, dict) and METADATA_KEY in ome:
            return _found(ome[METADATA_KEY])
    # a path inside a store (store.zarr/0): the groups of the folders above it
    for parent in Path(path).parents:
        if not any((parent / m).exists() for m in _ZARR_METADATA):
            break
        try:
            group = zarr.open_group(store=str(parent), mode="r")
        except (FileNotFoundError, ValueError, KeyError, OSError, TypeError):
            break
        if METADATA_KEY in group.attrs:
            return _found(group.attrs[METADATA_KEY])
    return None


def _bioio_metadata(path):
    """What a microscope file says about its pixels, and pixelforest's metadata if any."""
    from pixelforest.io.formats import read_bioio

    _, info = read_bioio(path, lazy=True)
    meta = {}
    if path.suffix.lower() in (".tif", ".tiff"):  # an OME-TIFF written by pixelforest
        meta.update(_tiff_metadata(path) or {})
    meta.update({key: info[key] for key in ("spacing", "unit", "axes", "channel_axis",
                                            "channel_names", "scene", "scenes")})
    if meta["spacing"] is not None:
        meta["spacing"] = list(meta["spacing"])
    return meta


def read_metadata(path):
    """Return the ``"pixelforest"`` metadata of an image file, or None.

    pixelforest's outputs say what their values mean: the kind of output
    (``"labels"``, ``"mask"`` or ``"probabilities"``), the class values and
    names, and which class is the foreground.  :func:`imwrite` writes it with
    ``metadata=``; ``pixelforest evaluate`` reads it.

    Parameters
    ----------
    path : str or Path
        A TIFF (the JSON ImageDescription that tifffile writes for
        ``metadata={"pixelforest": {...}}``), a PNG (its ``pixelforest``
        text chunk) or a Zarr store (the array's attribute ``"pixelforest"``,
        or that of a group holding it, as in OME-Zarr; Zarr v2 and v3).
        With the ``formats`` extra, a microscope file (``.czi``, ``.nd2``,
        ``.lif``, ``.ome.tif``).

    Returns
    -------
    metadata : dict or None
        For example ``{"kind": "labels", "classes": [1, 2], "class_names":
        {"1": "background", "2": "foreground"}, "foreground": 2}``; None when
        the file has none (JPEG never has: it cannot hold it).  For a
        microscope file, what it records about the pixels :func:`imread`
        returns: ``"spacing"`` (physical pixel size per spatial axis, z y x,
        or None), ``"unit"``, ``"axes"`` (e.g. ``"zyxc"``),
        ``"channel_axis"`` (-1 or None), ``"channel_names"``, ``"scene"`` and
        ``"scenes"``.

    Raises
    ------
    ImageFileNotFoundError, UnsupportedFormatError, CorruptFileError
        As :func:`imread`.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "labels.tif"
    >>> imwrite(out, np.array([[1, 2], [2, 1]], np.uint8),
    ...         metadata={"kind": "labels", "classes": [1, 2], "foreground": 2})
    >>> read_metadata(out)
    {'kind': 'labels', 'classes': [1, 2], 'foreground': 2}
    >>> imwrite(out, np.array([[1, 2], [2, 1]], np.uint8))
    >>> read_metadata(out) is None
    True
    """
    path = _existing(path)
    fmt = _read_format(path)
    if fmt == "zarr":
        return _zarr_metadata(path)
    if fmt == "bioio":
        return _bioio_metadata(path)
    _check_signature(path, fmt)
    if fmt == "tiff":
        return _tiff_metadata(path)
    if fmt == "png":
        return _png_metadata(path)
    return None


# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------

def _write_tiff(tmp, arr, compression, metadata):
    import tifffile

    data = np.asarray(arr)
    rgb = data.ndim >= 3 and data.shape[-1] in (3, 4) and data.dtype in (np.uint8, np.uint16)
    extra = {} if metadata is None else {"metadata": {METADATA_KEY: metadata}}
    if metadata is not None and Path(tmp).name.lower().endswith((".ome.tif", ".ome.tiff")):
        # tifffile writes OME-XML for these names: the metadata goes into an OME
        # key-value annotation (what OMERO shows), as JSON
        extra = {"metadata": {"MapAnnotation": {METADATA_KEY: json.dumps(metadata)}}}
    try:
        tifffile.imwrite(
            tmp, data,
            photometric="rgb" if rgb else "minisblack",
            bigtiff=data.nbytes > _BIGTIFF_THRESHOLD,
            compression=compression,
            **extra,
        )
    except (ValueError, KeyError, ImportError, NotImplementedError) as exc:
        if compression is None:
            raise
        raise UnsupportedFormatError(
            f"TIFF compression {compression!r} is not available ({exc}); use "
            "compression='zlib' (always available) or install imagecodecs."
        ) from exc


def _zarr_compressors(compression):
    from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

    choices = {"zstd": ZstdCodec, "gzip": GzipCodec, "zlib": GzipCodec, "blosc": BloscCodec}
    if compression is None:
        return "auto"
    if compression == "none":
        return None
    if compression not in choices:
        raise UnsupportedFormatError(
            f"Zarr compression {compression!r} is not supported; use one of "
            f"{', '.join(sorted(choices))}, 'none', or None for zarr's default."
        )
    return choices[compression]()


def _write_zarr(tmp, arr, chunks, compression, metadata):
    import zarr

    z = zarr.create_array(
        store=str(tmp), shape=arr.shape, dtype=arr.dtype,
        chunks="auto" if chunks is None else chunks,
        compressors=_zarr_compressors(compression),
        attributes=None if metadata is None else {METADATA_KEY: metadata},
        # every chunk is stored, so that a missing one always means lost data
        config={"write_empty_chunks": True},
    )
    if _is_dask(arr):
        import dask.array as da

        da.store(arr.rechunk(z.chunks), z, lock=False)
    else:
        z[...] = arr


def _write_pillow(tmp, arr, fmt, path, metadata):
    import imageio.v3 as iio

    data = np.asarray(arr)
    colour = data.ndim == 3 and data.shape[-1] in ((3, 4) if fmt == "png" else (3,))
    allowed = (np.uint8, np.uint16) if fmt == "png" else (np.uint8,)
    if data.ndim != 2 and not colour:
        what = "2-D grey, RGB or RGBA" if fmt == "png" else "2-D grey or RGB"
        raise InvalidImageError(
            f"{fmt.upper()} holds {what} images, but the array has shape {data.shape}; "
            "write stacks and multichannel images to .tif or .zarr instead."
        )
    if data.dtype not in allowed or (colour and data.dtype != np.uint8):
        kinds = ("uint8 (grey, RGB, RGBA) or uint16 (grey only)" if fmt == "png" else "uint8")
        raise InvalidImageError(
            f"{fmt.upper()} stores {kinds} pixels, but the array is {data.dtype} with "
            f"shape {data.shape}; write it to .tif or .zarr (any dtype), or convert it "
            "explicitly (pixelforest never rescales intensities for you)."
        )
    kwargs = {"quality": _JPEG_QUALITY} if fmt == "jpeg" else {}
    if fmt == "png" and metadata is not None:
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_itxt(METADATA_KEY, json.dumps(metadata))
        kwargs["pnginfo"] = info
    iio.imwrite(tmp, data, plugin="pillow", extension=path.suffix.lower(), **kwargs)


def imwrite(path, array, *, overwrite=True, chunks=None, compression=None, metadata=None):
    """Write an image atomically: to a temporary file, then renamed into place.

    If anything fails (bad input, full disk, Ctrl-C), ``path`` is left as it
    was and no temporary file remains.

    Parameters
    ----------
    path : str or Path
        Output ``.tif``/``.tiff``, ``.png``, ``.jpg``/``.jpeg`` file or
        ``.zarr`` store.  Missing parent folders are created.
    array : array_like or dask.array.Array
        At least 2-D, numeric or bool (bool is written as uint8 0/1).  Values
        are written as they are, never rescaled.  A dask array is written to
        Zarr block by block (other formats compute it first).
    overwrite : bool, optional
        If False and ``path`` exists, raise
        :class:`~pixelforest.errors.OutputExistsError` and write nothing.
    chunks : int or tuple of int, optional
        Zarr chunk shape (default: zarr's automatic choice).  Zarr only.
    compression : str, optional
        TIFF: a tifffile compression name (``"zlib"`` always works; others
        need imagecodecs); default uncompressed.  Zarr: ``"zstd"``,
        ``"blosc"``, ``"gzip"`` or ``"none"``; default zarr's (zstd).  Not
        used for PNG (always lossless) or JPEG (quality 95).
    metadata : dict, optional
        pixelforest's metadata, saying what the values mean (e.g.
        ``{"kind": "labels", "classes": [1, 2], "foreground": 2}``; a dict
        ``{"pixelforest": {...}}`` is taken as its inner dict), JSON values
        only.  Stored under the key ``"pixelforest"``: in the TIFF's JSON
        ImageDescription (an OME-TIFF's: an OME key-value annotation, as
        JSON), the Zarr array's attributes or a PNG text chunk;
        JPEG cannot hold it, and it is silently left out.  Read it back with
        :func:`read_metadata`.

    Notes
    -----
    TIFF: ``(..., 3)`` and ``(..., 4)`` uint8/uint16 arrays are stored as
    RGB(A), everything else as grey pages; files are BigTIFF when the data
    exceed about 4 GB.  PNG takes uint8 grey/RGB/RGBA and uint16 grey;
    JPEG takes uint8 grey/RGB and is lossy.  NaN and infinity in float
    arrays are written as they are (TIFF and Zarr store them exactly).

    Raises
    ------
    InvalidImageError
        The array is 1-D, empty, not numeric, or not storable in the format.
    InvalidParameterError
        ``metadata`` is not a dict of JSON values.
    UnsupportedFormatError
        Unknown extension or compression, or ``chunks`` for a non-Zarr file.
    OutputExistsError
        ``overwrite=False`` and ``path`` exists.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "mask.png"
    >>> imwrite(out, np.eye(3, dtype=bool))
    >>> imread(out)
    array([[1, 0, 0],
           [0, 1, 0],
           [0, 0, 1]], dtype=uint8)
    """
    path = Path(path)
    fmt = _write_format(path)
    arr = _check_writable(array)
    metadata = _unwrap_metadata(metadata)
    if chunks is not None and fmt != "zarr":
        raise UnsupportedFormatError(
            f"chunks applies to Zarr outputs only, not to {path.suffix}; drop it or "
            "write to a .zarr store."
        )
    if compression is not None and fmt in ("png", "jpeg"):
        raise UnsupportedFormatError(
            f"compression applies to .tif and .zarr outputs, not to {path.suffix}; "
            "drop it (PNG is always losslessly compressed)."
        )
    with atomic_output(path, overwrite=overwrite) as tmp:
        if fmt == "tiff":
            _write_tiff(tmp, arr, compression, metadata)
        elif fmt == "zarr":
            _write_zarr(tmp, arr, chunks, compression, metadata)
        else:
            _write_pillow(tmp, arr, fmt, path, metadata)
