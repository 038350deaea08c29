import functools
import hashlib
import http.server
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from pixelforest import datasets
from pixelforest.datasets import list_samples, load_sample, sample_info, synthetic_nuclei
from pixelforest.errors import CorruptFileError, DataUnavailableError, InvalidParameterError
from pixelforest.io.images import imwrite


@pytest.fixture(scope="module")
def shared(sample_data):
    """The local copy's dsb2018/ folder (PIXELFOREST_DATA_DIR), not a download."""
    if not os.environ.get("PIXELFOREST_DATA_DIR"):
        pytest.skip("reads the local copy's files: needs PIXELFOREST_DATA_DIR=../shared/data")
    return Path(os.environ["PIXELFOREST_DATA_DIR"]) / "dsb2018"


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


def test_tiff_registry_covers_every_sample():
    files = datasets._dsb2018().files
    assert sorted(files) == sorted(f"{sub}/{name}.tif" for name in list_samples()
                                   for sub in ("images", "labels"))
    assert all(digest.startswith("sha256:") and len(digest) == 71 for digest in files.values())


def test_shipped_metadata_equals_shared_copy(shared):
    data = Path(datasets.__file__).parent / "data"
    assert (data / "dsb2018_manifest.csv").read_bytes() == (shared / "manifest.csv").read_bytes()
    assert (data / "dsb2018_registry.txt").read_bytes() == (shared / "registry.txt").read_bytes()
    for key, digest in datasets._dsb2018().files.items():
        assert _sha256(shared / key) == digest, key


# ---------------------------------------------------------------- local mode

def test_all_samples_load_with_manifest_shapes(sample_data):
    for name in list_samples():
        info = sample_info(name)
        image, labels = sample_data(name)
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


def test_cached_sample_of_wrong_shape_is_reported(tmp_path, monkeypatch):
    monkeypatch.delenv("PIXELFOREST_DATA_DIR", raising=False)
    monkeypatch.setenv("PIXELFOREST_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PIXELFOREST_OFFLINE", "1")  # the cached files are used offline
    for sub in ("images", "labels"):
        imwrite(tmp_path / "dsb2018" / sub / "1a75e9f15481.tif", np.zeros((10, 10), np.uint8))
    with pytest.raises(CorruptFileError, match="manifest says"):
        load_sample("1a75e9f15481")


# ------------------------------------------------- local copy against the registry

@pytest.fixture
def local_copy(tmp_path, monkeypatch):
    """A local copy of two synthetic samples whose TIFF registry holds their sha256."""
    samples = _small_samples()
    manifest, registry = _make_tree(tmp_path / "server", samples)
    files = []
    for name, (_, image, labels) in samples.items():
        for sub, array in (("images", image), ("labels", labels)):
            path = tmp_path / "data" / "dsb2018" / sub / f"{name}.tif"
            imwrite(path, array)
            files.append(f"{sub}/{name}.tif {_sha256(path)}")
    collection = datasets._Collection("dsb2018", manifest, registry, "\n".join(files))
    monkeypatch.setattr(datasets, "_dsb2018", lambda: collection)
    monkeypatch.setenv("PIXELFOREST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(datasets, "_VERIFIED", {})
    return tmp_path / "data" / "dsb2018", samples


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # inside the pixel data: still a readable TIFF
    path.write_bytes(bytes(data))


def test_local_copy_with_a_flipped_byte_is_refused(local_copy):
    folder, samples = local_copy
    image, labels = load_sample("synthfluo")
    np.testing.assert_array_equal(labels, samples["synthfluo"][2])
    path = folder / "labels" / "synthhisto.tif"
    expected = datasets._dsb2018().files["labels/synthhisto.tif"][7:19]
    _flip_last_byte(path)
    found = _sha256(path)[7:19]
    with pytest.raises(CorruptFileError) as info:
        load_sample("synthhisto")
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert f"expected {expected}..." in message and f"found {found}..." in message
    assert "copy the dsb2018 folder again" in message and "unset PIXELFOREST_DATA_DIR" in message


def test_local_copy_is_hashed_once_per_file_version(local_copy, monkeypatch):
    folder, _ = local_copy
    hashed = []
    original = datasets._sha256
    monkeypatch.setattr(datasets, "_sha256", lambda path: hashed.append(path.name)
                        or original(path))
    load_sample("synthfluo")
    load_sample("synthfluo")
    assert hashed == ["synthfluo.tif", "synthfluo.tif"]  # image and labels, once each
    path = folder / "images" / "synthfluo.tif"
    _flip_last_byte(path)  # edited later: size and mtime change, so it is hashed again
    os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns + 1_000_000))
    with pytest.raises(CorruptFileError, match="synthfluo.tif does not match"):
        load_sample("synthfluo")
    assert hashed == ["synthfluo.tif"] * 3


