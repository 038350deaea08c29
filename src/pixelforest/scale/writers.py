"""Writing a lazy prediction to disk as its blocks finish: a chunked Zarr store, an
OME-Zarr (``*.ome.zarr``: labels with OME-NGFF ``labels`` metadata, :mod:`pixelforest.io.ngff`),
a tiled BigTIFF, or (2-D labels and masks) a PNG.

The writers write into the temporary path they are given (the caller's
:func:`~pixelforest._shared.atomic.atomic_output`), advance a progress bar
per block, and on a distributed cluster let the workers write Zarr blocks
themselves (the output must be on a file system they all see).  A PNG is
assembled in memory (it has no blocks), so it suits images that fit there.
"""

import math
import os
import shutil
import sys
import uuid
from pathlib import Path

import numpy as np

from pixelforest.errors import UnsupportedFormatError
from pixelforest.scale.engine import PREDICT_PREFIX

__all__ = ["TIFF_TILE", "auto_progress", "block_counter", "check_ome_zarr", "check_png",
           "output_format", "write_ome_zarr", "write_png", "write_tiff", "write_zarr"]

#: Edge of the tiles of a BigTIFF output (a multiple of 16, as TIFF requires).
TIFF_TILE = 256

#: Output formats by file-name suffix.
_FORMATS = {".zarr": "zarr", ".tif": "tif", ".tiff": "tif", ".png": "png"}

#: Extensions of images an output could be named after (one input, one file).
IMAGE_EXTENSIONS = (".zarr", ".tif", ".tiff", ".png", ".jpg", ".jpeg")


def output_format(output, format=None):
    if format is not None:
        fmt = {"tif": "tif", "tiff": "tif", "zarr": "zarr", "png": "png",
               "ome-zarr": "ome-zarr", "ome.zarr": "ome-zarr"}.get(str(format).lower())
        if fmt is None:
            raise UnsupportedFormatError(
                f"unknown output format {format!r}; use 'tif' (tiled BigTIFF), 'zarr', "
                "'ome-zarr' (labels with OME-NGFF metadata) or 'png' (2-D labels or mask)."
            )
        return fmt
    if Path(output).name.lower().endswith(".ome.zarr"):
        return "ome-zarr"
    suffix = Path(output).suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        raise UnsupportedFormatError(
            f"{output}: JPEG is lossy and would change the predicted values; name the "
            "output *.png, *.tif or *.zarr."
        )
    fmt = _FORMATS.get(suffix)
    if fmt is None:
        raise UnsupportedFormatError(
            f"cannot tell the output format of {output} from its extension; name it "
            "*.zarr (chunked Zarr), *.tif (tiled BigTIFF) or *.png (2-D labels or mask)."
        )
    return fmt


def check_png(output, kind, spatial_ndim):
    """Refuse what a PNG cannot hold: probabilities, or a 3-D prediction."""
    if kind == "probabilities":
        raise UnsupportedFormatError(
            f"{output}: a PNG cannot hold probabilities (float32, one channel per class); "
            "write them to *.tif or *.zarr, or write labels or a mask (--kind mask)."
        )
    if spatial_ndim != 2:
        raise UnsupportedFormatError(
            f"{output}: a PNG holds 2-D images, but this prediction is {spatial_ndim}-D; "
            "write it to *.tif or *.zarr."
        )


def check_ome_zarr(output, kind):
    """Refuse what NGFF labels cannot hold: probabilities (floats, one channel per class)."""
    if kind == "probabilities":
        raise UnsupportedFormatError(
            f"{output}: OME-Zarr labels are integers, not probabilities; write "
            "probabilities to *.zarr or *.tif, or labels, a mask or instances to *.ome.zarr."
        )


def auto_progress(progress):
    if progress is not None:
        return bool(progress)
    if os.environ.get("CI"):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # pragma: no cover - closed stream
        return False


def block_counter(bar, prefix):
    """A dask callback advancing ``bar`` each time a task whose name starts with
    ``prefix`` ends (dask may fuse tasks, which keeps the prefix)."""
    from dask.callbacks import Callback

    def posttask(key, result, dsk, state, id):
        if str(key[0] if isinstance(key, tuple) else key).startswith(prefix):
            bar.update(1)

    return Callback(posttask=posttask)


def _write_zarr_block(block, path, region):
    import zarr

    path = Path(path)
    if not path.exists():
        # abandoned (an error or Ctrl-C elsewhere: then nobody waits for this), or
        # created where this worker cannot see it
        raise OSError(
            f"the output store {path} does not exist on this worker; on a cluster the "
            "output must be on a file system shared by every worker (same path)."
        )
    # every block stored, also an all-zero one: a missing chunk then always means lost data
    arr = zarr.open_array(str(path), mode="r+").with_config({"write_empty_chunks": True})
    arr[region] = block
    if not path.exists():  # pragma: no cover - removed while this block was written
        shutil.rmtree(path, ignore_errors=True)
    return 1


def _regions(chunks):
    """Slices of every block of a dask chunk tuple, in dask's C order."""
    import itertools

    starts = [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(int) for c in chunks]
    for index in itertools.product(*(range(len(c)) for c in chunks)):
        yield index, tuple(slice(int(s[i]), int(s[i]) + int(c[i]))
                           for s, c, i in zip(starts, chunks, index))


def write_zarr(result, tmp, sched, bar, attrs):
    import zarr

    zarr_chunks = tuple(c[0] for c in result.chunks)
    arr = zarr.create_array(store=str(tmp), shape=result.shape, chunks=zarr_chunks,
                            dtype=result.dtype, fill_value=0, attributes=attrs)
    del arr
    _write_blocks(result, tmp, sched, bar)


