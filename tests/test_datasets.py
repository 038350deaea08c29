import functools
import hashlib
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from pixelforest import datasets
from pixelforest.datasets import list_samples, load_sample, sample_info, synthetic_nuclei
from pixelforest.errors import CorruptFileError, DataUnavailableError, InvalidParameterError
from pixelforest.io.images import imwrite

SHARED = Path(os.environ.get("PIXELFOREST_DATA_DIR", "/nonexistent")) / "dsb2018"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason="PIXELFOREST_DATA_DIR does not hold dsb2018/"
)


# ---------------------------------------------------------------- metadata

def test_list_samples_and_kinds():
    names = list_samples()
    assert len(names) == 28 and len(set(names)) == 28
    counts = {kind: len(list_samples(kind)) for kind in datasets.KINDS}
    assert counts == {"fluorescence": 20, "brightfield": 4, "histology": 4}
    assert set().union(*(list_samples(k) for k in datasets.KINDS)) == set(names)
    with pytest.raises(InvalidParameterError, match="fluorescence, brightfield"):
        list_samples("confocal")


def test_sample_info():
    info = sample_info("a7f767ca9770")
    assert info == {
        "name": "a7f767ca9770", "kind": "histology", "height": 256, "width": 320,
        "nuclei": 12,
        "source_id": "a7f767ca9770b160f234780e172aeb35a50830ba10dc49c526f4712451abe1d2",
    }
    info["kind"] = "changed"  # a copy: the manifest is not modified
    assert sample_info("a7f767ca9770")["kind"] == "histology"
    with pytest.raises(InvalidParameterError, match="did you mean '1a75e9f15481'"):
        sample_info("1a75e9f15482")


def test_registry_covers_every_sample():
    collection = datasets._dsb2018()
    files = set()
    for name in list_samples():
        image, masks = collection.originals(name)
        assert len(masks) == sample_info(name)["nuclei"]
        files.update([image, *masks])
    assert files == set(collection.registry)
    assert all(digest.startswith("sha256:") and len(digest) == 71
               for digest in collection.registry.values())


@needs_shared
def test_shipped_metadata_equals_shared_copy():
    data = Path(datasets.__file__).parent / "data"
    assert (data / "dsb2018_manifest.csv").read_bytes() == (SHARED / "manifest.csv").read_bytes()
    assert (data / "dsb2018_registry.txt").read_bytes() == (SHARED / "registry.txt").read_bytes()


# ---------------------------------------------------------------- local mode

@needs_shared
def test_all_samples_load_with_manifest_shapes():
    for name in list_samples():
        info = sample_info(name)
        image, labels = load_sample(name)
        hw = (info["height"], info["width"])
        assert image.dtype == np.uint8 and labels.dtype == np.uint16
        assert image.shape == (hw + (3,) if info["kind"] == "histology" else hw)
        assert labels.shape == hw
        assert len(np.unique(labels)) - 1 == info["nuclei"] == labels.max()


def test_local_mode_missing_folder_or_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELFOREST_DATA_DIR", str(tmp_path))
    with pytest.raises(DataUnavailableError, match=r"dsb2018 does not exist.*unset it"):
        load_sample("1a75e9f15481")
    (tmp_path / "dsb2018" / "images").mkdir(parents=True)
    imwrite(tmp_path / "dsb2018" / "images" / "1a75e9f15481.tif", np.zeros((256, 256), np.uint8))
    with pytest.raises(DataUnavailableError, match=r"labels.1a75e9f15481\.tif is missing"):
        load_sample("1a75e9f15481")


def test_local_mode_wrong_shape_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELFOREST_DATA_DIR", str(tmp_path))
    for sub in ("images", "labels"):
        imwrite(tmp_path / "dsb2018" / sub / "1a75e9f15481.tif", np.zeros((10, 10), np.uint8))
    with pytest.raises(CorruptFileError, match="manifest says"):
        load_sample("1a75e9f15481")


# ---------------------------------------------------------------- download mode

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """Serve a folder on 127.0.0.1 (port chosen by the OS); yield a starter."""
    servers = []

    def start(root):
        handler = functools.partial(_QuietHandler, directory=str(root))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((server, thread))
        return server, f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()


