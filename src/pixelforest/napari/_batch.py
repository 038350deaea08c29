"""Apply a model to a folder of images, file by file, with progress and a way to stop.

The widget's *Apply to folder...* runs :func:`run_batch` on a background
thread.  It is :func:`pixelforest.scale.batch.predict_files` called once
per input, so that the widget can show progress after every file, with
the widget's cancel event passed down: a cancel stops the file being
predicted at its next block (its unfinished output is removed) and the
batch before the next file.  Each call keeps
``predict_files``' guarantees: outputs are written atomically (a file that
exists is complete), finished outputs are skipped (a stopped batch is
resumed by running it again), and a failing input is reported while the
others go on.  No Qt here.
"""

from __future__ import annotations

import os
from pathlib import Path

from pixelforest.errors import Cancelled, InvalidParameterError, NotFittedError

__all__ = ["run_batch"]


def _merge(total, part):
    for name in ("written", "skipped", "failed", "tracebacks", "removed"):
        getattr(total, name).extend(getattr(part, name))


def _check_output(output, paths):
    """Refuse an output that is not a folder, or is a folder holding inputs."""
    from pixelforest.scale.writers import IMAGE_EXTENSIONS

    output = Path(output)
    if output.suffix.lower() in IMAGE_EXTENSIONS or (output.exists() and not output.is_dir()):
        raise InvalidParameterError(
            f"the output {output} is not a folder; apply to folder writes one file per "
            "input into a folder (it is created if needed).")
    folder = os.path.realpath(output)
    for path in paths:
        if os.path.realpath(Path(path).parent) == folder:
            raise InvalidParameterError(
                f"the output folder {output} holds the input {path}; choose another "
                "folder for the predictions (e.g. a 'predictions' subfolder).")
    return output


def run_batch(model, inputs, output, *, kind=None, workers=None, progress=None,
              cancel=None):
    """Predict every image of ``inputs`` into the folder ``output``, one file at a time.

    Parameters
    ----------
    model : PixelClassifier
        A fitted classifier.
    inputs : str, Path or sequence of them
        Image files, folders or glob patterns (see
        :func:`pixelforest.scale.batch.expand_inputs`).
    output : str or Path
        The folder receiving ``<input name>.tif`` (or ``.zarr``) per input;
        created if needed; it may not be a folder of the inputs.
    kind : {'labels', 'mask', 'probabilities'} or None, optional
        What each output holds (see :func:`~pixelforest.scale.batch.predict_files`).
    workers : int or None, optional
        Local threads for each file's blocks (the one thread budget).
    progress : callable, optional
        ``progress(n_done, n_total, report)`` after each input (written,
        skipped or failed), and once with ``n_done = 0`` before the first.
    cancel : threading.Event, optional
        Set it (from any thread) to stop the batch with
        :class:`~pixelforest.errors.Cancelled`: the input being predicted
        stops at its next block and leaves no output (outputs are atomic),
        so every output present is complete.

    Returns
    -------
    report : BatchReport
        What was written, skipped (already done) and failed.

    Raises
    ------
    NotFittedError
        ``model`` is not fitted.
    InvalidParameterError
        ``output`` is a file, or a folder of the inputs.
    Cancelled
        ``cancel`` was set; ``exc.report`` is the report of the inputs
        finished before.
    """
    from pixelforest.scale import batch
    from pixelforest.scale.batch import BatchReport, expand_inputs

    if not hasattr(model, "pipeline_"):
        raise NotFittedError("no trained model yet; paint two classes (or load a model) first.")
    paths, missing = expand_inputs(inputs)
    output = _check_output(output, paths)
    items = list(missing) + list(paths)
    report = BatchReport()
    claimed = {}   # output path -> the input that wrote it in this run
    if progress is not None:
        progress(0, len(items), report)
    for n, item in enumerate(items, 1):
        stopped = cancel is not None and cancel.is_set()
        if not stopped:
            try:
                part = batch.predict_files(model, [item], output, kind=kind, workers=workers,
                                           progress=False, cancel=cancel)
            except Cancelled as exc:
                _merge(report, exc.report)
                stopped = True
        if stopped:
            exc = Cancelled(f"apply to folder was cancelled after {n - 1} of {len(items)} "
                            "inputs; the outputs written are complete (run again to resume).")
            exc.report = report
            raise exc
        for inp, out in part.written:
            claimed[os.path.abspath(out)] = inp
        for inp, out in list(part.skipped):
            first = claimed.get(os.path.abspath(out))
            if first is not None:  # two inputs of one name: the second is not 'done'
                part.skipped.remove((inp, out))
                part.failed.append((str(inp), (
                    f"OutputExistsError: {first} is also written to {out}; rename one of "
                    "the inputs or predict them into separate folders.")))
        _merge(report, part)
        if progress is not None:
            progress(n, len(items), report)
    return report
