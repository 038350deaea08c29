import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import skops.io as sio
from sklearn.ensemble import RandomForestClassifier

from pixelforest.classify.scribbles import simulate_scribbles
from pixelforest.classify.classifier import PixelClassifier, default_estimator
from pixelforest.errors import (
    IncompatibleModelError,
    ModelFileError,
    NotFittedError,
    UntrustedModelError,
)
from pixelforest.features import FeatureSpec
from pixelforest.io.model_file import FORMAT_VERSION, load_model, model_info, save_model

SPEC = FeatureSpec(families=("intensity", "gaussian", "dog"),
                   sigmas={"gaussian": (0.7,), "dog": (1.6, 3.0)})


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    labels = np.zeros((64, 64), np.uint16)
    yy, xx = np.indices(labels.shape)
    for i, (cy, cx) in enumerate([(15, 15), (40, 20), (30, 48), (50, 50)]):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 < 36] = i + 1
    image = (rng.normal(20, 6, labels.shape) + 60 * (labels > 0)).astype(np.float32)
    rgb = np.stack([image, 255 - image, image / 2], axis=0)
    clf = PixelClassifier(SPEC, estimator=default_estimator(n_estimators=8), channel_axis=0,
                          random_state=3).fit(rgb, simulate_scribbles(labels))
    return clf, rgb


def test_round_trip_is_bit_identical(fitted, tmp_path):
    clf, rgb = fitted
    path = tmp_path / "m.skops"
    save_model(clf, path)
    again = load_model(path)
    np.testing.assert_array_equal(again.predict_proba(rgb), clf.predict_proba(rgb))
    np.testing.assert_array_equal(again.predict(rgb), clf.predict(rgb))
    assert again.spec_ == clf.spec_ and again.channel_axis == 0
    assert again.n_channels_ == 3 and again.feature_names_ == clf.feature_names_
    assert again.halo_ == clf.halo_ and again.random_state == 3
    np.testing.assert_array_equal(again.classes_, clf.classes_)
    assert not list(tmp_path.glob(".*"))  # no temporary left behind


def test_metadata_recorded(fitted, tmp_path):
    path = tmp_path / "m.skops"
    save_model(fitted[0], path)
    info = model_info(path)
    assert info["format_version"] == FORMAT_VERSION
    assert set(info["versions"]) == {"pixelforest", "scikit-learn", "skops", "numpy"}
    assert info["created"].endswith("+00:00")
    assert info["classes"] == [1, 2] and info["n_channels"] == 3
    assert info["features"] == SPEC.to_dict() and info["normalize"] == "percentile"
    assert info["estimator"]["class"].endswith("RandomForestClassifier")
    assert len(info["top_features"]) == 10 and info["top_features"][0][1] > 0


def test_not_fitted(tmp_path):
    with pytest.raises(NotFittedError):
        save_model(PixelClassifier(), tmp_path / "m.skops")


class _Hostile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.skops"
    path.write_bytes(pickle.dumps(_Hostile(marker)))
    with pytest.raises(UntrustedModelError, match="pickle"):
        load_model(path)
    assert not marker.exists()
    # the same pickle wrapped in a zip that looks like a skops file
    zpath = tmp_path / "evil-zip.skops"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("schema.json", json.dumps({"__class__": "system", "__module__": "posix",
                                               "__loader__": "ObjectNode", "content": {}}))
        zf.writestr("payload.pkl", pickle.dumps(_Hostile(marker)))
    with pytest.raises(ModelFileError):
        load_model(zpath)
    assert not marker.exists()


def test_untrusted_type_inside_a_model_is_refused(fitted, tmp_path):
    clf = fitted[0]
    path = tmp_path / "m.skops"
    save_model(clf, path)
    # swap the estimator for an object of a type nobody trusted
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    schema = json.loads(members["schema.json"])
    schema["content"]["estimator"]["__module__"] = "subprocess"
    schema["content"]["estimator"]["__class__"] = "Popen"
    members["schema.json"] = json.dumps(schema).encode()
    bad = tmp_path / "bad.skops"
    with zipfile.ZipFile(bad, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(UntrustedModelError, match="subprocess.Popen"):
        load_model(bad)


def test_truncated_random_empty_missing(fitted, tmp_path):
    path = tmp_path / "m.skops"
    save_model(fitted[0], path)
    data = path.read_bytes()
    cut = tmp_path / "cut.skops"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        load_model(cut)
    noise = tmp_path / "noise.skops"
    noise.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ModelFileError, match="not a pixelforest model"):
        load_model(noise)
    empty = tmp_path / "empty.skops"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        load_model(empty)
    with pytest.raises(ModelFileError, match="no model file"):
        load_model(tmp_path / "missing.skops")
    foreign_zip = tmp_path / "foreign.skops"
    with zipfile.ZipFile(foreign_zip, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(ModelFileError, match="no schema.json"):
        load_model(foreign_zip)


def test_foreign_skops_file(tmp_path):
    path = tmp_path / "rf.skops"
    rf = RandomForestClassifier(n_estimators=2).fit(np.eye(4), [0, 1, 0, 1])
    sio.dump(rf, path)
    with pytest.raises(ModelFileError, match="RandomForestClassifier, not a pixelforest model"):
        load_model(path)


def test_future_format_version_is_refused(fitted, tmp_path):
    path = tmp_path / "m.skops"
    save_model(fitted[0], path)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    schema = json.loads(members["schema.json"])
    schema["content"]["format_version"]["content"] = json.dumps(FORMAT_VERSION + 1)
    members["schema.json"] = json.dumps(schema).encode()
    future = tmp_path / "future.skops"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    future.write_bytes(buf.getvalue())
    with pytest.raises(IncompatibleModelError, match="upgrade pixelforest"):
        load_model(future)
