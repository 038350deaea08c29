"""The block engine: a fitted pipeline applied to every block of a dask array, halo included.

Each block is read with a margin (the pipeline's *halo*: the reach of its
largest filter) by :func:`dask.array.map_overlap` with ``boundary="none"``,
so the filters see exactly the pixels they would see on the whole image and
the image border is handled by the filters' own edge mode.  A block returns
only its labels (or class probabilities), trimmed to its interior, never a
feature stack.  dask runs the blocks in parallel, so each block runs on one
thread (the one thread budget is dask's).
"""

import os
import uuid

import numpy as np

from pixelforest.classify.pipeline import pipeline_of
from pixelforest.scale.chunking import as_tuple, block_chunks, choose_chunks
from pixelforest.scale.inputs import as_dask_channel_last
from pixelforest.scale.outputs import MASK_VALUE
from pixelforest.scale.statistics import lazy_statistics

__all__ = ["PREDICT_PREFIX", "lazy_prediction",
           "map_blocks_with_halo", "pipeline_of", "prepare"]

#: Name prefix of the dask tasks that predict one block.
PREDICT_PREFIX = "pixelforest-predict"


def map_blocks_with_halo(func, image_cl, *, halo, chunks, n_out, dtype, func_kwargs=None, name=None):
    """Apply ``func(block_with_halo, **func_kwargs)`` to every block and trim the halo.

    ``image_cl`` is channel-last; ``chunks`` a chunk tuple per spatial axis
    (from :func:`block_chunks`).  ``func`` returns ``block.shape[:-1]`` (if
    ``n_out`` is None) or ``block.shape[:-1] + (n_out,)``.
    """
    import dask.array as da

    ndim = image_cl.ndim - 1
    x = image_cl.rechunk(tuple(chunks) + (image_cl.shape[-1],))
    depth = {i: int(h) for i, h in enumerate(halo)}
    depth[ndim] = 0
    kwargs = dict(func_kwargs or {}, dtype=dtype, name=name)
    if n_out is None:
        kwargs["drop_axis"] = ndim
        kwargs["meta"] = np.empty((0,) * ndim, dtype=dtype)
    else:
        overlapped = tuple(
            tuple(c + h * ((j > 0) + (j < len(cs) - 1)) for j, c in enumerate(cs))
            for cs, h in zip(chunks, halo))
        kwargs["chunks"] = overlapped + ((n_out,),)
        kwargs["meta"] = np.empty((0,) * (ndim + 1), dtype=dtype)
        if all(h == 0 for h in halo):
            kwargs["chunks"] = tuple(chunks) + ((n_out,),)
    return da.map_overlap(func, x, depth=depth, boundary="none", trim=True,
                          allow_rechunk=False, **kwargs)


def _predict_block(block_cl, *, pipeline, stats, kind, foreground=None):
    if kind == "probabilities":
        return pipeline.predict_proba_block(block_cl, stats, n_threads=1)
    labels = pipeline.predict_block(block_cl, stats, n_threads=1)
    if kind == "mask":
        return np.where(labels == foreground, MASK_VALUE, 0).astype(np.uint8)
    return labels


def prepare(pipeline, image, chunks, sched, *, channel_axis="training"):
    """Check ``image`` once and plan its blocks.

    Returns ``(image_cl, block chunks, statistics)``: the image as a
    channel-last dask array, the dask chunks of its blocks (each at least
    the halo, see :func:`~pixelforest.scale.chunking.block_chunks`), and the
    whole image's normalization statistics, computed on ``sched``.
    ``channel_axis`` is the image's (by default that of the training images).
    """
    if isinstance(channel_axis, str) and channel_axis == "training":
        channel_axis = pipeline.channel_axis
    if isinstance(image, (str, os.PathLike)):
        from pixelforest.io.images import imread_lazy

        image = imread_lazy(os.path.abspath(image))  # workers may have another cwd
    pipeline.check_rank(np.shape(image), channel_axis)
    image_cl, _ = as_dask_channel_last(image, channel_axis)
    spatial = image_cl.shape[:-1]
    pipeline.check_shape(spatial, image_cl.shape[-1], channel_axis=channel_axis)
    if chunks is None:
        base = tuple(c[0] for c in image_cl.chunks[:-1])
        chunks = choose_chunks(spatial, n_features=pipeline.n_features, halo=pipeline.halo,
                               workers=sched.n_workers, base_chunks=base)
    else:
        chunks = as_tuple(chunks, len(spatial), "chunks")
    chunks = block_chunks(spatial, chunks, pipeline.halo)
    return image_cl, chunks, lazy_statistics(pipeline, image_cl, sched)


def lazy_prediction(pipeline, image_cl, chunks, stats, kind="labels", foreground=None):
    """The labels, mask or probabilities of every block, as a lazy dask array.

    ``kind`` is one of :data:`~pixelforest.scale.outputs.KINDS` (True and
    False, the older ``probabilities`` flag, mean probabilities and labels);
    a mask is 255 where the label is ``foreground`` (a class value).
    """
    import dask

    if isinstance(kind, bool):
        kind = "probabilities" if kind else "labels"
    shipped = dask.delayed(pipeline, pure=False)
    if kind == "probabilities":
        n_out, dtype = pipeline.classes.size, np.float32
    elif kind == "mask":
        n_out, dtype = None, np.uint8
    else:
        n_out, dtype = None, pipeline.classes.dtype
    name = f"{PREDICT_PREFIX}-{uuid.uuid4().hex}"
    return map_blocks_with_halo(_predict_block, image_cl, halo=pipeline.halo, chunks=chunks,
                                n_out=n_out, dtype=dtype,
                                func_kwargs={"pipeline": shipped, "stats": stats,
                                             "kind": kind, "foreground": foreground},
                                name=name)
