"""Safe model files: save and load a :class:`~pixelforest.classify.classifier.PixelClassifier`.

A model is one ``.skops`` file (a zip archive written by :mod:`skops.io`).
Loading never executes code from the file: pickles are refused outright,
the archive's header and schema are checked before anything is built, and
every type the file holds must be on an explicit list of trusted types
(:data:`TRUSTED_TYPES`, plus the scikit-learn and NumPy types that skops
trusts by default).

Trusted types are not enough: a crafted file can hold trusted trees whose
arrays point outside themselves, and compiled code indexes them without
bounds checks.  So, before skops reads anything, the archive's declared
sizes are checked against limits (:data:`MAX_BYTES`,
:data:`MAX_SCHEMA_BYTES`, :data:`MAX_RATIO`, and each ``.npy`` member's
header against its size), which refuses a zip bomb without expanding it;
and after loading, every tree of the estimator is proven well formed
(:func:`pixelforest.forest.validation.check_forest`) before anything uses
it.  A file written by a newer pixelforest or scikit-learn than the one
installed warns (:class:`~pixelforest.errors.ModelVersionWarning`).

Besides the fitted estimator, the file records what is needed to use and
judge the model: the feature spec, normalization, channel axis, classes,
number of channels, the versions of pixelforest, scikit-learn, skops and
NumPy that wrote it, and the creation time (UTC, ISO 8601).
"""

from __future__ import annotations

import datetime
import json
import math
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np

from pixelforest._shared.atomic import atomic_output
from pixelforest.errors import (
    IncompatibleModelError,
    InvalidParameterError,
    ModelFileError,
    ModelVersionWarning,
    UntrustedModelError,
)

__all__ = ["FORMAT", "FORMAT_VERSION", "MAX_BYTES", "MAX_RATIO", "MAX_SCHEMA_BYTES",
           "TRUSTED_TYPES", "load_model", "model_info", "save_model"]

#: Value of the ``format`` entry of every pixelforest model file.
FORMAT = "pixelforest-model"

#: Version of the file layout this library writes and the newest it reads.
FORMAT_VERSION = 1

#: Types, beyond skops' defaults (builtins, NumPy, scikit-learn estimators),
#: that a model file may hold: the fitted internals of scikit-learn classifiers
#: whose arrays are proven well formed before use (trees, by
#: :func:`pixelforest.forest.validation.check_forest`) or only reach NumPy
#: (the optimizers of neural networks).  Histogram gradient boosting's
#: ``TreePredictor`` and the neighbours' ``KDTree`` / ``BallTree`` hold index
#: arrays that compiled code follows unchecked, so they are not trusted:
#: such a model loads only with ``trusted=[...]`` naming them.
TRUSTED_TYPES = (
    "sklearn.tree._tree.Tree",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
)

#: Default limit of the total uncompressed size of a model file's members
#: (``max_bytes`` of :func:`load_model`): loading needs about this much memory.
MAX_BYTES = 2 * 1024**3

#: Limit of the uncompressed size of a model file's ``schema.json``.
MAX_SCHEMA_BYTES = 64 * 1024**2

#: Largest compression ratio accepted for a member that expands to more than
#: :data:`RATIO_MIN_BYTES`; real model arrays are far less compressible.
MAX_RATIO = 500

#: Members smaller than this (uncompressed) are not held to :data:`MAX_RATIO`.
RATIO_MIN_BYTES = 16 * 1024**2

#: Packages whose newer (major.minor) version in a file warns.
_VERSION_CHECKED = ("pixelforest", "scikit-learn")

_ZIP_MAGIC = b"PK\x03\x04"


def _versions():
    import sklearn
    import skops

    from pixelforest import __version__

    return {"pixelforest": __version__, "scikit-learn": sklearn.__version__,
            "skops": skops.__version__, "numpy": np.__version__}


