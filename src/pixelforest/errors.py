"""Exceptions and warnings raised by pixelforest.

Every error pixelforest raises on purpose derives from
:class:`PixelforestError`, and also from the matching built-in exception
(``ValueError``, ``OSError``, ...), so callers may catch either.  Messages
name the problem *and* the fix; the command-line interface prints them as a
single line.
"""

__all__ = [
    "PixelforestError",
    "InvalidImageError",
    "ShapeMismatchError",
    "ChannelMismatchError",
    "InvalidLabelsError",
    "InvalidParameterError",
    "ImageFileNotFoundError",
    "CorruptFileError",
    "UnsupportedFormatError",
    "OutputExistsError",
    "ModelFileError",
    "UntrustedModelError",
    "IncompatibleModelError",
    "DataUnavailableError",
    "NotFittedError",
    "ExerciseCheckError",
    "ConstantImageWarning",
    "ModelVersionWarning",
    "ClusterTimeoutError",
    "Interrupted",
    "MissingChunksWarning",
    "SuspiciousPredictionWarning",
    "LargeObjectsWarning",
    "Cancelled",
    "MissingDependencyError",
    "MultipleScenesWarning",
]


class PixelforestError(Exception):
    """Base class of every error raised on purpose by pixelforest."""


class InvalidImageError(PixelforestError, ValueError):
    """An array cannot be used as an image (shape, dtype, empty, NaN...)."""


class ShapeMismatchError(InvalidImageError):
    """Two arrays that must have the same shape do not."""


class ChannelMismatchError(InvalidImageError):
    """An image has a different number of channels than the model expects."""


class InvalidLabelsError(InvalidImageError):
    """A label image cannot be used for training or evaluation."""


class InvalidParameterError(PixelforestError, ValueError):
    """An option has a value outside its valid range (e.g. percentiles, thresholds)."""


class ImageFileNotFoundError(PixelforestError, FileNotFoundError):
    """An input file does not exist."""


class CorruptFileError(PixelforestError, OSError):
    """A file exists but cannot be decoded (truncated, corrupt, foreign)."""


class UnsupportedFormatError(PixelforestError, ValueError):
    """A file extension or format pixelforest cannot read or write."""


class OutputExistsError(PixelforestError, FileExistsError):
    """Writing would overwrite a file that must be kept (e.g. the input)."""


class ModelFileError(PixelforestError, ValueError):
    """A model file is missing, truncated, foreign or otherwise unusable."""


class UntrustedModelError(ModelFileError):
    """A model file holds types that are not trusted; nothing was executed."""


class IncompatibleModelError(ModelFileError):
    """A model file was written by an incompatible pixelforest version."""


class DataUnavailableError(PixelforestError, RuntimeError):
    """Sample data is neither present locally nor downloadable."""


class NotFittedError(PixelforestError, AttributeError):
    """An estimator is used before ``fit`` was called."""


class ExerciseCheckError(PixelforestError, AssertionError):
    """A learner's answer to a lesson exercise failed a check (:mod:`pixelforest.lesson.checkers`).

    The message says which case failed and gives a hint to fix the answer.
    """


class ConstantImageWarning(UserWarning):
    """An image has a single value, so normalization cannot stretch it."""


class ModelVersionWarning(UserWarning):
    """A model file was written by a newer pixelforest or scikit-learn than the one installed."""


class ClusterTimeoutError(PixelforestError, TimeoutError):
    """A dask.distributed cluster has no workers, or made no progress within the timeout.

    Raised instead of waiting forever when a scheduler has no workers, or its
    workers all died mid-run; the unfinished output is removed first.
    """


class Interrupted(KeyboardInterrupt):
    """Work stopped by Ctrl-C, SIGTERM or SIGHUP, handled like Ctrl-C.

    A :class:`KeyboardInterrupt` (not a :class:`PixelforestError`, which is an
    ``Exception``), so that ``except Exception`` never swallows it and every
    clean-up that Ctrl-C runs also runs for a signal.

    Attributes
    ----------
    signum : int
        The signal (``signal.SIGINT`` for Ctrl-C).
    report : BatchReport or None
        For a batch (:func:`pixelforest.scale.batch.predict_files`), what was
        finished before it stopped.
    """

    def __init__(self, signum=2, report=None):
        super().__init__(signum)
        self.signum = int(signum)
        self.report = report


class MissingChunksWarning(UserWarning):
    """A Zarr array lacks some chunks, which read as the fill value.

    Legal Zarr, but usually data lost in a copy or an interrupted write.
    """


class SuspiciousPredictionWarning(UserWarning):
    """A prediction given to ``evaluate`` may not mean what nonzero = foreground assumes.

    For example an intensity image, or pixelforest labels (1 = background,
    2 = foreground) in a file without pixelforest metadata.
    """


class ConstantRegionWarning(UserWarning):
    """A large share of an image's pixels hold one extreme value (a border, missing data,
    saturation): normalization statistics leave them out, but say so."""


class LargeObjectsWarning(UserWarning):
    """Tiled instance segmentation met foreground components larger than the blocks'
    overlap: they are cut at block edges (pass a larger overlap to keep them whole)."""


class Cancelled(PixelforestError, RuntimeError):
    """Work was stopped on request (a ``cancelled()`` callback said so); nothing was changed."""


class MissingDependencyError(PixelforestError, ImportError):
    """An optional package is needed and not installed (the message names the pip command)."""


class MultipleScenesWarning(UserWarning):
    """A microscope file holds several scenes (series, positions); the first one was read."""
