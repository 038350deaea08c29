"""Out-of-core prediction: images larger than memory, tile by tile, with dask.

A fitted :class:`~pixelforest.classify.classifier.PixelClassifier` (its
:class:`~pixelforest.classify.pipeline.PredictionPipeline`) is applied block
by block with :func:`dask.array.map_overlap` (:mod:`pixelforest.scale.engine`).  Each block is read with a
margin (the *halo*, ``clf.halo_``: the reach of the largest filter plus any
spatial post-processing) and ``boundary="none"``, so the filters see exactly
the pixels they would see on the whole image and the image border is
handled by the filters' own edge mode.  A block returns only its labels (or
class probabilities), trimmed to its interior: never a feature stack.

Normalization statistics are global: the percentiles of the *whole* image
are measured first, without loading it (:mod:`pixelforest.scale.statistics`,
exact order statistics from per-chunk histograms), then every block is
stretched with the same numbers.  The tiled result is therefore bit for bit
the in-memory ``clf.predict(image)``.

Computation runs on dask's local threads by default, on ``workers`` threads
if given, or on a running ``dask.distributed`` cluster (``scheduler=`` a
:class:`distributed.Client` or an address such as ``"tcp://host:8786"``).
:func:`predict_to_file` streams the result to a chunked Zarr store or a
tiled BigTIFF as blocks finish, through a temporary file renamed into place
at the end (never a half-written output, also on Ctrl-C).

Memory
------
One block holds its feature stack while it is classified::

    memory ~ workers x (chunk + 2 x halo) ** ndim x n_features x 4 bytes x 3
             + model + input and output chunks in flight

(the factor 3 covers the filters' temporaries, see ``benchmarks/README.md``).  With ``chunks=None`` the chunk size is chosen
so that this stays within :data:`DEFAULT_MEMORY_BUDGET` for the number of
workers; pass ``chunks`` (CLI ``--chunks``) to trade memory for fewer,
larger blocks (``benchmarks/bench_large.py`` measures an 8192 x 8192 Zarr).

Instance labels (``kind="instances"``) take several passes over the image
(probability, whole-image statistics, objects, numbering) with blocks read
with an overlap larger than the objects: see :mod:`pixelforest.scale.instances`.
"""

import math
import os
import sys
from pathlib import Path

from pixelforest._shared.atomic import atomic_output, check_not_input
from pixelforest.scale.chunking import DEFAULT_MEMORY_BUDGET, choose_chunks
from pixelforest.scale.engine import lazy_prediction, pipeline_of, prepare
from pixelforest.scale.instances import (
    InstanceOptions,
    instance_metadata,
    instances_to_store,
    lazy_instances,
    scratch_folder,
)
from pixelforest.scale.outputs import output_metadata, resolve_foreground, resolve_kind
from pixelforest.scale.scheduler import DEFAULT_TIMEOUT, open_scheduler
from pixelforest.scale.statistics import lazy_percentile_bounds
from pixelforest.scale.writers import (
    auto_progress,
    check_ome_zarr,
    check_png,
    output_format,
    write_ome_zarr,
    write_png,
    write_tiff,
    write_zarr,
)

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "DEFAULT_TIMEOUT",
    "choose_chunks",
    "lazy_percentile_bounds",
    "predict_tiled",
    "predict_to_file",
    "predict_to_file_on",
]


