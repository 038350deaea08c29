"""Safe model files: save and load pixel and object classifiers.

A model is one ``.skops`` file (a zip archive written by :mod:`skops.io`)
holding either a :class:`~pixelforest.classify.classifier.PixelClassifier`
(:func:`save_model` / :func:`load_model`) or an
:class:`~pixelforest.objects.classifier.ObjectClassifier`
(:func:`save_object_model` / :func:`load_object_model`); its ``kind``
entry (:data:`KINDS`; absent in files written before object models, which
are pixel models) says which, and each loader refuses the other kind with
the function to use, before anything is built.
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
NumPy that wrote it, and the creation time (UTC, ISO 8601).  An object
model records its measurement columns (feature names) and classes instead
of the feature spec, and goes through the same checks: trusted types,
size limits, every tree proven well formed against its feature columns and
classes.
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
    NotFittedError,
    UntrustedModelError,
)

__all__ = ["FORMAT", "FORMAT_VERSION", "KINDS", "MAX_BYTES", "MAX_RATIO", "MAX_SCHEMA_BYTES",
           "TRUSTED_TYPES", "load_model", "load_object_model", "model_info", "save_model",
           "save_object_model"]

#: Value of the ``format`` entry of every pixelforest model file.
FORMAT = "pixelforest-model"

#: Version of the file layout this library writes and the newest it reads.
FORMAT_VERSION = 1

#: Values of the ``kind`` entry: what a model file holds.  ``"pixel"``: a
#: :class:`PixelClassifier` (also a file without the entry); ``"objects"``: an
#: :class:`~pixelforest.objects.classifier.ObjectClassifier`.
KINDS = ("pixel", "objects")

#: How to load each kind, for the message when the other loader is called.
_KIND_HINTS = {
    "pixel": ("a pixel classifier", "load it with pixelforest.load_model (on the command "
                                    "line: pixelforest predict / info)"),
    "objects": ("an object classifier", "load it with "
                                        "pixelforest.io.model_file.load_object_model (on "
                                        "the command line: pixelforest classify-objects)"),
}

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


def _created():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _versions():
    import sklearn
    import skops

    from pixelforest import __version__

    return {"pixelforest": __version__, "scikit-learn": sklearn.__version__,
            "skops": skops.__version__, "numpy": np.__version__}


def _seed(random_state):
    """An int seed as stored, or None (a RandomState instance's seed is not recoverable)."""
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    return None


def _write(path, kind, *, params, fitted, estimator):
    """Write one model file of ``kind`` ("pixel" or "objects") atomically."""
    import skops.io as sio

    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "versions": _versions(),
        "created": _created(),
        "params": params,
        "fitted": fitted,
        "estimator": estimator,
    }
    with atomic_output(path) as tmp:
        sio.dump(payload, tmp, compression=zipfile.ZIP_DEFLATED)


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

    Notes
    -----
    An :class:`~pixelforest.objects.classifier.ObjectClassifier` is saved
    with :func:`save_object_model` instead.

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
    from pixelforest.classify.classifier import PixelClassifier
    from pixelforest.classify.pipeline import pipeline_of
    from pixelforest.objects.classifier import ObjectClassifier

    if isinstance(clf, ObjectClassifier):
        save_object_model(clf, path)
        return
    if not isinstance(clf, PixelClassifier):
        raise InvalidParameterError(
            f"save_model saves a PixelClassifier, got {type(clf).__name__}; wrap your "
            "estimator in PixelClassifier(estimator=...) and fit it."
        )
    pipeline_of(clf)  # refuses an unfitted classifier
    _write(path, "pixel", params={
            "features": clf.spec_.to_dict(),
            "channel_axis": clf.channel_axis,
            "normalize": clf.normalize,
            "random_state": _seed(clf.random_state),
            "split_placement": getattr(clf, "split_placement", "valley"),
            "n_jobs": getattr(clf, "n_jobs", None),
        }, fitted={
            "classes": np.asarray(clf.classes_),
            "n_channels": int(clf.n_channels_),
            "ndim": int(clf.ndim_),
            "n_features_in": int(clf.n_features_in_),
            "feature_names": list(clf.feature_names_),
            "halo": list(clf.halo_),
        }, estimator=clf.estimator_)


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