def write_ome_zarr(result, tmp, sched, bar, attrs, *, spacing=None):
    """Write 2-D/3-D labels ``result`` as an OME-Zarr label image (NGFF 0.5) at ``tmp``.

    The store's root is the label image (``multiscales`` with ``scale`` =
    ``spacing``, ``image-label`` with the class names and colours of
    semantic labels; instances and masks get none, viewers colour each
    value), pixelforest's metadata beside it; one resolution level, written
    block by block as the blocks finish.
    """
    from pixelforest.io.ngff import create_ome_zarr_labels, write_label_pyramid

    meta = attrs["pixelforest"]
    class_names = meta.get("class_names") if meta.get("kind") == "labels" else None
    target = create_ome_zarr_labels(tmp, shape=result.shape, dtype=result.dtype,
                                    chunks=tuple(c[0] for c in result.chunks),
                                    class_names=class_names, spacing=spacing, metadata=attrs)
    _write_blocks(result, target, sched, bar)
    write_label_pyramid(tmp)


def _write_blocks(result, array_path, sched, bar):
    """Store every block of ``result`` into the Zarr array at ``array_path``."""
    import dask

    tmp = array_path
    blocks = result.to_delayed()
    name = f"pixelforest-write-{uuid.uuid4().hex}"
    writes = []
    for i, (index, region) in enumerate(_regions(result.chunks)):
        writes.append(dask.delayed(_write_zarr_block, pure=False)(
            blocks[index], str(tmp), region, dask_key_name=f"{name}-{i}"))
    if sched.is_distributed:
        compute_distributed(writes, sched, bar)
    else:
        sched.compute(writes, callbacks=[block_counter(bar, name)])


def compute_distributed(delayeds, sched, bar):
    """Compute ``delayeds`` on the cluster, a bar step each; never waits forever."""
    futures = sched.client.compute(delayeds)
    sched.wait_futures(futures, on_done=lambda future: bar.update(1))


def _tiles_2d(arr, tile):
    th, tw = tile
    for y in range(0, arr.shape[0], th):
        for x in range(0, arr.shape[1], tw):
            yield arr[y:y + th, x:x + tw]


def _iter_tiff_tiles(result, spatial_ndim, sched, bar):
    """Compute ``result`` slab by slab (first axis) and yield TIFF tiles in order."""
    starts = np.concatenate([[0], np.cumsum(result.chunks[0])]).astype(int)
    n_blocks_per_slab = math.prod(len(c) for c in result.chunks[1:])
    buffer = None
    for k in range(len(result.chunks[0])):
        slab_da = result[starts[k]:starts[k + 1]]
        if sched.is_distributed:
            (slab,) = sched.compute(slab_da)
            bar.update(n_blocks_per_slab)
        else:
            (slab,) = sched.compute(slab_da, callbacks=[block_counter(bar, PREDICT_PREFIX)])
        if spatial_ndim == 3:
            for plane in slab:
                yield from _tiles_2d(plane, (TIFF_TILE, TIFF_TILE))
            continue
        buffer = slab if buffer is None else np.concatenate([buffer, slab])
        last = k == len(result.chunks[0]) - 1
        while buffer.shape[0] >= TIFF_TILE or (last and buffer.shape[0]):
            yield from _tiles_2d(buffer[:TIFF_TILE], (TIFF_TILE, TIFF_TILE))
            buffer = buffer[TIFF_TILE:]


def write_tiff(result, tmp, sched, bar, spatial_ndim, attrs):
    import tifffile

    extra = {}
    if result.ndim > spatial_ndim:  # probabilities: classes as samples
        extra = {"photometric": "minisblack", "planarconfig": "contig"}
    with tifffile.TiffWriter(tmp, bigtiff=True) as tif:
        tif.write(_iter_tiff_tiles(result, spatial_ndim, sched, bar), shape=result.shape,
                  dtype=result.dtype, tile=(TIFF_TILE, TIFF_TILE), compression="zlib",
                  metadata=attrs, **extra)


def _png_dtype(arr, output):
    """Labels as uint8 or uint16, values unchanged (PNG stores nothing else)."""
    for dtype in (np.uint8, np.uint16):
        info = np.iinfo(dtype)
        if arr.dtype == dtype or (np.issubdtype(arr.dtype, np.integer) and arr.size
                                  and info.min <= arr.min() and arr.max() <= info.max):
            return arr.astype(dtype, copy=False)
    raise UnsupportedFormatError(
        f"{output}: a PNG stores values 0 to 65535, but the labels are {arr.dtype} "
        f"from {arr.min()} to {arr.max()}; write them to *.tif or *.zarr."
    )


def write_png(result, tmp, sched, bar, attrs):
    """Compute a 2-D labels or mask ``result`` and write it as a PNG to ``tmp``."""
    import inspect

    from pixelforest.io.images import imwrite

    if sched.is_distributed:
        (arr,) = sched.compute(result)
        bar.update(bar.total - bar.n)
    else:
        (arr,) = sched.compute(result, callbacks=[block_counter(bar, PREDICT_PREFIX)])
    arr = _png_dtype(np.asarray(arr), tmp)
    extra = {}
    if "metadata" in inspect.signature(imwrite).parameters:  # PNG text metadata
        extra["metadata"] = attrs
    imwrite(tmp, arr, **extra)
