import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import skops.io as sio
from sklearn.ensemble import RandomForestClassifier

from pixelforest.classify.classifier import PixelClassifier, default_estimator
from pixelforest.classify.scribbles import simulate_scribbles
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
    assert info["features"] == SPEC.to_dict() and info["normalize"] == fitted[0].normalize
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


# -- crafted files: trusted types, hostile tree arrays ----------------------

ADVICE = "damaged or was crafted; do not use it, retrain or ask for a fresh copy"


def _load_payload(path):
    """The payload of a model file, as skops loads it (bypassing pixelforest's checks)."""
    return sio.load(path, trusted=sio.get_untrusted_types(file=path))


def _retree(member, edit, *, n_features=None, n_classes=None, n_outputs=1):
    """Replace ``member.tree_`` by a copy whose state ``edit(nodes, values, state)`` changed."""
    from sklearn.tree._tree import Tree

    old = member.tree_
    state = old.__getstate__()
    state["nodes"], state["values"] = state["nodes"].copy(), state["values"].copy()
    state = edit(state["nodes"], state["values"], state) or state
    new = Tree(old.n_features if n_features is None else n_features,
               np.asarray([old.max_n_classes if n_classes is None else n_classes] * n_outputs,
                          dtype=np.intp), n_outputs)
    new.__setstate__(state)
    member.tree_ = new


def _internal(tree):
    return np.flatnonzero(tree.children_left != -1)


def _set(field, node, value):
    """An edit setting ``nodes[field][node(nodes)] = value``."""
    def edit(nodes, values, state):
        nodes[field][node(nodes)] = value
    return edit


def _root(nodes):
    return 0


def _first_leaf(nodes):
    return int(np.flatnonzero(nodes["left_child"] == -1)[0])


def _deep_internal(nodes):
    """An internal node below the root (the fixture's trees have some)."""
    left = nodes["left_child"]
    return int(np.flatnonzero(left[1:] != -1)[0] + 1)


def _tree_case(edit, **kw):
    def tamper(payload):  # the deepest tree, so that every edit has nodes to work on
        trees = payload["estimator"].estimators_
        deepest = max(range(len(trees)), key=lambda i: trees[i].tree_.max_depth)
        assert trees[deepest].tree_.max_depth >= 2
        _retree(trees[deepest], edit, **kw)
    return tamper


def _attr_case(attr, value, *, member=None):
    def tamper(payload):
        est = payload["estimator"]
        setattr(est if member is None else est.estimators_[member], attr, value)
    return tamper


def _two_parents(nodes, values, state):
    left, right = nodes["left_child"], nodes["right_child"]
    parent = {int(c): p for p in range(len(nodes)) if left[p] != -1 for c in (left[p], right[p])}
    d = next(n for n in range(1, len(nodes)) if left[n] != -1 and parent[n] != 0)
    left[d] = parent[d]  # points up to a node below the root: a cycle


def _shared(nodes, values, state):
    nodes["right_child"][0] = nodes["left_child"][0]


def _detach(nodes, values, state):
    d = _deep_internal(nodes)
    nodes["left_child"][d] = nodes["right_child"][d] = -1


def _no_trees(payload):
    payload["estimator"].estimators_ = []


def _foreign_member(payload):
    from sklearn.linear_model import LogisticRegression

    payload["estimator"].estimators_[1] = LogisticRegression()


