"""Read and write images: TIFF, PNG/JPEG, Zarr and OME-Zarr.

Three functions cover every format pixelforest handles:

- :func:`imread` loads a whole image into a numpy array,
- :func:`imread_lazy` returns a :class:`dask.array.Array` that reads the
  file block by block only when computed (for images larger than memory),
- :func:`imwrite` writes an array atomically (temporary file, then rename).

The format is chosen from the file extension:

==================  ========================  ===============================
extension           read                      write
==================  ========================  ===============================
``.tif``, ``.tiff`` tifffile, as stored       tifffile (BigTIFF when large)
``.png``            imageio (Pillow)          uint8 2-D/RGB/RGBA, uint16 2-D
``.jpg``, ``.jpeg`` imageio (Pillow)          uint8 2-D or RGB (lossy)
``.zarr``           zarr v2/v3, OME-Zarr      zarr v3, chunked
==================  ========================  ===============================

Intensities are never rescaled: a uint16 image comes back as uint16 with the
same values.
"""

import os
import struct
import threading
from pathlib import Path

import numpy as np

from pixelforest._shared.atomic import atomic_output
from pixelforest.errors import (
    CorruptFileError,
    ImageFileNotFoundError,
    InvalidImageError,
    InvalidParameterError,
    UnsupportedFormatError,
)

__all__ = ["imread", "imread_lazy", "imwrite", "READ_EXTENSIONS", "WRITE_EXTENSIONS"]

#: Extensions :func:`imread` and :func:`imread_lazy` understand.
READ_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".zarr")
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
    return CorruptFileError(
        f"{path} could not be read as {what} ({exc}); the file may be truncated "
        "(an interrupted copy or download) or corrupt: copy it again."
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
    except (ValueError, OSError, IndexError, KeyError, struct.error) as exc:
        raise _corrupt(path, exc, "TIFF") from exc


def _read_pillow(path, fmt):
    import imageio.v3 as iio

    try:
        arr = iio.imread(path, plugin="pillow", extension=path.suffix.lower())
    except (OSError, ValueError, SyntaxError) as exc:
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
        images come back as uint8 0/1.  Values are never rescaled.

    Raises
    ------
    ImageFileNotFoundError
        ``path`` does not exist.
    UnsupportedFormatError
        The extension is not one of :data:`READ_EXTENSIONS`.
    CorruptFileError
        The file is truncated or not what its extension says.
    InvalidImageError
        ``as_gray=True`` on a colour image.
    InvalidParameterError
        ``level`` is not an existing resolution level.

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
    if fmt == "tiff":
        arr = _read_tiff(path, level)
    elif fmt == "zarr":
        node = _zarr_node(path, level)
        arr = np.asarray(node[...])
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
        except (ValueError, OSError, KeyError, NotImplementedError, struct.error) as exc:
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
        except (ValueError, OSError, KeyError, struct.error) as exc:
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
        the first block is computed.
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
        As :func:`imread`.

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
    if fmt == "zarr":
        node = _zarr_node(path, level)
        return da.from_zarr(node, chunks=chunks if chunks is not None else node.chunks)
    if fmt == "tiff":
        blocks = _TiffBlocks(path, level)
        meta = np.empty((0,) * blocks.ndim, dtype=blocks.dtype)
        return da.from_array(blocks, chunks="auto" if chunks is None else chunks,
                             asarray=True, fancy=False, lock=False, meta=meta,
                             name=f"imread-tiff-{da.core.tokenize(blocks)}")
    if level != 0:
        raise InvalidParameterError(_level_message(path, level, 1))
    # PNG/JPEG: decode the header only, now, to know shape and dtype.
    import imageio.v3 as iio

    try:
        props = iio.improps(path, plugin="pillow", extension=path.suffix.lower())
    except (OSError, ValueError, SyntaxError) as exc:
        raise _corrupt(path, exc, fmt.upper()) from exc
    shape = props.shape
    if len(shape) == 3 and shape[-1] in (2, 4):  # alpha is dropped on reading
        shape = shape[:-1] + (shape[-1] - 1,) if shape[-1] == 4 else shape[:-1]
    import dask

    delayed = dask.delayed(_read_pillow, pure=True)(path, fmt)
    image = da.from_delayed(delayed, shape=shape, dtype=props.dtype)
    return image if chunks is None else image.rechunk(chunks)


# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------

def _write_tiff(tmp, arr, compression):
    import tifffile

    data = np.asarray(arr)
    rgb = data.ndim >= 3 and data.shape[-1] in (3, 4) and data.dtype in (np.uint8, np.uint16)
    try:
        tifffile.imwrite(
            tmp, data,
            photometric="rgb" if rgb else "minisblack",
            bigtiff=data.nbytes > _BIGTIFF_THRESHOLD,
            compression=compression,
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


def _write_zarr(tmp, arr, chunks, compression):
    import zarr

    z = zarr.create_array(
        store=str(tmp), shape=arr.shape, dtype=arr.dtype,
        chunks="auto" if chunks is None else chunks,
        compressors=_zarr_compressors(compression),
    )
    if _is_dask(arr):
        import dask.array as da

        da.store(arr.rechunk(z.chunks), z, lock=False)
    else:
        z[...] = arr


def _write_pillow(tmp, arr, fmt, path):
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
    iio.imwrite(tmp, data, plugin="pillow", extension=path.suffix.lower(), **kwargs)


def imwrite(path, array, *, overwrite=True, chunks=None, compression=None):
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
            _write_tiff(tmp, arr, compression)
        elif fmt == "zarr":
            _write_zarr(tmp, arr, chunks, compression)
        else:
            _write_pillow(tmp, arr, fmt, path)