def predict_tiled(clf, image, *, chunks=None, probabilities=False, scheduler=None,
                  workers=None, kind=None, foreground=None, timeout=DEFAULT_TIMEOUT,
                  instances=None, workdir=None):
    """Predict labels, a mask or probabilities block by block (lazily, with dask).

    The image is never loaded whole: its global normalization statistics
    are measured first (one pass over the data), then each block is
    classified with its halo by ``dask.array.map_overlap``.  The result
    equals ``clf.predict(image)`` (or ``clf.predict_proba``) bit for bit.

    Parameters
    ----------
    clf : PixelClassifier or PredictionPipeline
        A fitted classifier (or its ``pipeline_``).
    image : ndarray, dask.array.Array, str or Path
        The image, in the channel convention the model was trained with
        (``clf.channel_axis``); a path is opened lazily with
        :func:`pixelforest.io.images.imread_lazy` (Zarr, OME-Zarr, TIFF).
    chunks : int or tuple of int, optional
        Block side per spatial axis, without the halo.  None picks the
        largest that keeps memory within :data:`DEFAULT_MEMORY_BUDGET`
        (see :func:`choose_chunks`).  Must be at least the halo.
    probabilities : bool, optional
        Return class probabilities ``(spatial..., n_classes)`` float32
        instead of labels (the same as ``kind="probabilities"``).
    scheduler : None, str or distributed.Client, optional
        Where the statistics pass runs (the returned array is computed
        wherever you compute it): None for local threads, an address such
        as ``"tcp://host:8786"``, or a :class:`distributed.Client`.
    workers : int, optional
        Local threads (default: every core); also sets how many blocks
        the automatic chunk size plans for.
    kind : {'labels', 'mask', 'probabilities', 'instances'} or None, optional
        What to predict (see :mod:`pixelforest.scale.outputs`): class
        values (default), a uint8 mask (255 where the class is
        ``foreground``, 0 elsewhere), class probabilities, or uint32
        instance labels (the ``foreground`` class split into objects, as
        ``clf.predict_instances`` up to a renumbering for every object
        smaller than the overlap: :mod:`pixelforest.scale.instances`).
    foreground : number, optional
        The class of a mask or of the instances (default: the largest class
        value).
    timeout : float, optional
        Seconds a distributed cluster may go without a worker or without
        progress before :class:`~pixelforest.errors.ClusterTimeoutError`.
    instances : InstanceOptions or dict, optional
        With ``kind="instances"``: ``overlap``, ``spacing``, ``guide``,
        ``threshold``, ``radius``, ``min_size``, ``max_size``, ``outline``
        (:class:`~pixelforest.scale.instances.InstanceOptions`).
    workdir : str or Path, optional
        With ``kind="instances"``: where the intermediate arrays (the
        probability, the unnumbered labels) are kept until the returned
        array is garbage collected (default: the system's temporary
        folder; on a cluster, a folder every worker sees).

    Returns
    -------
    result : dask.array.Array
        Labels (``clf.classes_`` dtype, the image's spatial shape), a
        uint8 mask, probabilities, or uint32 instance labels, not yet
        computed (instances: the segmentation is done here, and the
        returned array only numbers the stored objects).

    Raises
    ------
    NotFittedError
        The classifier is not fitted.
    ChannelMismatchError
        The image has a different number of channels than the model.
    InvalidParameterError
        ``chunks`` is not positive or is smaller than ``clf.halo_``, an
        unknown ``kind``, a ``foreground`` that is no class, a bad
        ``timeout``, or a scheduler address that is not one (e.g. the
        dashboard's ``http://`` address).
    InvalidImageError
        Empty, non-numeric, non-finite or wrongly shaped image.
    ClusterTimeoutError
        The cluster has no workers, or made no progress for ``timeout`` s.

    Notes
    -----
    Memory ~ ``workers x (chunk + 2 halo) ** ndim x n_features x 4 bytes x 3``
    plus the model: halve ``chunks`` (CLI ``--chunks``) to divide the
    feature memory by 4 in 2D.

    Examples
    --------
    >>> import numpy as np
    >>> from pixelforest.classify.classifier import PixelClassifier
    >>> from pixelforest.features import FeatureSpec
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(size=(60, 50)).astype(np.float32)
    >>> image[20:40, 10:30] += 3
    >>> scribbles = np.zeros(image.shape, np.uint8)
    >>> scribbles[2:5, 2:40], scribbles[28:31, 15:25] = 1, 2
    >>> clf = PixelClassifier(FeatureSpec(sigmas=(1.0, 2.0))).fit(image, scribbles)
    >>> lazy = predict_tiled(clf, image, chunks=(23, 17), scheduler="synchronous")
    >>> bool((lazy.compute(scheduler="synchronous") == clf.predict(image)).all())
    True
    """
    pipeline = pipeline_of(clf)
    kind = resolve_kind(kind, probabilities)
    foreground = resolve_foreground(pipeline.classes, foreground)
    if kind == "instances":
        return _instances_tiled(clf, pipeline, image, chunks=chunks, scheduler=scheduler,
                                workers=workers, foreground=foreground, timeout=timeout,
                                options=InstanceOptions.of(instances), workdir=workdir)
    with open_scheduler(scheduler, workers, timeout=timeout) as sched:
        image_cl, chunks, stats = prepare(pipeline, image, chunks, sched,
                                          channel_axis=clf.channel_axis)
    return lazy_prediction(pipeline, image_cl, chunks, stats, kind, foreground)