CRAFTED = {
    "feature past the features": (_tree_case(_set("feature", _root, 10_000)),
                                  "node 0: it tests feature 10000"),
    "negative feature": (_tree_case(_set("feature", _root, -7)), "node 0: it tests feature -7"),
    "child out of range": (_tree_case(_set("left_child", _root, 1 << 40)),
                           "left child 1099511627776 is out of range"),
    "child is the root": (_tree_case(_set("right_child", _root, 0)),
                          "right child points back to the root"),
    "cycle": (_tree_case(_two_parents), "is the child of 2 nodes"),
    "node reached twice": (_tree_case(_shared), "is the child of 2 nodes"),
    "leaf with a child": (_tree_case(_set("right_child", _first_leaf, 1)),
                          "is a leaf (left child -1) but its right child is 1"),
    "detached nodes": (_tree_case(_detach), "cannot be reached from the root"),
    "NaN threshold": (_tree_case(_set("threshold", _root, np.nan)), "threshold is nan"),
    "infinite threshold": (_tree_case(_set("threshold", _deep_internal, np.inf)),
                           "threshold is inf"),
    "too many class columns": (
        _tree_case(lambda n, v, s: {**s, "values": np.concatenate([v, v[:, :, :1]], axis=2)},
                   n_classes=3), "3 class column(s), but the model has 2 classes"),
    "tree with two outputs": (
        _tree_case(lambda n, v, s: {**s, "values": np.concatenate([v, v], axis=1)},
                   n_outputs=2), "it has 2 outputs"),
    "tree records other features": (_tree_case(lambda n, v, s: None, n_features=999),
                                    "records 999 feature(s)"),
    "forest with two outputs": (_attr_case("n_outputs_", 2), "predicts 2 outputs"),
    "forest features": (_attr_case("n_features_in_", 999), "expects 999 features"),
    "member features": (_attr_case("n_features_in_", 999, member=4),
                        "tree 4 of 8: it expects 999 features"),
    "forest classes": (_attr_case("classes_", np.array([1, 7])), "classes [1, 7] differ"),
    "forest n_classes_": (_attr_case("n_classes_", 5), "n_classes_ 5"),
    "member n_classes_": (_attr_case("n_classes_", 3, member=0), "tree 0 of 8"),
    "no trees": (_no_trees, "holds no fitted trees"),
    "foreign member": (_foreign_member, "is a LogisticRegression, not a decision tree"),
}


@pytest.fixture(scope="module")
def deep():
    """A model whose trees are several levels deep (labels that overlap in intensity)."""
    rng = np.random.default_rng(5)
    image = rng.normal(0, 1, (48, 48)).astype(np.float32)
    labels = np.zeros(image.shape, np.uint8)
    picked = rng.random(image.shape) < 0.15
    labels[picked] = rng.integers(1, 3, picked.sum())
    clf = PixelClassifier(FeatureSpec(sigmas=(1,)), estimator=default_estimator(n_estimators=8),
                          random_state=0).fit(image, labels)
    assert min(t.tree_.max_depth for t in clf.estimator_.estimators_) >= 3
    return clf, image