def test_real_local_copy_with_a_flipped_byte_is_refused(shared, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "dsb2018"
    for sub in ("images", "labels"):
        (copy / sub).mkdir(parents=True)
        shutil.copy2(shared / sub / "1a75e9f15481.tif", copy / sub)
    monkeypatch.setenv("PIXELFOREST_DATA_DIR", str(tmp_path))
    load_sample("1a75e9f15481")  # an exact copy passes
    _flip_last_byte(copy / "images" / "1a75e9f15481.tif")
    digest = datasets._dsb2018().files["images/1a75e9f15481.tif"]
    with pytest.raises(CorruptFileError, match=f"expected {digest[7:19]}"):
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
    monkeypatch.delenv("PIXELFOREST_OFFLINE", raising=False)  # local servers only
    monkeypatch.delenv("PIXELFOREST_DOWNLOAD_TIMEOUT", raising=False)
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


def test_download_converts_once_and_reuses(download_env, http_server, monkeypatch, leftovers):
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
    assert leftovers(cache) == []  # no temporary files left
    server.shutdown()  # offline now: the converted files are reused
    server.server_close()
    image, labels = load_sample("synthfluo")
    np.testing.assert_array_equal(labels, samples["synthfluo"][2])


def test_conversion_reproduces_shared_tiffs(shared, download_env, http_server):
    """Feed PNGs equivalent to the originals: the result is the shared TIFFs exactly."""
    use, cache = download_env
    samples = {}
    for name in ("1a75e9f15481", "a7f767ca9770"):  # fluorescence and histology
        info = sample_info(name)
        samples[name] = (info["kind"], tifffile.imread(shared / "images" / f"{name}.tif"),
                         tifffile.imread(shared / "labels" / f"{name}.tif"))
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


def test_offline_downloads_nothing_and_says_how_to_get_the_data(
        download_env, http_server, monkeypatch):
    use, cache = download_env
    samples = _small_samples()
    root, _ = use(samples)
    server, url = http_server(root)
    requests_seen = []
    monkeypatch.setattr(_QuietHandler, "log_message",
                        lambda self, *args: requests_seen.append(self.path))
    monkeypatch.setenv("PIXELFOREST_OFFLINE", "1")
    with pytest.raises(DataUnavailableError) as info:
        load_sample("synthfluo", base_url=url)
    message = str(info.value)
    assert message.startswith("sample data unavailable (PIXELFOREST_OFFLINE")
    assert "PIXELFOREST_DATA_DIR" in message and "\n" not in message
    assert requests_seen == [] and not cache.exists()  # not even an empty folder
    monkeypatch.delenv("PIXELFOREST_OFFLINE")
    load_sample("synthfluo", base_url=url)  # downloaded and converted once ...
    assert requests_seen
    monkeypatch.setenv("PIXELFOREST_OFFLINE", "1")
    image, labels = load_sample("synthfluo", base_url=url)  # ... then usable offline
    np.testing.assert_array_equal(labels, samples["synthfluo"][2])


def test_silent_server_times_out_quickly_and_leaves_nothing(download_env, monkeypatch):
    use, cache = download_env
    use(_small_samples())
    listener = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        monkeypatch.setenv("PIXELFOREST_DOWNLOAD_TIMEOUT", "0.5")
        start = time.perf_counter()
        with pytest.raises(DataUnavailableError, match="could not download.*Timeout"):
            load_sample("synthfluo", base_url=url)
        assert time.perf_counter() - start < 10  # a bound on hanging, not a timing
    finally:
        listener.close()
    assert _cached_files(cache) == []  # no partial file ...
    assert not (cache / "dsb2018-originals").exists()  # ... nor the folders made for it


def test_download_timeout_must_be_positive(download_env, monkeypatch):
    use, _ = download_env
    use(_small_samples())
    monkeypatch.setenv("PIXELFOREST_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(InvalidParameterError, match="PIXELFOREST_DOWNLOAD_TIMEOUT"):
        load_sample("synthfluo", base_url="http://127.0.0.1:9/")


class _TruncatingHandler(_QuietHandler):
    """Promises a whole file, sends half of it, and hangs up."""

    def do_GET(self):  # noqa: N802 - the stdlib's name
        data = Path(self.directory, self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True


def test_interrupted_transfer_leaves_no_partial_file(download_env):
    use, cache = download_env
    root, _ = use(_small_samples())
    handler = functools.partial(_TruncatingHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        with pytest.raises(DataUnavailableError, match="could not download"):
            load_sample("synthfluo", base_url=url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert _cached_files(cache) == []  # no partial file ...
    assert not (cache / "dsb2018-originals").exists()  # ... nor the folders made for it


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