def _read_header(path, max_bytes=MAX_BYTES, kind="pixel"):
    """Check that ``path`` is a pixelforest model file of ``kind``; return its top entries."""
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
    held = _json_value(content.get("kind")) if "kind" in content else "pixel"
    if held not in KINDS:
        raise IncompatibleModelError(
            f"{path} holds a model of kind {held!r}, which this pixelforest "
            f"({_versions()['pixelforest']}) does not know; upgrade pixelforest (pip install "
            "-U pixelforest) to load it."
        )
    if held != kind:
        what, how = _KIND_HINTS[held]
        raise ModelFileError(
            f"{path} holds {what}, not {_KIND_HINTS[kind][0]}; {how}."
        )
    return content


def _load_payload(path, trusted, max_bytes, kind="pixel"):
    import skops.io as sio

    _read_header(path, max_bytes, kind)
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
    if not isinstance(payload, dict) or payload.get("format") != FORMAT \
            or payload.get("kind", "pixel") != kind:
        raise ModelFileError(f"{path} is not a pixelforest model; save it with save_model.")
    return payload


def _check_max_bytes(max_bytes):
    if (isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer))
            or max_bytes <= 0):
        raise InvalidParameterError(
            f"max_bytes must be a positive number of bytes, got {max_bytes!r}; leave it at "
            f"the default ({MAX_BYTES})."
        )
    return int(max_bytes)


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
        that do not match the model): nothing uses them.  An object model
        (load it with :func:`load_object_model`).
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

    payload = _load_payload(path, trusted, _check_max_bytes(max_bytes))
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


# -- object classifiers --------------------------------------------------------

def save_object_model(clf, path):
    """Write a fitted :class:`~pixelforest.objects.classifier.ObjectClassifier`, atomically.

    The file (kind ``"objects"``) holds the fitted estimator, the classes,
    the measurement columns it reads (``feature_names_in_``), the
    constructor's parameters, the versions that wrote it and the creation
    time.  :func:`save_model` given an object classifier calls this.

    Parameters
    ----------
    clf : ObjectClassifier
        A fitted object classifier.
    path : str or Path
        Destination; conventionally ends in ``.skops``.

    Raises
    ------
    NotFittedError
        ``clf`` was not fitted.
    InvalidParameterError
        ``clf`` is not an ObjectClassifier.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import pandas as pd
    >>> from pixelforest.objects import ObjectClassifier
    >>> table = pd.DataFrame({"label": [1, 2, 3], "area_physical": [10.0, 95.0, 12.0]})
    >>> clf = ObjectClassifier(features=["area_physical"]).fit_table(
    ...     table, ["small", "large", "small"])
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "objects.skops"
    >>> save_object_model(clf, path)
    >>> again = load_object_model(path)
    >>> again.predict_table(table).tolist(), again.feature_names_in_.tolist()
    (['small', 'large', 'small'], ['area_physical'])
    """
    from pixelforest.objects.classifier import ObjectClassifier

    if not isinstance(clf, ObjectClassifier):
        raise InvalidParameterError(
            f"save_object_model saves an ObjectClassifier, got {type(clf).__name__}; save a "
            "PixelClassifier with save_model."
        )
    if not hasattr(clf, "estimator_"):
        raise NotFittedError(
            "this ObjectClassifier is not fitted yet; fit it before save_object_model."
        )
    classes = np.asarray(clf.classes_)
    _write(path, "objects", params={
            "features": None if clf.features is None else [str(f) for f in clf.features],
            "channel_axis": None if clf.channel_axis is None else int(clf.channel_axis),
            "random_state": _seed(clf.random_state),
            "n_jobs": clf.n_jobs,
            "default_estimator": clf.estimator is None,
        }, fitted={
            # strings as a fixed-width unicode array: never Python objects
            "classes": classes.astype(str) if classes.dtype.kind in "OU" else classes,
            "feature_names": [str(f) for f in clf.feature_names_in_],
            "class_counts": np.asarray(clf.class_counts_, dtype=np.int64),
        }, estimator=clf.estimator_)


def _optional_int(value, what, path):
    if value is None or (isinstance(value, (int, np.integer)) and not isinstance(value, bool)):
        return None if value is None else int(value)
    raise ModelFileError(f"{path} has an invalid {what} ({value!r}); save the model again.")