def _instances_tiled(clf, pipeline, image, *, chunks, scheduler, workers, foreground, timeout,
                     options, workdir):
    """:func:`predict_tiled` of instances: segment into a scratch folder, number lazily."""
    scratch = scratch_folder(workdir)
    try:
        with open_scheduler(scheduler, workers, timeout=timeout) as sched, \
                sched.session() as session:
            facts = instances_to_store(pipeline, image, scratch.path, session, chunks=chunks,
                                       options=options, foreground=foreground,
                                       channel_axis=clf.channel_axis)
    except BaseException:
        scratch.remove()
        raise
    return lazy_instances(facts, keep=scratch)


def predict_to_file(clf, image, output, *, chunks=None, probabilities=False,
                    scheduler=None, workers=None, overwrite=False, progress=None,
                    format=None, kind=None, foreground=None, timeout=DEFAULT_TIMEOUT,
                    instances=None):
    """Predict an image block by block and stream the result to Zarr or BigTIFF.

    Blocks are written as they finish into a temporary store next to
    ``output``, renamed into place once complete: a failure, Ctrl-C or a
    stalled cluster leaves no partial output and no temporary file behind.
    The output carries a ``"pixelforest"`` metadata dict (Zarr attributes,
    TIFF/PNG metadata) naming its kind, class values, class names and
    foreground class (see :mod:`pixelforest.scale.outputs`).

    Parameters
    ----------
    clf : PixelClassifier or PredictionPipeline
        A fitted classifier (or its ``pipeline_``).
    image : ndarray, dask.array.Array, str or Path
        As for :func:`predict_tiled`.
    output : str or Path
        ``*.zarr`` (a Zarr store chunked like the blocks), ``*.ome.zarr``
        (labels, a mask or instances as an OME-Zarr label image with
        OME-NGFF metadata, :mod:`pixelforest.io.ngff`), ``*.tif`` /
        ``*.tiff`` (a tiled, zlib-compressed BigTIFF) or ``*.png`` (2-D
        labels or mask, assembled in memory).
    chunks, probabilities, scheduler, workers, kind, foreground, timeout, instances
        As for :func:`predict_tiled`.  On a distributed cluster the Zarr
        blocks are written by the workers, so ``output`` must be on a file
        system they share; a TIFF is written by this process.  Instances
        keep their intermediate arrays in a temporary folder next to
        ``output`` (also shared with the workers), removed at the end.
    overwrite : bool, optional
        Replace an existing ``output``; otherwise
        :class:`~pixelforest.errors.OutputExistsError` is raised.
    progress : bool or None, optional
        Show a progress bar of blocks on stderr; None shows it only on a
        terminal outside CI.
    format : {'zarr', 'ome-zarr', 'tif', 'png'} or None, optional
        Output format; None infers it from the extension.

    Returns
    -------
    output : Path
        Where the result was written.

    Raises
    ------
    OutputExistsError
        ``output`` exists and ``overwrite`` is False, or it is the input.
    UnsupportedFormatError
        ``output`` is neither Zarr, TIFF nor PNG (JPEG is lossy), or a PNG
        of probabilities or of a 3-D image.
    ClusterTimeoutError
        The cluster has no workers, or made no progress for ``timeout`` s.

    Examples
    --------
    >>> import tempfile, pathlib, zarr, numpy as np
    >>> from pixelforest.classify.classifier import PixelClassifier
    >>> from pixelforest.features import FeatureSpec
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(size=(60, 50)).astype(np.float32)
    >>> image[20:40, 10:30] += 3
    >>> scribbles = np.zeros(image.shape, np.uint8)
    >>> scribbles[2:5, 2:40], scribbles[28:31, 15:25] = 1, 2
    >>> clf = PixelClassifier(FeatureSpec(sigmas=(1.0, 2.0))).fit(image, scribbles)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "labels.zarr"
    >>> predict_to_file(clf, image, out, chunks=32, workers=1)  # doctest: +ELLIPSIS
    PosixPath('.../labels.zarr')
    >>> bool((zarr.open_array(str(out))[:] == clf.predict(image)).all())
    True
    """
    kind = resolve_kind(kind, probabilities)
    if kind == "instances":
        instances = InstanceOptions.of(instances)
    with open_scheduler(scheduler, workers, timeout=timeout) as sched:
        return predict_to_file_on(clf, image, output, sched=sched, chunks=chunks,
                                  kind=kind, foreground=foreground, overwrite=overwrite,
                                  progress=progress, format=format, instances=instances)


