"""Resumable prediction over many images: one output per input, atomically.

:func:`predict_files` expands its inputs (files, folders, glob patterns),
predicts each image out of core with :func:`pixelforest.scale.tiled.predict_to_file`
and writes one output per input.  Every output appears atomically (a
temporary file renamed into place), so an output that exists is complete:
a re-run skips it (unless ``overwrite``) and carries on where the last run
stopped.  An input that fails (missing, corrupt, wrong channels...) is
reported and the others continue; the returned :class:`BatchReport` says
what was written, skipped and failed.

Ctrl-C, SIGTERM and SIGHUP (in the main thread; see
:mod:`pixelforest._shared.signals`) stop the batch the same way: the
finished outputs stay, the unfinished one is removed, and
:class:`~pixelforest.errors.Interrupted` carries the report of what was
finished.  A batch starts by removing the temporaries that killed runs
left in its output folder (:func:`~pixelforest._shared.atomic.remove_stale_temporaries`).
"""

import concurrent.futures
import dataclasses
import glob
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

from pixelforest.errors import (
    Cancelled,
    ClusterTimeoutError,
    ImageFileNotFoundError,
    Interrupted,
    InvalidParameterError,
    OutputExistsError,
    UnsupportedFormatError,
)

__all__ = ["BatchReport", "expand_inputs", "predict_files"]

#: Output extension per format.
_EXTENSIONS = {"tif": ".tif", "zarr": ".zarr", "ome-zarr": ".ome.zarr", "png": ".png"}


@dataclasses.dataclass
class BatchReport:
    """What a batch did: outputs written, skipped, and inputs that failed.

    Attributes
    ----------
    written : list of (Path, Path)
        ``(input, output)`` pairs predicted in this run.
    skipped : list of (Path, Path)
        ``(input, output)`` pairs whose output already existed.
    failed : list of (str, str)
        ``(input, reason)`` for every input that could not be predicted.
    tracebacks : list of (str, str)
        ``(input, formatted traceback)`` of each failure that raised
        (CLI ``--debug`` prints them).
    removed : list of Path
        Stale temporaries of earlier killed runs removed from the output
        folder.
    """

    written: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    failed: list = dataclasses.field(default_factory=list)
    tracebacks: list = dataclasses.field(default_factory=list)
    removed: list = dataclasses.field(default_factory=list)

    @property
    def ok(self):
        """True when no input failed."""
        return not self.failed

    @property
    def exit_code(self):
        """0 when every input was written or skipped, 1 when any failed."""
        return 0 if self.ok else 1

    def summary(self):
        """A few lines for people: counts, then one line per failure.

        Examples
        --------
        >>> from pathlib import Path
        >>> report = BatchReport(written=[(Path("a.tif"), Path("out/a.tif"))],
        ...                      failed=[("b.tif", "CorruptFileError: b.tif is truncated")])
        >>> print(report.summary())
        2 inputs: 1 written, 0 skipped (already done), 1 failed
          failed: b.tif: CorruptFileError: b.tif is truncated
        """
        n = len(self.written) + len(self.skipped) + len(self.failed)
        lines = [f"{n} input{'s' * (n != 1)}: {len(self.written)} written, "
                 f"{len(self.skipped)} skipped (already done), {len(self.failed)} failed"]
        lines += [f"  failed: {inp}: {reason}" for inp, reason in self.failed]
        if self.removed:
            lines.append(f"  removed {len(self.removed)} stale temporary "
                         f"file{'s' * (len(self.removed) != 1)} of an earlier interrupted run")
        if self.skipped:
            lines.append("  (pass overwrite=True, CLI --overwrite, to predict skipped "
                         "inputs again)")
        return "\n".join(lines)

    def __str__(self):
        return self.summary()


def _is_image(path):
    from pixelforest.io.images import READ_EXTENSIONS

    return (not path.name.startswith(".")
            and path.suffix.lower() in READ_EXTENSIONS
            and (path.is_file() or path.suffix.lower() == ".zarr"))