def _object_entries(payload, path):
    """The checked parameters, classes and feature names of an object model's payload."""
    params, fitted = payload["params"], payload["fitted"]
    if not isinstance(params, dict) or not isinstance(fitted, dict):
        raise TypeError("params and fitted must be dicts")
    names = fitted["feature_names"]
    if (not isinstance(names, list) or not names or len(set(names)) != len(names)
            or not all(isinstance(n, str) for n in names)):
        raise ModelFileError(f"{path} has invalid feature names ({names!r}); save the model "
                             "again.")
    classes = fitted["classes"]
    if (not isinstance(classes, np.ndarray) or classes.ndim != 1 or classes.shape[0] < 2
            or classes.dtype.kind not in "biufU"
            or (classes.dtype.kind == "f" and not np.isfinite(classes).all())
            or not np.array_equal(np.unique(classes), classes)):
        raise ModelFileError(
            f"{path} has invalid classes (they must be at least two distinct sorted numbers "
            "or strings); save the model again."
        )
    features = params["features"]
    if features is not None and (not isinstance(features, list)
                                 or not all(isinstance(f, str) for f in features)):
        raise ModelFileError(f"{path} has an invalid features parameter; save the model "
                             "again.")
    if not isinstance(params["default_estimator"], bool):
        raise ModelFileError(f"{path} has an invalid default_estimator entry; save the model "
                             "again.")
    settings = {key: _optional_int(params[key], key, path)
                for key in ("channel_axis", "random_state", "n_jobs")}
    counts = fitted["class_counts"]
    if (not isinstance(counts, np.ndarray) or counts.shape != classes.shape
            or counts.dtype.kind not in "iu" or (counts < 0).any()):
        raise ModelFileError(f"{path} has invalid class counts; save the model again.")
    return params, settings, classes, names, features, counts.astype(np.int64)


def load_object_model(path, *, trusted=None, max_bytes=MAX_BYTES):
    """Load an :class:`~pixelforest.objects.classifier.ObjectClassifier`, safely.

    The checks of :func:`load_model`: no pickle, trusted types only, size
    limits before anything is expanded, and every tree of the estimator
    proven well formed against the model's feature columns and classes
    before anything uses it.

    Parameters
    ----------
    path : str or Path
        A ``.skops`` file written by :func:`save_object_model`.
    trusted : sequence of str, optional
        As in :func:`load_model`.
    max_bytes : int, optional
        As in :func:`load_model`.

    Returns
    -------
    clf : ObjectClassifier
        The fitted classifier; its predictions equal those of the one that
        was saved.  ``clf.model_info_`` holds the file's metadata.

    Raises
    ------
    ModelFileError
        As in :func:`load_model`; also a pixel model (load it with
        :func:`load_model`) and invalid classes or feature names.
    UntrustedModelError
        A pickle, or types that are not trusted (nothing is executed).
    IncompatibleModelError
        A newer model format or an unknown kind of model.

    Warns
    -----
    ModelVersionWarning
        The file was written by a newer pixelforest or scikit-learn.
    """
    from sklearn.base import clone

    from pixelforest.forest.validation import check_forest
    from pixelforest.objects.classifier import ObjectClassifier

    payload = _load_payload(path, trusted, _check_max_bytes(max_bytes), kind="objects")
    try:
        params, settings, classes, names, features, counts = _object_entries(payload, path)
        estimator = payload["estimator"]
        n_classes = int(classes.shape[0])
        # the estimator predicts class indices; before anything touches its trees
        check_forest(estimator, len(names), np.arange(n_classes), source=str(path))
        if not hasattr(estimator, "predict_proba"):
            raise ModelFileError(
                f"{path} is inconsistent (its estimator cannot predict probabilities); save "
                "the model again."
            )
        own = getattr(estimator, "n_features_in_", len(names))
        if not isinstance(own, (int, np.integer)) or own != len(names):
            raise ModelFileError(
                f"{path} is inconsistent (its estimator expects {own!r} features, the model "
                f"records {len(names)} feature names); save the model again."
            )
        own = getattr(estimator, "classes_", None)
        if own is not None and not np.array_equal(np.asarray(own), np.arange(n_classes)):
            raise ModelFileError(
                f"{path} is inconsistent (its estimator's classes are not the {n_classes} "
                "class indices of the model); save the model again."
            )
        clf = ObjectClassifier(
            features=features,
            estimator=None if params["default_estimator"] else clone(estimator),
            **settings)
        clf.estimator_ = estimator
        clf.classes_ = classes
        clf.feature_names_in_ = np.asarray(names, dtype=object)
        clf.n_features_in_ = len(names)
        clf.class_counts_ = counts
        clf.n_objects_ = int(counts.sum())
        clf.model_info_ = {k: payload[k] for k in ("format_version", "versions", "created")}
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(
            f"{path} is an object model with missing or invalid entries ({exc}); save the "
            "model again."
        ) from None
    return clf