@pytest.fixture(scope="module")
def saved(deep, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "m.skops"
    save_model(deep[0], path)
    return path


def _craft(saved, tmp_path, tamper, name="crafted.skops"):
    payload = _load_payload(saved)
    tamper(payload)
    out = tmp_path / name
    sio.dump(payload, out, compression=zipfile.ZIP_DEFLATED)
    return out


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_trees_are_refused(case, saved, tmp_path, capsys):
    from pixelforest.cli.main import main

    tamper, expected = CRAFTED[case]
    crafted = _craft(saved, tmp_path, tamper)
    for load in (load_model, model_info):
        with pytest.raises(ModelFileError, match=ADVICE) as err:
            load(crafted)
        message = str(err.value)
        assert "\n" not in message and expected in message, message
        assert message.startswith(str(crafted))
    capsys.readouterr()
    assert main(["info", str(crafted)]) == 2
    out, errs = capsys.readouterr()
    assert out == "" and errs.count("\n") == 1 and "Traceback" not in errs
    assert errs.startswith("pixelforest: error: ") and expected in errs


def test_crafted_node_count_in_the_schema(saved, tmp_path):
    """node_count edited in the file itself, below the number of stored nodes."""
    with zipfile.ZipFile(saved) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    schema = json.loads(members["schema.json"])
    tree = (schema["content"]["estimator"]["content"]["content"]["estimators_"]["content"][3]
            ["content"]["content"]["tree_"]["content"]["content"])
    tree["node_count"]["content"] = json.dumps(json.loads(tree["node_count"]["content"]) - 1)
    tree["node_count"]["__id__"] = 1  # a node of its own (skops shares equal objects)
    members["schema.json"] = json.dumps(schema).encode()
    crafted = tmp_path / "count.skops"
    with zipfile.ZipFile(crafted, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(ModelFileError, match="tree 3 of 8: its node_count"):
        load_model(crafted)


def test_untampered_round_trip_still_identical(deep, saved, tmp_path):
    clf, rgb = deep
    # through skops and back untouched: still accepted, same bits
    again = load_model(_craft(saved, tmp_path, lambda payload: None))
    np.testing.assert_array_equal(again.predict_proba(rgb), clf.predict_proba(rgb))
    assert model_info(saved)["n_features"] == clf.n_features_in_


def test_non_forest_estimators_pass_untouched(tmp_path):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    image = rng.normal(0, 1, (40, 40)).astype(np.float32)
    image[10:30, 10:30] += 4
    labels = np.zeros(image.shape, np.uint8)
    labels[2, 2:38], labels[20, 14:26] = 1, 2
    clf = PixelClassifier(FeatureSpec(sigmas=(1,)), estimator=LogisticRegression(),
                          random_state=0).fit(image, labels)
    path = tmp_path / "lr.skops"
    save_model(clf, path)
    again = load_model(path)
    np.testing.assert_array_equal(again.predict_proba(image), clf.predict_proba(image))
    assert model_info(path)["estimator"]["class"].endswith("LogisticRegression")


def test_split_placement_and_n_jobs_round_trip(fitted, tmp_path):
    from sklearn.base import clone

    clf, rgb = fitted
    other = clone(clf).set_params(split_placement="midpoint", n_jobs=2)
    other.fit(rgb, simulate_scribbles((clf.predict(rgb) == 2).astype(np.uint16)))
    path = tmp_path / "mid.skops"
    save_model(other, path)
    again = load_model(path)
    assert again.split_placement == "midpoint" and again.n_jobs == 2
    # the unfitted estimator parameter is a clone of the fitted one
    assert again.estimator is not again.estimator_
    assert again.estimator.get_params() == again.estimator_.get_params()
    assert not hasattr(again.estimator, "estimators_")
    # a file written before these parameters existed gets the defaults
    payload = _load_payload(path)
    del payload["params"]["split_placement"], payload["params"]["n_jobs"]
    old = tmp_path / "old.skops"
    sio.dump(payload, old)
    again = load_model(old)
    assert again.split_placement == "valley" and again.n_jobs is None


# -- resource limits: refused from the zip directory, nothing expanded -------

def _rewrite(saved, path, replace):
    """Copy model ``saved`` to ``path``, ``replace(zf_out, name, data)`` writing each member."""
    with zipfile.ZipFile(saved) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            replace(zout, info.filename, zin.read(info.filename))
    return path


def _npy_header(shape, dtype="<f8"):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


@pytest.fixture
def nothing_expanded(monkeypatch):
    """Count the bytes read from zip members; fail if skops is reached."""
    read = {"bytes": 0}
    original = zipfile.ZipExtFile.read

    def counting(self, n=-1):
        data = original(self, n)
        read["bytes"] += len(data)
        return data

    def never(*args, **kwargs):
        raise AssertionError("skops was asked to read a refused file")

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting)
    monkeypatch.setattr(sio, "load", never)
    monkeypatch.setattr(sio, "get_untrusted_types", never)
    yield read
    assert read["bytes"] < 1 << 20


def test_zip_bomb_member_is_refused_without_expanding(saved, tmp_path, nothing_expanded):
    # a real bomb: one array member replaced by 64 MiB of zeros behind a valid
    # .npy header (deflated to well under 100 kB); its name is still referenced
    size = 64 * 1024**2
    target = None

    def replace(zout, name, data):
        nonlocal target
        if target is None and name.endswith(".npy"):
            target = name
            header = _npy_header((size // 8,))
            with zout.open(name, "w", force_zip64=True) as fh:
                fh.write(header)
                zeros = bytes(1 << 20)
                for _ in range(size // len(zeros)):
                    fh.write(zeros)
        else:
            zout.writestr(name, data)

    bomb = _rewrite(saved, tmp_path / "bomb.skops", replace)
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(ModelFileError, match=f"member {target} expands .* to {size + 128} "
                                             r"\(more than 500x\).*crafted"):
        load_model(bomb)
    with pytest.raises(ModelFileError, match="more than 500x"):
        model_info(bomb)


def _declare_size(path, member, file_size):
    """Make the zip's central directory claim ``file_size`` bytes for ``member``."""
    data = bytearray(path.read_bytes())
    entry = data.find(b"PK\x01\x02" + data[data.find(b"PK\x01\x02") + 4:][:0])
    name = member.encode()
    while True:
        entry = data.find(b"PK\x01\x02", entry)
        name_len = int.from_bytes(data[entry + 28:entry + 30], "little")
        if data[entry + 46:entry + 46 + name_len] == name:
            break
        entry += 4
    data[entry + 24:entry + 28] = file_size.to_bytes(4, "little")
    path.write_bytes(bytes(data))


def test_declared_sizes_are_refused_before_reading(saved, tmp_path, nothing_expanded):
    # a schema.json declared to expand to 3.5 GiB: refused from the directory alone
    big = tmp_path / "schema-bomb.skops"
    big.write_bytes(saved.read_bytes())
    _declare_size(big, "schema.json", 7 << 29)
    with pytest.raises(ModelFileError, match=r"expand to 3758\d+ bytes, more than the limit"):
        load_model(big)
    with pytest.raises(ModelFileError, match="schema.json expands to 3758"):
        load_model(big, max_bytes=8 << 30)


def test_total_size_cap_is_a_keyword(saved, tmp_path):
    with pytest.raises(ModelFileError, match="more than the limit of 1000 .*max_bytes="):
        load_model(saved, max_bytes=1000)
    load_model(saved, max_bytes=10 << 20)
    for bad in (0, -1, 1.5, "2GB"):
        with pytest.raises(ValueError, match="max_bytes must be a positive"):
            load_model(saved, max_bytes=bad)


def test_npy_header_must_match_its_size(saved, tmp_path, nothing_expanded):
    # an array declared as 10**9 float64 (8 GB) in a member of a few bytes
    done = []

    def replace(zout, name, data):
        if not done and name.endswith(".npy"):
            done.append(name)
            data = _npy_header((10**9,)) + b"\0" * 16
        zout.writestr(name, data)

    crafted = _rewrite(saved, tmp_path / "shape.skops", replace)
    with pytest.raises(ModelFileError, match=r"declares an array of shape \(1000000000,\)"):
        load_model(crafted)


# -- newer versions warn ----------------------------------------------------

def _with_versions(saved, path, **versions):
    with zipfile.ZipFile(saved) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    schema = json.loads(members["schema.json"])
    entries = schema["content"]["versions"]["content"]
    for i, (package, version) in enumerate(versions.items()):
        entry = entries[package.replace("_", "-")]
        entry["content"] = json.dumps(version)
        entry["__id__"] = i + 1  # a node of its own (skops shares equal strings)
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("package, version", [("pixelforest", "99.0.0"),
                                              ("scikit_learn", "1.999.0"),
                                              ("scikit_learn", "2.0.0")])
def test_newer_versions_warn(saved, tmp_path, package, version, capsys):
    import sklearn

    from pixelforest import __version__
    from pixelforest.cli.main import main
    from pixelforest.errors import ModelVersionWarning

    name = package.replace("_", "-")
    installed = __version__ if name == "pixelforest" else sklearn.__version__
    path = _with_versions(saved, tmp_path / "newer.skops", **{package: version})
    with pytest.warns(ModelVersionWarning) as record:
        clf = load_model(path)
    message = str(record[0].message)
    assert f"{name} {version}" in message and f"installed {installed}" in message
    assert f"pip install -U {name}" in message
    assert record[0].filename == __file__  # points at the caller
    assert clf.model_info_["versions"][name] == version
    assert main(["info", str(path)]) == 0
    errs = capsys.readouterr().err
    assert errs.startswith("pixelforest: warning: ") and errs.count("\n") == 1


def test_same_or_older_versions_do_not_warn(saved, tmp_path):
    import warnings

    import sklearn

    major, minor = sklearn.__version__.split(".")[:2]
    path = _with_versions(saved, tmp_path / "older.skops", pixelforest="0.0.1",
                          scikit_learn=f"{major}.{minor}.999")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(path)
        load_model(saved)


def test_unchecked_compiled_internals_need_explicit_trust(tmp_path):
    # HistGradientBoosting's TreePredictor holds node arrays that compiled code
    # follows without bounds checks: not trusted unless the user names it
    from sklearn.ensemble import HistGradientBoostingClassifier

    from pixelforest import PixelClassifier
    from pixelforest.datasets import synthetic_nuclei
    from pixelforest.classify.scribbles import simulate_scribbles
    from pixelforest.errors import UntrustedModelError

    image, labels = synthetic_nuclei((64, 64), n=4, seed=0)
    clf = PixelClassifier(FeatureSpec(sigmas=(1,)),
                          estimator=HistGradientBoostingClassifier(max_iter=3))
    clf.fit(image, simulate_scribbles(labels, random_state=0))
    save_model(clf, tmp_path / "hgb.skops")
    with pytest.raises(UntrustedModelError, match="TreePredictor"):
        load_model(tmp_path / "hgb.skops")
    trusted = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
    again = load_model(tmp_path / "hgb.skops", trusted=trusted)
    np.testing.assert_array_equal(again.predict_proba(image), clf.predict_proba(image))


# -- the kind entry: pixel and object models in one format ------------------------

def test_pixel_files_record_their_kind_and_old_files_still_load(fitted, tmp_path):
    clf, rgb = fitted
    path = tmp_path / "m.skops"
    save_model(clf, path)
    assert _load_payload(path)["kind"] == "pixel"
    # a file written before the kind entry existed is a pixel model
    payload = _load_payload(path)
    del payload["kind"]
    old = tmp_path / "old.skops"
    sio.dump(payload, old)
    np.testing.assert_array_equal(load_model(old).predict_proba(rgb), clf.predict_proba(rgb))
    assert model_info(old)["classes"] == [1, 2]


def test_object_models_are_refused_by_load_model_and_info(tmp_path, capsys):
    import pandas as pd

    from pixelforest.cli.main import main
    from pixelforest.io.model_file import load_object_model
    from pixelforest.objects import ObjectClassifier

    table = pd.DataFrame({"label": [1, 2, 3], "area_physical": [5.0, 50.0, 6.0]})
    objects = ObjectClassifier(features=["area_physical"]).fit_table(table, [1, 2, 1])
    path = tmp_path / "objects.skops"
    save_model(objects, path)  # save_model hands an object classifier on
    assert load_object_model(path).predict_table(table).tolist() == [1, 2, 1]
    with pytest.raises(ModelFileError, match="holds an object classifier"):
        load_model(path)
    capsys.readouterr()
    assert main(["info", str(path)]) == 2
    out, errs = capsys.readouterr()
    assert out == "" and errs.count("\n") == 1 and "load_object_model" in errs