def save_model(clf, path):
    """Write a fitted :class:`PixelClassifier` to one ``.skops`` file, atomically.

    Parameters
    ----------
    clf : PixelClassifier
        A fitted classifier.
    path : str or Path
        Destination; conventionally ends in ``.skops``.

    Raises
    ------
    NotFittedError
        ``clf`` was not fitted.
    InvalidParameterError
        ``clf`` is not a PixelClassifier.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from pixelforest.classify.classifier import PixelClassifier, default_estimator
    >>> from pixelforest.features import FeatureSpec
    >>> image = np.zeros((32, 32), np.float32); image[8:24, 8:24] = 1
    >>> labels = np.zeros(image.shape, np.uint8); labels[2, :] = 1; labels[16, 12:20] = 2
    >>> clf = PixelClassifier(FeatureSpec(sigmas=(1,)),
    ...                       estimator=default_estimator(n_estimators=3)).fit(image, labels)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.skops"
    >>> save_model(clf, path)
    >>> again = load_model(path)
    >>> bool(np.array_equal(again.predict_proba(image), clf.predict_proba(image)))
    True
    """
    import skops.io as sio

    from pixelforest.classify.classifier import PixelClassifier
    from pixelforest.classify.pipeline import pipeline_of

    if not isinstance(clf, PixelClassifier):
        raise InvalidParameterError(
            f"save_model saves a PixelClassifier, got {type(clf).__name__}; wrap your "
            "estimator in PixelClassifier(estimator=...) and fit it."
        )
    pipeline_of(clf)  # refuses an unfitted classifier
    random_state = clf.random_state
    if not (random_state is None or isinstance(random_state, (int, np.integer))):
        random_state = None  # a RandomState instance: the seed is not recoverable
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": _versions(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "params": {
            "features": clf.spec_.to_dict(),
            "channel_axis": clf.channel_axis,
            "normalize": clf.normalize,
            "random_state": None if random_state is None else int(random_state),
            "split_placement": getattr(clf, "split_placement", "valley"),
            "n_jobs": getattr(clf, "n_jobs", None),
        },
        "fitted": {
            "classes": np.asarray(clf.classes_),
            "n_channels": int(clf.n_channels_),
            "ndim": int(clf.ndim_),
            "n_features_in": int(clf.n_features_in_),
            "feature_names": list(clf.feature_names_),
            "halo": list(clf.halo_),
        },
        "estimator": clf.estimator_,
    }
    with atomic_output(path) as tmp:
        sio.dump(payload, tmp, compression=zipfile.ZIP_DEFLATED)


def _json_value(node):
    """Value of a skops JSON node (str/int/float/bool/None), or None."""
    if isinstance(node, dict) and node.get("is_json"):
        try:
            return json.loads(node["content"])
        except (TypeError, ValueError):
            return None
    return None


def _refuse_archive(path, problem):
    raise ModelFileError(
        f"{path} is refused: {problem}; the file is damaged or was crafted (a zip bomb?): "
        "do not use it, retrain or ask for a fresh copy."
    )


def _check_npy_header(zf, info, path):
    """Check that an ``.npy`` member's declared shape and dtype fill exactly its size."""
    fmt = np.lib.format
    with zf.open(info) as fh:
        try:
            version = fmt.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = fmt.read_array_header_2_0(fh)
            else:  # (3, 0): utf-8 field names, no public reader
                shape, _, dtype = fmt._read_array_header(fh, version)
        except (ValueError, TypeError, SyntaxError, OSError, EOFError, AttributeError) as exc:
            _refuse_archive(path, f"member {info.filename} has no valid .npy header ({exc})")
        header = fh.tell()
    if dtype.hasobject:
        _refuse_archive(path, f"member {info.filename} holds Python objects")
    expected = header + math.prod(int(d) for d in shape) * dtype.itemsize
    if expected != info.file_size:
        _refuse_archive(path, f"member {info.filename} declares an array of shape "
                              f"{tuple(shape)} and dtype {dtype} ({expected} bytes with its "
                              f"header) but holds {info.file_size} bytes")


def _check_archive(zf, path, max_bytes):
    """Refuse a zip whose members would expand beyond the limits, before reading them.

    Only the central directory and the headers of the ``.npy`` members are
    read.  ``zipfile`` never returns more than a member's declared size, so
    the declared sizes bound what loading reads.
    """
    members = zf.infolist()
    total = sum(info.file_size for info in members)
    if total > max_bytes:
        _refuse_archive(path, f"its members expand to {total} bytes, more than the limit of "
                              f"{max_bytes} (pass load_model(..., max_bytes=...) to raise it "
                              "for a model you trust)")
    for info in members:
        if info.filename == "schema.json" and info.file_size > MAX_SCHEMA_BYTES:
            _refuse_archive(path, f"its schema.json expands to {info.file_size} bytes, more "
                                  f"than the limit of {MAX_SCHEMA_BYTES}")
        if (info.file_size > RATIO_MIN_BYTES
                and info.file_size > MAX_RATIO * max(info.compress_size, 1)):
            _refuse_archive(path, f"member {info.filename} expands {info.compress_size} bytes "
                                  f"to {info.file_size} (more than {MAX_RATIO}x)")
    for info in members:
        if info.filename.endswith(".npy"):
            _check_npy_header(zf, info, path)


def _major_minor(version):
    match = re.match(r"\s*(\d+)\.(\d+)", str(version))
    return (int(match[1]), int(match[2])) if match else None