def predict_to_file_on(clf, image, output, *, sched, chunks=None, probabilities=False,
                       overwrite=False, progress=None, format=None, kind=None,
                       foreground=None, instances=None):
    """:func:`predict_to_file` on an open :class:`Scheduler` (shared by a batch)."""
    from tqdm.auto import tqdm

    pipeline = pipeline_of(clf)
    kind = resolve_kind(kind, probabilities)
    foreground = resolve_foreground(pipeline.classes, foreground)
    given = Path(output)
    output = Path(os.path.abspath(output))  # workers elsewhere may have another cwd
    fmt = output_format(output, format)
    if fmt == "png":
        check_png(output, kind, pipeline.ndim)
    if fmt == "ome-zarr":
        check_ome_zarr(output, kind)
    if isinstance(image, (str, os.PathLike)):
        check_not_input(output, [image])
    if kind == "instances":
        return _instances_to_file(clf, pipeline, image, output, given, sched=sched,
                                  chunks=chunks, fmt=fmt, overwrite=overwrite,
                                  progress=progress, foreground=foreground,
                                  options=InstanceOptions.of(instances))
    attrs = output_metadata(pipeline.classes, kind, foreground)
    with atomic_output(output, overwrite=overwrite) as tmp:
        # the session ends (every local block finished) before the temporary
        # output is renamed, or removed after an error, Ctrl-C or a signal
        with sched.session() as session:
            image_cl, chunks, stats = prepare(pipeline, image, chunks, session,
                                              channel_axis=clf.channel_axis)
            result = lazy_prediction(pipeline, image_cl, chunks, stats, kind, foreground)
            n_blocks = math.prod(len(c) for c in chunks)
            with tqdm(total=n_blocks, unit="block", desc=output.name, file=sys.stderr,
                      disable=not auto_progress(progress), leave=False) as bar:
                if fmt == "zarr":
                    write_zarr(result, tmp, session, bar, attrs)
                elif fmt == "ome-zarr":
                    write_ome_zarr(result, tmp, session, bar, attrs)
                elif fmt == "png":
                    write_png(result, tmp, session, bar, attrs)
                else:
                    write_tiff(result, tmp, session, bar, len(chunks), attrs)
    return given


def _instances_to_file(clf, pipeline, image, output, given, *, sched, chunks, fmt, overwrite,
                       progress, foreground, options):
    """:func:`predict_to_file_on` of instances: passes in a scratch folder beside the
    temporary output (named like it, so a batch removes both after a kill)."""
    import shutil

    from tqdm.auto import tqdm

    with atomic_output(output, overwrite=overwrite) as tmp:
        work = tmp.with_name(tmp.name + ".work")
        try:
            work.mkdir()
            with sched.session() as session, \
                    tqdm(total=None, unit="block", desc=output.name, file=sys.stderr,
                         disable=not auto_progress(progress), leave=False) as bar:
                facts = instances_to_store(pipeline, image, work, session, chunks=chunks,
                                           options=options, foreground=foreground,
                                           channel_axis=clf.channel_axis, bar=bar)
                result = lazy_instances(facts)
                attrs = instance_metadata(pipeline.classes, foreground, facts)
                if fmt == "zarr":
                    write_zarr(result, tmp, session, bar, attrs)
                elif fmt == "ome-zarr":
                    write_ome_zarr(result, tmp, session, bar, attrs, spacing=facts["spacing"])
                elif fmt == "png":
                    write_png(result, tmp, session, bar, attrs)
                else:
                    write_tiff(result, tmp, session, bar, len(facts["shape"]), attrs)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return given
