"""Fixtures shared by the test modules.

Real sample data
    ``sample_data`` (session) loads DSB2018 samples through the public
    :func:`pixelforest.datasets.load_sample`.  When the samples are neither
    in ``$PIXELFOREST_DATA_DIR`` nor downloadable, every test that uses it
    is skipped with one line saying why and how to get them.  With
    ``PIXELFOREST_DATA_DIR`` set (CI) or ``PIXELFOREST_REQUIRE_DATA=1``, a
    missing or broken copy is an error, never a skip.
Synthetic data
    ``nuclei`` (a small synthetic image and its labels), ``small_classifier``
    (a fast model fitted on it from striped scribbles) and ``leftovers``
    (hidden or temporary files left in a folder).

Everything but ``sample_data`` works offline.
"""

import functools
import os
from pathlib import Path

import numpy as np
import pytest

#: The smallest real sample (256 x 256, 9 original files to download): the
#: probe that tells whether sample data is available at all.
PROBE_SAMPLE = "1a75e9f15481"

HOW_TO_GET = "set PIXELFOREST_DATA_DIR=../shared/data or connect to download"

#: The line of ``sample_data``'s skip, where every such skip is reported.
_SKIP_LINE = next(number for number, line in enumerate(Path(__file__).read_text().splitlines(), 1)
                  if line.rstrip().endswith("# _SKIP_LINE: reported here"))


def _why_unavailable(exc):
    """One short line: why the samples cannot be had, and how to get them."""
    import requests

    offline = os.environ.get("PIXELFOREST_OFFLINE", "").strip().lower()
    if offline not in ("", "0", "false", "no", "off"):
        why = "PIXELFOREST_OFFLINE is set and PIXELFOREST_DATA_DIR unset"
    elif isinstance(exc.__cause__, (requests.ConnectionError, requests.Timeout)):
        why = "no network and PIXELFOREST_DATA_DIR unset"
    else:  # e.g. the server answered 404, or a checksum did not match
        why = "download failed and PIXELFOREST_DATA_DIR unset"
    return f"sample data unavailable ({why}): {HOW_TO_GET}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Report every "sample data unavailable" skip at one place.

    pytest's summary (``-ra``) folds skips of the same place and reason into
    one line, so a machine without the samples sees one line with the count
    instead of one per test (``-v`` still names each skipped test).
    """
    outcome = yield
    report = outcome.get_result()
    longrepr = report.longrepr
    if (report.skipped and isinstance(longrepr, tuple) and len(longrepr) == 3
            and str(longrepr[2]).startswith("Skipped: sample data unavailable")):
        report.longrepr = (__file__, _SKIP_LINE, longrepr[2])


@pytest.fixture(scope="session")
def sample_data():
    """``load(name) -> (image, labels)`` for real DSB2018 samples, or a clean skip.

    Each sample is read once per session; every call returns fresh copies,
    so a test may modify them.
    """
    from pixelforest import datasets
    from pixelforest.errors import DataUnavailableError

    try:
        datasets.load_sample(PROBE_SAMPLE)
    except DataUnavailableError as exc:
        if os.environ.get("PIXELFOREST_DATA_DIR") or \
                os.environ.get("PIXELFOREST_REQUIRE_DATA") == "1":
            pytest.fail(f"sample data unavailable although required: {exc}", pytrace=False)
        pytest.skip(_why_unavailable(exc))  # _SKIP_LINE: reported here

    @functools.cache
    def cached(name):
        return datasets.load_sample(name)

    def load(name):
        image, labels = cached(name)
        return image.copy(), labels.copy()

    return load


# ------------------------------------------------------------ synthetic data

@functools.cache
def _synthetic(shape, n, seed):
    from pixelforest.datasets import synthetic_nuclei

    return synthetic_nuclei(shape, n=n, seed=seed)


@pytest.fixture
def nuclei():
    """A small synthetic fluorescence image (96 x 96, 8 nuclei) and its labels.

    Fresh copies for each test: ``synthetic_nuclei((96, 96), n=8, seed=0)``.
    """
    image, labels = _synthetic((96, 96), 8, 0)
    return image.copy(), labels.copy()


def _stripe_scribbles(labels):
    """Background strokes on every 5th column away from nuclei (1), nuclei cores (2)."""
    from scipy import ndimage as ndi

    scrib = np.zeros(labels.shape, np.uint8)
    fg = labels > 0
    scrib[~ndi.binary_dilation(fg, iterations=4) & (np.arange(labels.shape[-1]) % 5 == 0)] = 1
    scrib[ndi.binary_erosion(fg, iterations=2)] = 2
    return scrib


@pytest.fixture(scope="session")
def small_classifier():
    """A fast fitted :class:`~pixelforest.PixelClassifier` (2 sigmas, 6 trees).

    Trained on the ``nuclei`` image with striped scribbles (1 = background
    on every 5th column, 4 pixels or more from any nucleus; 2 = nuclei
    eroded by 2 pixels).  Shared by the whole session: do not modify it
    (``sklearn.base.clone`` it to refit).
    """
    from pixelforest import FeatureSpec, PixelClassifier
    from pixelforest.forest.defaults import default_estimator

    image, labels = _synthetic((96, 96), 8, 0)
    model = PixelClassifier(FeatureSpec(sigmas=(1.0, 2.0)),
                            estimator=default_estimator(n_estimators=6))
    return model.fit(image, _stripe_scribbles(labels))


@pytest.fixture(scope="session")
def leftovers():
    """``leftovers(folder)``: sorted names of hidden or temporary files under it.

    What an interrupted or failed write must not leave behind (names starting
    with ``.`` or ``tmp``, or ending in ``.tmp``/``.part``).
    """

    def find(folder):
        folder = Path(folder)
        if not folder.exists():
            return []
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                      if p.name.startswith((".", "tmp")) or p.suffix in (".tmp", ".part"))

    return find