def _warn_if_newer(path, content):
    """Warn if the file's pixelforest or scikit-learn is newer (major.minor) than ours."""
    node = content.get("versions")
    entries = node.get("content") if isinstance(node, dict) else None
    if not isinstance(entries, dict):
        return
    installed = _versions()
    for package in _VERSION_CHECKED:
        written = _json_value(entries.get(package))
        ours, theirs = _major_minor(installed[package]), _major_minor(written)
        if ours is not None and theirs is not None and theirs > ours:
            warnings.warn(ModelVersionWarning(
                f"{path} was written by {package} {written}, newer than the installed "
                f"{installed[package]}; it may fail to load or predict differently: upgrade "
                f"with pip install -U {package}."
            ), stacklevel=5)


def _read_header(path, max_bytes=MAX_BYTES):
    """Check that ``path`` is a pixelforest skops file; return its schema's top entries."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(
            f"there is no model file at {path}; check the path, or train one with "
            "'pixelforest train' / pixelforest.save_model."
        )
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory, not a model file; give the .skops file.")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not head:
        raise ModelFileError(f"{path} is empty; it was not written completely: save it again.")
    if head[:1] == b"\x80" or head[:1] in (b"(", b"c", b"]", b"}"):
        raise UntrustedModelError(
            f"{path} is a Python pickle, not a skops model; pickles can run code when "
            "loaded, so pixelforest never opens them (nothing was executed): retrain and "
            "save with pixelforest.save_model."
        )
    if head != _ZIP_MAGIC:
        raise ModelFileError(
            f"{path} is not a pixelforest model file (no skops/zip header); give a file "
            "written by pixelforest.save_model or 'pixelforest train'."
        )
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "schema.json" not in names:
                raise ModelFileError(
                    f"{path} is a zip archive but not a skops file (no schema.json); give a "
                    "file written by pixelforest.save_model."
                )
            _check_archive(zf, path, max_bytes)
            schema = json.loads(zf.read("schema.json"))
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(
            f"{path} is truncated or corrupt ({exc}); copy or save the model again."
        ) from None
    content = schema.get("content") if isinstance(schema, dict) else None
    if not (isinstance(schema, dict) and schema.get("__class__") == "dict"
            and isinstance(content, dict) and _json_value(content.get("format")) == FORMAT):
        held = (f"{schema.get('__module__')}.{schema.get('__class__')}"
                if isinstance(schema, dict) else "unknown data")
        raise ModelFileError(
            f"{path} is a skops file holding a {held}, not a pixelforest model; load it with "
            "skops.io directly, or wrap the estimator in a PixelClassifier, fit and "
            "save_model it."
        )
    version = _json_value(content.get("format_version"))
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFileError(f"{path} has no valid format version; save the model again.")
    if version > FORMAT_VERSION:
        raise IncompatibleModelError(
            f"{path} uses model format {version}, newer than this pixelforest "
            f"({_versions()['pixelforest']}) understands (format {FORMAT_VERSION}); upgrade "
            "pixelforest (pip install -U pixelforest) to load it."
        )
    _warn_if_newer(path, content)
    return content


def _load_payload(path, trusted, max_bytes):
    import skops.io as sio

    _read_header(path, max_bytes)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises various errors on damaged schemas
        raise ModelFileError(
            f"{path} is corrupt: its schema cannot be read ({exc}); save the model again."
        ) from None
    allowed = set(TRUSTED_TYPES) | set(trusted or ())
    refused = sorted(set(untrusted) - allowed)
    if refused:
        raise UntrustedModelError(
            f"{path} holds types that are not trusted: {refused}; nothing was loaded or "
            "executed. Only open models from people you trust; if you trust this file, "
            "pass load_model(path, trusted=[...]) naming these types."
        )
    try:
        payload = sio.load(path, trusted=sorted(untrusted))
    except UntrustedModelError:
        raise
    except Exception as exc:  # truncated members, bad arrays, ...
        raise ModelFileError(
            f"{path} is truncated or corrupt ({type(exc).__name__}: {exc}); copy or save the "
            "model again."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a pixelforest model; save it with save_model.")
    return payload


def load_model(path, *, trusted=None, max_bytes=MAX_BYTES):
    """Load a :class:`PixelClassifier` saved by :func:`save_model`, safely.

    Parameters
    ----------
    path : str or Path
        The ``.skops`` file.
    trusted : sequence of str, optional
        Extra type names (``module.Class``) to trust, for a model holding a
        custom estimator.  Only name types you trust: loading creates them.
    max_bytes : int, optional
        Largest total uncompressed size of the file's members (default
        :data:`MAX_BYTES`); a larger file is refused before anything is
        expanded.  Raise it only for a big model you trust.

    Returns
    -------
    clf : PixelClassifier
        The fitted classifier; its predictions equal, bit for bit, those of
        the classifier that was saved.  ``clf.model_info_`` holds the file's
        metadata (versions, creation time).

    Raises
    ------
    ModelFileError
        Missing, empty, truncated, corrupt or foreign file; a file that
        would expand beyond the size limits; a tree whose arrays are
        inconsistent (indices out of range, a cycle, features or classes
        that do not match the model): nothing uses them.
    UntrustedModelError
        A pickle, or a file holding types that are not trusted (nothing is
        executed).
    IncompatibleModelError
        A file written in a newer model format than this pixelforest reads.

    Warns
    -----
    ModelVersionWarning
        The file was written by a newer pixelforest or scikit-learn
        (major.minor) than the one installed.
    """
    from pixelforest.classify.classifier import PixelClassifier
    from pixelforest.classify.pipeline import PredictionPipeline
    from pixelforest.features import FeatureSpec
    from pixelforest.forest.validation import check_forest

    if (isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer))
            or max_bytes <= 0):
        raise InvalidParameterError(
            f"max_bytes must be a positive number of bytes, got {max_bytes!r}; leave it at "
            f"the default ({MAX_BYTES})."
        )
    payload = _load_payload(path, trusted, int(max_bytes))
    try:
        params, fitted = payload["params"], payload["fitted"]
        spec = FeatureSpec.from_dict(params["features"])
        pipeline = PredictionPipeline(
            spec=spec, normalize=params["normalize"], estimator=payload["estimator"],
            classes=np.asarray(fitted["classes"]), n_channels=int(fitted["n_channels"]),
            ndim=int(fitted["ndim"]), channel_axis=params["channel_axis"])
        if (list(fitted["feature_names"]) != list(pipeline.feature_names)
                or tuple(int(h) for h in fitted["halo"]) != pipeline.halo
                or int(fitted["n_features_in"]) != pipeline.n_features):
            raise ModelFileError(
                f"{path} is inconsistent (its feature names or halo do not match its "
                "feature spec); save the model again."
            )
        # before anything (even a clone) touches the trees
        check_forest(pipeline.estimator, pipeline.n_features, pipeline.classes,
                     source=str(path))
        extra = {k: params[k] for k in ("split_placement", "n_jobs") if k in params}
        clf = PixelClassifier.from_pipeline(pipeline, random_state=params["random_state"],
                                            **extra)
        clf.model_info_ = {k: payload[k] for k in ("format_version", "versions", "created")}
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"{path} is a pixelforest model with missing or invalid entries ({exc}); save "
            "the model again."
        ) from None
    if not hasattr(clf.estimator_, "predict_proba"):
        raise ModelFileError(
            f"{path} is inconsistent (its estimator cannot predict probabilities); save the "
            "model again."
        )
    return clf


def model_info(path, *, trusted=None, max_bytes=MAX_BYTES):
    """Describe a model file: spec, classes, channels, versions, top features.

    Parameters
    ----------
    path : str or Path
        The ``.skops`` file.
    trusted : sequence of str, optional
        As in :func:`load_model`.
    max_bytes : int, optional
        As in :func:`load_model`.

    Returns
    -------
    info : dict
        ``format_version``, ``created``, ``versions``, ``features`` (the
        spec as a dict), ``normalize``, ``channel_axis``, ``classes``,
        ``n_channels``, ``ndim``, ``n_features``, ``halo``, ``estimator``
        (its class and parameters) and ``top_features`` (up to 10
        ``(name, importance)`` pairs, empty if the estimator has none).
    """
    clf = load_model(path, trusted=trusted, max_bytes=max_bytes)  # checks every tree
    try:
        top = list(clf.feature_importances_by_name().items())[:10]
    except AttributeError:
        top = []
    est = clf.estimator_
    return {
        "format_version": clf.model_info_["format_version"],
        "created": clf.model_info_["created"],
        "versions": dict(clf.model_info_["versions"]),
        "features": clf.spec_.to_dict(),
        "normalize": clf.normalize,
        "channel_axis": clf.channel_axis,
        "classes": clf.classes_.tolist(),
        "n_channels": clf.n_channels_,
        "ndim": clf.ndim_,
        "n_features": clf.n_features_in_,
        "halo": list(clf.halo_),
        "estimator": {"class": f"{type(est).__module__}.{type(est).__name__}",
                      "params": {k: v for k, v in est.get_params(deep=False).items()
                                 if isinstance(v, (int, float, str, bool, type(None)))}},
        "top_features": top,
    }