def _sha256(path):
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _make_tree(root, samples, seed=0):
    """Write original-style files for ``samples`` under ``root``.

    ``samples`` maps name -> (kind, image, labels).  Like DSB2018: the image
    is an RGBA PNG (channel 0 holds a grey image), each nucleus one mask PNG
    with a random hex name; labels are numbered in sorted mask-name order.
    Returns the manifest and registry texts of the tree.
    """
    rng = np.random.default_rng(seed)
    manifest = ["name,kind,height,width,nuclei,source_id"]
    registry = []
    for name, (kind, image, labels) in samples.items():
        source = name + "".join(rng.choice(list("0123456789abcdef"), 52))
        folder = root / "stage1_train" / source
        if image.ndim == 2:
            rgb = np.stack([image, image // 2, image // 3], axis=-1)  # only R is used
        else:
            rgb = image
        rgba = np.concatenate([rgb, np.full(image.shape[:2] + (1,), 255, np.uint8)], -1)
        image_file = folder / "images" / f"{source}.png"
        imwrite(image_file, rgba)
        n = int(labels.max())
        mask_names = sorted("".join(rng.choice(list("0123456789abcdef"), 64)) for _ in range(n))
        files = [image_file]
        for number, mask_name in enumerate(mask_names, 1):
            mask_file = folder / "masks" / f"{mask_name}.png"
            imwrite(mask_file, np.where(labels == number, 255, 0).astype(np.uint8))
            files.append(mask_file)
        order = rng.permutation(len(files))  # registry order is not label order
        registry += [f"{files[i].relative_to(root).as_posix()} {_sha256(files[i])}" for i in order]
        h, w = labels.shape
        manifest.append(f"{name},{kind},{h},{w},{n},{source}")
    return "\n".join(manifest) + "\n", "\n".join(registry) + "\n"


def _small_samples():
    image, labels = synthetic_nuclei((48, 40), n=6, seed=3)
    grey = (image // 16).astype(np.uint8)
    rgb = np.stack([grey, 255 - grey, grey // 2], axis=-1)
    return {"synthfluo": ("fluorescence", grey, labels),
            "synthhisto": ("histology", rgb, labels)}


@pytest.fixture
def download_env(tmp_path, monkeypatch):
    monkeypatch.delenv("PIXELFOREST_DATA_DIR", raising=False)
    monkeypatch.delenv("PIXELFOREST_DATA_URL", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("PIXELFOREST_CACHE_DIR", str(cache))
    monkeypatch.setattr(datasets, "_RETRIES", 0)  # fail fast: no back-off waits

    def use(samples):
        manifest, registry = _make_tree(tmp_path / "server", samples)
        collection = datasets._Collection("dsb2018", manifest, registry)
        monkeypatch.setattr(datasets, "_dsb2018", lambda: collection)
        return tmp_path / "server", collection

    return use, cache


def _cached_files(cache):
    return sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file())


def test_download_converts_once_and_reuses(download_env, http_server, monkeypatch):
    use, cache = download_env
    samples = _small_samples()
    root, _ = use(samples)
    server, url = http_server(root)
    monkeypatch.setenv("PIXELFOREST_DATA_URL", url)  # the variable sets the server
    for name, (kind, image, labels) in samples.items():
        got_image, got_labels = load_sample(name)
        np.testing.assert_array_equal(got_image, image)
        np.testing.assert_array_equal(got_labels, labels)
        assert got_labels.dtype == np.uint16 and got_image.dtype == np.uint8
    converted = cache / "dsb2018"
    assert sorted(p.name for p in (converted / "images").iterdir()) == [
        "synthfluo.tif", "synthhisto.tif"]
    assert not [p for p in cache.rglob(".*")]  # no temporary files left
    server.shutdown()  # offline now: the converted files are reused
    server.server_close()
    image, labels = load_sample("synthfluo")
    np.testing.assert_array_equal(labels, samples["synthfluo"][2])


@needs_shared
def test_conversion_reproduces_shared_tiffs(download_env, http_server):
    """Feed PNGs equivalent to the originals: the result is the shared TIFFs exactly."""
    use, cache = download_env
    samples = {}
    for name in ("1a75e9f15481", "a7f767ca9770"):  # fluorescence and histology
        info = sample_info(name)
        samples[name] = (info["kind"], tifffile.imread(SHARED / "images" / f"{name}.tif"),
                         tifffile.imread(SHARED / "labels" / f"{name}.tif"))
    root, _ = use(samples)
    _, url = http_server(root)
    for name, (_, image, labels) in samples.items():
        got_image, got_labels = load_sample(name, base_url=url)  # keyword wins
        assert got_image.dtype == image.dtype and got_labels.dtype == labels.dtype
        np.testing.assert_array_equal(got_image, image)
        np.testing.assert_array_equal(got_labels, labels)


def test_wrong_checksum_is_refused_and_nothing_cached(download_env, http_server):
    use, cache = download_env
    root, collection = use(_small_samples())
    _, url = http_server(root)
    _, masks = collection.originals("synthfluo")
    collection.registry[masks[2]] = "sha256:" + "0" * 64
    with pytest.raises(DataUnavailableError, match="does not match its sha256"):
        load_sample("synthfluo", base_url=url)
    cached = _cached_files(cache)
    assert any(masks[1].rsplit("/", 1)[1] in f for f in cached)  # good files are kept
    assert not any(masks[2].rsplit("/", 1)[1] in f for f in cached)
    assert not any(f.startswith("dsb2018/") for f in cached)  # nothing converted


def test_server_unreachable_or_file_missing(download_env, http_server):
    use, cache = download_env
    root, collection = use(_small_samples())
    server, url = http_server(root)
    image_file, _ = collection.originals("synthhisto")
    (root / image_file).unlink()  # 404
    with pytest.raises(DataUnavailableError, match="PIXELFOREST_DATA_DIR"):
        load_sample("synthhisto", base_url=url)
    server.shutdown()
    server.server_close()  # nothing listens on the port any more
    with pytest.raises(DataUnavailableError, match="could not download.*PIXELFOREST_DATA_URL"):
        load_sample("synthfluo", base_url=url)
    assert not (cache / "dsb2018").exists()


def test_download_rejects_unknown_name(download_env):
    use, _ = download_env
    use(_small_samples())
    with pytest.raises(InvalidParameterError, match="no sample named"):
        load_sample("nothing")


# ---------------------------------------------------------------- synthetic nuclei

def test_synthetic_is_deterministic_per_seed():
    a = synthetic_nuclei((96, 80), n=12, seed=5)
    b = synthetic_nuclei((96, 80), n=12, seed=5)
    c = synthetic_nuclei((96, 80), n=12, seed=6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_synthetic_default_is_realistic():
    image, labels = synthetic_nuclei()
    assert image.shape == labels.shape == (256, 256)
    assert image.dtype == labels.dtype == np.uint16
    assert image.max() <= 4095 and image.min() >= 50
    # exactly n nuclei, numbered 1..n
    assert np.array_equal(np.unique(labels), np.arange(31))
    areas = np.bincount(labels.ravel())[1:]
    assert areas.min() >= 12 and areas.max() > 2.5 * areas.min()  # varied sizes
    fg, bg = image[labels > 0], image[labels == 0]
    assert np.median(fg) > 2 * np.median(bg)  # nuclei are brighter
    means = ndi.mean(image, labels, np.arange(1, 31))
    assert means.max() > 1.8 * means.min()  # varied brightness
    # some nuclei touch: two different labels side by side
    touching = ((labels[:, 1:] != labels[:, :-1]) & (labels[:, 1:] > 0) & (labels[:, :-1] > 0))
    assert touching.any()
    # uneven background: the smooth background differs between regions
    smooth = ndi.median_filter(np.where(labels > 0, np.median(bg), image).astype(float), 31)
    assert np.ptp(smooth[32:-32, 32:-32]) > 40
    # noisy: neighbouring background pixels differ
    assert np.abs(np.diff(image.astype(int), axis=1))[labels[:, 1:] == 0].mean() > 5


def test_synthetic_3d():
    image, labels = synthetic_nuclei((24, 64, 64), n=6, seed=2)
    assert image.shape == labels.shape == (24, 64, 64)
    assert labels.max() == 6
    assert image[labels > 0].mean() > image[labels == 0].mean()


def test_synthetic_zero_nuclei():
    image, labels = synthetic_nuclei((32, 32), n=0)
    assert labels.max() == 0 and image.max() < 1000


@pytest.mark.parametrize("kwargs, match", [
    ({"shape": (256,)}, "2 or 3 sizes"),
    ({"shape": (8, 256)}, "at least 16"),
    ({"shape": 256}, "tuple"),
    ({"n": -1}, "non-negative"),
    ({"n": 2.5}, "non-negative"),
    ({"seed": "a"}, "integer"),
])
def test_synthetic_bad_arguments(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        synthetic_nuclei(**kwargs)