def expand_inputs(inputs):
    """Expand paths, folders and glob patterns into image paths.

    Parameters
    ----------
    inputs : str, Path or sequence of them
        Image files or ``.zarr`` stores, folders (their images, not
        recursive), or glob patterns (``**`` recurses).

    Returns
    -------
    paths : list of Path
        Images in the given order (sorted within a folder or pattern),
        without duplicates.  Hidden files (such as unfinished temporary
        outputs) are ignored.
    missing : list of str
        Inputs that matched nothing.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("b.tif", "a.tif", "notes.txt", ".a.tmp.tif"):
    ...     _ = (d / name).write_bytes(b"")
    >>> paths, missing = expand_inputs([d, d / "nothing-*.png"])
    >>> [p.name for p in paths], len(missing)
    (['a.tif', 'b.tif'], 1)
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    paths, missing, seen = [], [], set()
    for item in inputs:
        path = Path(item)
        if path.is_dir() and path.suffix.lower() != ".zarr":
            found = sorted(p for p in path.iterdir() if _is_image(p))
        elif path.exists():
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(str(item), recursive=True)
                           if _is_image(Path(p)))
        if not found:
            missing.append(str(item))
        for p in found:
            key = os.path.abspath(p)
            if key not in seen:
                seen.add(key)
                paths.append(p)
    return paths, missing


def _stem(path):
    """File name without image extensions (``a.ome.zarr`` -> ``a``)."""
    name = path.name
    for ext in (".zarr", ".tiff", ".tif", ".png", ".jpeg", ".jpg"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    if name.lower().endswith(".ome"):
        name = name[:-4]
    return name


def _plan(paths, output, format):
    """Return ``[(input, output path)]`` and the output format."""
    from pixelforest.scale.writers import IMAGE_EXTENSIONS, output_format

    output = Path(output)
    single_file = output.suffix.lower() in IMAGE_EXTENSIONS
    if single_file and len(paths) == 1:
        fmt = output_format(output, format)
        return [(paths[0], output)], fmt
    if single_file and len(paths) > 1:
        raise InvalidParameterError(
            f"{len(paths)} inputs cannot all be written to the single file {output}; "
            "pass a folder as the output (it is created if needed)."
        )
    if output.exists() and not output.is_dir():
        raise UnsupportedFormatError(
            f"the output {output} is a file of unknown type; pass a folder, or a "
            "*.tif / *.zarr / *.png file for a single input."
        )
    fmt = "tif" if format is None else output_format(output, format)
    return [(p, output / (_stem(p) + _EXTENSIONS[fmt])) for p in paths], fmt


def _check_not_inputs(plan, paths):
    """Refuse a plan that would write over one of its inputs."""
    inputs = {os.path.realpath(p): p for p in paths}
    for _, out in plan:
        inp = inputs.get(os.path.realpath(out))
        if inp is not None:
            raise OutputExistsError(
                f"refusing to write over the input {inp}: it is also the output; choose "
                "another output file or folder (e.g. -o predictions/)."
            )


def _reason(exc):
    message = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def predict_files(model, inputs, output, *, probabilities=False, chunks=None, workers=None,
                  scheduler=None, overwrite=False, format=None, progress=None, kind=None,
                  foreground=None, timeout=None, instances=None, cancel=None,
                  on_file=None):
    """Predict many images, one output each; resumable and failure tolerant.

    Parameters
    ----------
    model : PixelClassifier, str or Path
        A fitted classifier, or a ``.skops`` model file
        (:func:`pixelforest.io.model_file.load_model`).
    inputs : str, Path or sequence of them
        Image files, ``.zarr`` stores, folders or glob patterns (see
        :func:`expand_inputs`).  Images must follow the model's channel
        convention (``channel_axis`` given at training).
    output : str or Path
        For a single input, a ``*.tif``, ``*.zarr`` or ``*.png`` file;
        otherwise (or for any input given as a folder name) a folder that
        receives ``<input name>.tif`` (or ``.zarr``) per input.  An output
        may not be one of the inputs.
    probabilities : bool, optional
        Write class probabilities (float32, classes last) instead of labels
        (the same as ``kind="probabilities"``).
    chunks, workers, scheduler
        As for :func:`pixelforest.scale.tiled.predict_tiled`: block side, local
        threads, or a ``dask.distributed`` scheduler address or Client
        (connected once for the whole batch).
    overwrite : bool, optional
        Predict inputs whose output exists again; by default they are
        skipped, which makes an interrupted batch resumable.
    format : {'tif', 'zarr', 'ome-zarr'} or None, optional
        Output format in a folder (default ``tif``: tiled BigTIFF;
        ``ome-zarr``: ``<name>.ome.zarr`` label images with OME-NGFF metadata).
    progress : bool or None, optional
        Progress bars on stderr; None shows them only on a terminal
        outside CI.
    kind : {'labels', 'mask', 'probabilities', 'instances'} or None, optional
        What each output holds (default labels; a mask is uint8, 255 where
        the class is ``foreground``; instances are uint32 object labels);
        see :mod:`pixelforest.scale.outputs`.
    foreground : number, optional
        The class of a mask or of the instances (default: the largest class
        value).
    timeout : float, optional
        Seconds a distributed cluster may go without a worker or without
        progress (default :data:`~pixelforest.scale.scheduler.DEFAULT_TIMEOUT`);
        then :class:`~pixelforest.errors.ClusterTimeoutError` stops the batch.
    instances : InstanceOptions or dict, optional
        With ``kind="instances"``: the options of
        :class:`~pixelforest.scale.instances.InstanceOptions` (overlap,
        spacing, guide, ...), the same for every image.
    cancel : threading.Event, optional
        Set it (from any thread) to stop the batch at the next block, as
        Ctrl-C does: the outputs being written are removed (they are
        atomic), the finished ones are kept, and :class:`Cancelled` is
        raised.  For a GUI's *Cancel* button.
    on_file : callable, optional
        ``on_file(n_done, n_total)`` after each input finishes (written or
        failed; inputs skipped because their output exists count as done
        before the first call), from the thread that runs the batch; for a
        progress bar.

    Returns
    -------
    report : BatchReport
        ``report.written``, ``report.skipped``, ``report.failed``,
        ``report.summary()`` and ``report.exit_code``.

    Raises
    ------
    ModelFileError
        The model file cannot be loaded (nothing is predicted).
    InvalidParameterError
        Several inputs but a single output file, or bad ``chunks``,
        ``workers``, ``kind``, ``foreground``, ``timeout`` or scheduler.
    OutputExistsError
        An output would be one of the inputs (nothing is predicted).
    ClusterTimeoutError
        The cluster has no workers or stalled (the batch stops: the
        other inputs would wait as long).
    Interrupted
        Ctrl-C, SIGTERM or SIGHUP; ``exc.report`` says what was finished
        and ``exc.signum`` which signal.
    Cancelled
        ``cancel`` was set; ``exc.report`` says what was finished.

    Notes
    -----
    Inputs that fail (missing, unreadable, corrupt, wrong number of
    channels, a failure in one block...) are listed in ``report.failed``
    and leave no output; ``KeyboardInterrupt`` (or SIGTERM, SIGHUP when
    called in the main thread) stops the batch at once, keeping the
    outputs already finished and removing the unfinished one.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from pixelforest.classify.classifier import PixelClassifier
    >>> from pixelforest.features import FeatureSpec
    >>> from pixelforest.io.images import imwrite
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(size=(40, 40)).astype(np.float32)
    >>> image[10:30, 10:30] += 3
    >>> scribbles = np.zeros(image.shape, np.uint8)
    >>> scribbles[1:3, 1:39], scribbles[19:21, 12:28] = 1, 2
    >>> clf = PixelClassifier(FeatureSpec(sigmas=(1.0,))).fit(image, scribbles)
    >>> for name in ("a.tif", "b.tif"):
    ...     imwrite(d / "in" / name, image)
    >>> print(predict_files(clf, d / "in", d / "out", workers=1).summary())
    2 inputs: 2 written, 0 skipped (already done), 0 failed
    >>> print(predict_files(clf, d / "in", d / "out", workers=1).summary())
    2 inputs: 0 written, 2 skipped (already done), 0 failed
      (pass overwrite=True, CLI --overwrite, to predict skipped inputs again)
    """
    from pixelforest._shared.signals import signals_as_interrupt
    from pixelforest.classify.pipeline import pipeline_of
    from pixelforest.scale.outputs import resolve_foreground, resolve_kind
    from pixelforest.scale.scheduler import DEFAULT_TIMEOUT, check_timeout, check_workers

    check_workers(workers)
    timeout = check_timeout(DEFAULT_TIMEOUT if timeout is None else timeout)
    kind = resolve_kind(kind, probabilities)
    if kind == "instances":
        from pixelforest.scale.instances import InstanceOptions

        instances = InstanceOptions.of(instances)
    if isinstance(model, (str, os.PathLike)):
        from pixelforest.io.model_file import load_model

        model = load_model(model)
    foreground = resolve_foreground(pipeline_of(model).classes, foreground)
    report = BatchReport()
    with signals_as_interrupt():
        try:
            _predict_files(model, inputs, output, report, kind=kind, foreground=foreground,
                           chunks=chunks, workers=workers, scheduler=scheduler,
                           overwrite=overwrite, format=format, progress=progress,
                           timeout=timeout, instances=instances, cancel=cancel,
                           on_file=on_file)
        except KeyboardInterrupt as exc:
            if cancel is not None and cancel.is_set() and getattr(exc, "signum", None) is None:
                stopped = Cancelled(
                    f"the batch was cancelled: {len(report.written)} output(s) written, "
                    f"{len(report.skipped)} already there; the outputs present are "
                    "complete (run the same command again to resume).")
                stopped.report = report
                raise stopped from None
            signum = getattr(exc, "signum", signal.SIGINT)
            raise Interrupted(signum, report) from exc
    return report


def _predict_files(model, inputs, output, report, *, kind, foreground, chunks, workers,
                   scheduler, overwrite, format, progress, timeout, instances=None,
                   cancel=None, on_file=None):
    """The body of :func:`predict_files`, filling ``report`` as outputs finish."""
    from tqdm.auto import tqdm

    from pixelforest._shared.atomic import remove_stale_temporaries
    from pixelforest.scale.scheduler import open_scheduler
    from pixelforest.scale.writers import auto_progress

    paths, missing = expand_inputs(inputs)
    for item in missing:
        report.failed.append((item, _reason(ImageFileNotFoundError(
            f"{item} matches no image file; check the path or pattern "
            "(images are .tif, .tiff, .zarr, .png, .jpg)."))))
    if not paths:
        return
    plan, fmt = _plan(paths, output, format)
    _check_not_inputs(plan, paths)
    for folder in sorted({os.path.abspath(out.parent) for _, out in plan}):
        report.removed += remove_stale_temporaries(folder)
    todo, seen_outputs = [], {}
    for inp, out in plan:
        key = os.path.abspath(out)
        if key in seen_outputs:
            report.failed.append((str(inp), (
                f"OutputExistsError: {seen_outputs[key]} is also written to {out}; "
                "rename one of the inputs or predict them into separate folders.")))
        elif out.exists() and not overwrite:
            seen_outputs[key] = inp
            report.skipped.append((inp, out))
        else:
            seen_outputs[key] = inp
            todo.append((inp, out))
    if not todo:
        return
    show = auto_progress(progress)
    options = dict(chunks=chunks, kind=kind, foreground=foreground, overwrite=overwrite,
                   format=fmt, instances=instances)
    order = {inp: i for i, (inp, _) in enumerate(plan)}
    done = []  # (input, output, error or None, traceback or None), as files finish
    n_before = len(plan) - len(todo)   # already there (skipped) or refused above

    def finished(entry):
        done.append(entry)
        if on_file is not None:
            on_file(n_before + len(done), len(plan))

    try:
        with open_scheduler(scheduler, workers, timeout=timeout) as sched:
            if cancel is not None:
                sched.cancel = cancel
            n_files = min(len(todo), max(1, sched.n_workers if sched.pool is not None
                                         else _cluster_threads(sched)))
            with tqdm(total=len(todo), unit="image", desc="predict", file=sys.stderr,
                      disable=not show or len(todo) < 2) as bar:
                _run_files(model, todo, sched, n_files, options, bar, finished,
                           block_progress=show and n_files == 1)
    finally:  # also on an interruption: the report says what was finished
        for inp, out, exc, text in sorted(done, key=lambda d: order[d[0]]):
            if exc is None:
                report.written.append((inp, out))
            else:
                report.failed.append((str(inp), _reason(exc)))
                report.tracebacks.append((str(inp), text))


def _cluster_threads(sched):
    """Files predicted at once on a cluster: one per worker thread, at most 8."""
    if not sched.is_distributed:
        return 1
    try:
        return min(8, sum(sched.client.nthreads().values()))
    except Exception:  # pragma: no cover - scheduler went away
        return 1


def _run_files(model, todo, sched, n_files, options, bar, finished, *, block_progress):
    """Predict ``todo`` with ``n_files`` files in flight, calling ``finished(entry)``
    with ``(input, output, error, traceback)`` as each finishes."""
    from pixelforest.scale.tiled import predict_to_file_on

    def one(inp, out):
        try:
            predict_to_file_on(model, inp, out, sched=sched, progress=block_progress, **options)
        except ClusterTimeoutError:  # the cluster's fault: every other input would wait too
            raise
        except Exception as exc:  # reported, and the batch goes on
            return inp, out, exc, "".join(traceback.format_exception(exc))
        return inp, out, None, None

    if n_files <= 1:
        for inp, out in todo:
            sched.check_cancel()
            finished(one(inp, out))
            bar.update(1)
        return
    # several files at once (threads); their blocks share the scheduler's workers,
    # so memory stays that of `workers` blocks.  Ctrl-C cancels them all.
    if sched.cancel is None:
        sched.cancel = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(n_files, thread_name_prefix="pf-file") as pool:
        futures = [pool.submit(one, inp, out) for inp, out in todo]
        reported = set()
        try:
            for future in concurrent.futures.as_completed(futures):
                finished(future.result())
                reported.add(future)
                bar.update(1)
        except BaseException:
            sched.cancel.set()
            for future in futures:
                future.cancel()
            _wait_uninterrupted(futures)
            for future in futures:  # files that finished while the others stopped
                if (future not in reported and not future.cancelled()
                        and future.exception() is None and future.result()[2] is None):
                    finished(future.result())
            raise


def _wait_uninterrupted(futures):
    """Wait for the files still running (a second Ctrl-C must not leave them writing)."""
    while True:
        try:
            concurrent.futures.wait(futures)
            return
        except KeyboardInterrupt:
            continue
