"""OME-Zarr labels (pixelforest.io.ngff): NGFF 0.5 metadata, read back by zarr,
ome-zarr-py, ome-zarr-models (the spec's rules as pydantic models) and napari's
OME-Zarr reader; dask input written chunk by chunk; atomic writes."""

import importlib.util
import json
import threading
import warnings

import dask.array as da
import numpy as np
import pytest
import zarr

from pixelforest.errors import (
    InvalidImageError,
    UnsupportedFormatError,
    InvalidParameterError,
    OutputExistsError,
    ShapeMismatchError,
)
from pixelforest.io import images
from pixelforest.io.ngff import (
    PALETTE,
    add_ome_zarr_labels,
    create_ome_zarr_labels,
    label_colors,
    ngff_label_attrs,
    read_ome_zarr_labels,
    store_ome_zarr_labels,
    write_label_pyramid,
    write_ome_zarr_labels,
)

RNG = np.random.default_rng(7)


def _semantic(shape=(48, 60)):
    labels = np.ones(shape, np.uint8)
    labels[..., 5:20, 8:30] = 2
    labels[..., 30:44, 35:55] = 3
    return labels


def _instances(shape=(48, 60)):
    labels = np.zeros(shape, np.uint32)
    labels[5:20, 8:30] = 1
    labels[30:44, 35:55] = 2
    labels[2:9, 40:50] = 3
    return labels


def _attrs(path):
    return zarr.open_group(str(path), mode="r").attrs.asdict()


def _validate(path):
    """Check a store with ome-zarr-models (the spec's rules) when it is installed."""
    if importlib.util.find_spec("ome_zarr_models") is None:
        return
    from ome_zarr_models.v05.image import Image
    from ome_zarr_models.v05.labels import Labels

    Image.from_zarr(zarr.open_group(str(path), mode="r"))
    Labels.from_zarr(zarr.open_group(str(path / "labels"), mode="r"))


@pytest.fixture
def written(tmp_path):
    """An image with two channels (last) and its semantic labels, 3 levels."""
    image = RNG.integers(0, 4096, (48, 60, 2)).astype(np.uint16)
    labels = _semantic()
    path = write_ome_zarr_labels(
        tmp_path / "cells.ome.zarr", labels, image=image, channel_axis=-1,
        class_names={1: "background", 2: "nucleus", 3: "cytoplasm"},
        spacing=(0.5, 0.25), unit="µm", levels=3, chunks=(16, 32),
        metadata={"kind": "labels", "classes": [1, 2, 3], "foreground": 2})
    return path, image, labels


# ------------------------------------------------------------- required keys

def test_required_keys_of_the_spec(written):
    path, image, labels = written
    root = _attrs(path)["ome"]
    assert root["version"] == "0.5"
    (ms,) = root["multiscales"]
    assert [(a["name"], a["type"]) for a in ms["axes"]] == [
        ("c", "channel"), ("y", "space"), ("x", "space")]
    assert [a.get("unit") for a in ms["axes"]] == [None, "micrometer", "micrometer"]
    assert [d["path"] for d in ms["datasets"]] == ["0", "1", "2"]
    scales = [d["coordinateTransformations"] for d in ms["datasets"]]
    assert scales[0] == [{"type": "scale", "scale": [1.0, 0.5, 0.25]}]
    assert scales[2] == [{"type": "scale", "scale": [1.0, 2.0, 1.0]}]

    assert _attrs(path / "labels")["ome"] == {"version": "0.5", "labels": ["prediction"]}
    label = _attrs(path / "labels" / "prediction")
    ome = label["ome"]
    assert ome["version"] == "0.5"
    assert [a["name"] for a in ome["multiscales"][0]["axes"]] == ["y", "x"]
    assert ome["multiscales"][0]["datasets"][0]["coordinateTransformations"] == [
        {"type": "scale", "scale": [0.5, 0.25]}]
    il = ome["image-label"]
    assert il["source"] == {"image": "../../"}
    assert [c["label-value"] for c in il["colors"]] == [1, 2, 3]
    assert all(len(c["rgba"]) == 4 and all(0 <= v <= 255 for v in c["rgba"])
               for c in il["colors"])
    assert [c["rgba"][:3] for c in il["colors"]] == [list(p) for p in PALETTE[:3]]
    assert il["properties"] == [{"label-value": 1, "class": "background"},
                                {"label-value": 2, "class": "nucleus"},
                                {"label-value": 3, "class": "cytoplasm"}]
    # the source resolves to the image group
    source = (path / "labels" / "prediction" / il["source"]["image"]).resolve()
    assert source == path.resolve()
    assert label["pixelforest"]["foreground"] == 2
    # Zarr v3 arrays whose dimension names are the axes
    arr = zarr.open_array(str(path / "labels" / "prediction" / "0"), mode="r")
    assert arr.metadata.zarr_format == 3 and arr.metadata.dimension_names == ("y", "x")
    assert zarr.open_array(str(path / "0"), mode="r").metadata.dimension_names == ("c", "y", "x")
    json.dumps(label)  # plain JSON


def test_values_and_levels(written):
    path, image, labels = written
    back, info = read_ome_zarr_labels(path)
    np.testing.assert_array_equal(back, labels)
    assert back.dtype == labels.dtype
    assert info["name"] == "prediction" and info["names"] == ["prediction"]
    assert info["axes"] == "yx" and info["spacing"] == (0.5, 0.25)
    assert info["units"] == ("micrometer", "micrometer")
    assert info["class_names"] == {1: "background", 2: "nucleus", 3: "cytoplasm"}
    assert info["colors"][2] == (*PALETTE[1], 255)
    assert info["levels"] == 3 and info["source"] == "../../"
    assert info["metadata"]["kind"] == "labels"
    coarse, coarse_info = read_ome_zarr_labels(path, level=2)
    np.testing.assert_array_equal(coarse, labels[::4, ::4])  # pixels kept, never mixed
    assert coarse_info["spacing"] == (2.0, 1.0)
    # the image: channels first as NGFF orders them, values as they were
    np.testing.assert_array_equal(images.imread(path), np.moveaxis(image, -1, 0))
    np.testing.assert_array_equal(images.imread(path, level=1),
                                  np.moveaxis(image, -1, 0)[:, ::2, ::2])
    # pixelforest's own readers find the labels and their metadata
    np.testing.assert_array_equal(images.imread(path / "labels" / "prediction"), labels)
    assert images.read_metadata(path / "labels" / "prediction")["foreground"] == 2
    lazy, _ = read_ome_zarr_labels(path, lazy=True)
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), labels)


def test_valid_for_ome_zarr_models(written, tmp_path):
    """ome-zarr-models implements the spec's rules (required keys, types, matching
    colour and property values, label dtypes, axes vs. transforms)."""
    models = pytest.importorskip("ome_zarr_models", reason="ome-zarr-models not installed")
    from ome_zarr_models.v05.image import Image
    from ome_zarr_models.v05.image_label import ImageLabel
    from ome_zarr_models.v05.labels import Labels

    path, _, _ = written
    assert isinstance(models.open_ome_zarr(zarr.open_group(str(path), mode="r")), Image)
    labels = Labels.from_zarr(zarr.open_group(str(path / "labels"), mode="r"))
    assert labels.label_paths == ["prediction"]
    label = ImageLabel.from_zarr(zarr.open_group(str(path / "labels" / "prediction"), mode="r"))
    assert [p.label_value for p in label.attributes.ome.image_label.properties] == [1, 2, 3]
    # instance labels without an image: the root is the label image
    solo = write_ome_zarr_labels(tmp_path / "solo.ome.zarr", _instances())
    ImageLabel.from_zarr(zarr.open_group(str(solo), mode="r"))


def test_read_by_ome_zarr_py(written):
    pytest.importorskip("ome_zarr", reason="ome-zarr not installed")
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    path, image, labels = written
    nodes = list(Reader(parse_url(str(path)))())
    by_path = {n.zarr.path.rstrip("/").split("/")[-1]: n for n in nodes}
    np.testing.assert_array_equal(by_path["cells.ome.zarr"].data[0], np.moveaxis(image, -1, 0))
    label = by_path["prediction"]
    np.testing.assert_array_equal(label.data[0], labels)
    assert len(label.data) == 3
    assert label.metadata["properties"][2] == {"class": "nucleus"}
    assert label.metadata["color"][2] == pytest.approx([c / 255 for c in (*PALETTE[1], 255)])


# NGFF has no default colour: napari says values without one are transparent
@pytest.mark.filterwarnings("ignore:color_dict did not provide a default color:UserWarning")
def test_opened_as_labels_by_napari(written, capsys):
    """napari's OME-Zarr reader gives an image layer and a Labels layer with the scale,
    class colours and class names, which napari accepts (no viewer needed)."""
    reader = pytest.importorskip("napari_ome_zarr", reason="napari-ome-zarr not installed")
    from napari.layers import Labels

    path, _, labels = written
    layers = reader.napari_get_reader(str(path))()
    kinds = [kind for _, _, kind in layers]
    assert kinds == ["image", "labels"]
    data, meta, _ = layers[1]
    np.testing.assert_array_equal(np.asarray(data[0]), labels)
    assert meta["scale"] == [0.5, 0.25]
    assert meta["properties"]["class"] == ["background", "nucleus", "cytoplasm"]
    assert sorted(meta["colormap"]) == [1, 2, 3]
    layer = Labels(data, **{k: v for k, v in meta.items() if k != "visible"})
    assert layer.scale.tolist() == [0.5, 0.25]
    np.testing.assert_allclose(layer.colormap.map(np.array([2]))[0],
                               [c / 255 for c in (*PALETTE[1], 255)], atol=1e-6)


def test_reads_ngff_04_written_by_ome_zarr_py(tmp_path):
    """A 0.4 store (Zarr v2) as ome-zarr-py writes it."""
    pytest.importorskip("ome_zarr", reason="ome-zarr not installed")
    from ome_zarr.format import FormatV04

    with warnings.catch_warnings():  # ome-zarr-py's own deprecated default (its Scaler)
        warnings.simplefilter("ignore", DeprecationWarning)
        from ome_zarr.writer import write_image, write_labels

    image = RNG.integers(0, 255, (32, 40)).astype(np.uint8)
    labels = _instances((32, 40))
    group = zarr.open_group(str(tmp_path / "v04.ome.zarr"), mode="w", zarr_format=2)
    scale = {"y": 0.3, "x": 0.3}
    write_image(image, group, axes="yx", fmt=FormatV04(), scale=scale, scale_factors=())
    write_labels(labels, group, name="nuclei", axes="yx", fmt=FormatV04(), scale=scale,
                 scaler=None, scale_factors=(),
                 label_metadata={"colors": [{"label-value": 1, "rgba": [1, 2, 3, 255]}],
                                 "properties": [{"label-value": 1, "class": "nucleus"}]})
    back, info = read_ome_zarr_labels(tmp_path / "v04.ome.zarr")
    np.testing.assert_array_equal(back, labels)
    assert info["name"] == "nuclei" and info["version"] == "0.4"
    assert info["spacing"] == (0.3, 0.3)
    assert info["class_names"] == {1: "nucleus"} and info["colors"] == {1: (1, 2, 3, 255)}


# ------------------------------------------------------------- kinds of labels

def test_instances_coloured_by_class(tmp_path):
    labels = _instances()
    path = write_ome_zarr_labels(tmp_path / "i.ome.zarr", labels,
                                 image=np.zeros(labels.shape, np.float32), name="nuclei",
                                 class_names={1: "mitotic", 2: "normal", 3: "mitotic"})
    _validate(path)
    _, info = read_ome_zarr_labels(path)
    assert info["name"] == "nuclei"
    assert info["colors"][1] == info["colors"][3] != info["colors"][2]
    assert info["class_names"] == {1: "mitotic", 2: "normal", 3: "mitotic"}


def test_instances_without_classes_from_dask_have_no_colours(tmp_path):
    """Viewers colour unnamed objects themselves; a dask array is not scanned for values."""
    labels = da.from_array(_instances(), chunks=(20, 25))
    path = write_ome_zarr_labels(tmp_path / "i.ome.zarr", labels, image=np.ones((48, 60)))
    _validate(path)
    il = _attrs(path / "labels" / "prediction")["ome"]["image-label"]
    assert "colors" not in il and "properties" not in il
    assert il["source"] == {"image": "../../"}


def test_default_names_of_semantic_values(tmp_path):
    labels = _semantic() - 1  # 0, 1, 2
    _, info = read_ome_zarr_labels(write_ome_zarr_labels(tmp_path / "s.ome.zarr", labels))
    assert info["class_names"] == {0: "background", 1: "class 1", 2: "class 2"}
    assert info["colors"][0] == (0, 0, 0, 0)  # background transparent


def test_3d_anisotropic_and_time_axes(tmp_path):
    labels = np.zeros((4, 16, 20), np.uint16)
    labels[1:3, 4:10, 5:12] = 5
    image = RNG.normal(size=(4, 16, 20)).astype(np.float32)
    path = write_ome_zarr_labels(tmp_path / "z.ome.zarr", labels, image=image,
                                 spacing=(2.0, 0.5, 0.5), levels=2)
    _validate(path)
    back, info = read_ome_zarr_labels(path, level=1)
    np.testing.assert_array_equal(back, labels[:, ::2, ::2])  # z is never halved
    assert info["axes"] == "zyx" and info["spacing"] == (2.0, 1.0, 1.0)
    np.testing.assert_array_equal(images.imread(path), image)  # float32 as it was

    series = np.stack([labels, labels])
    path = write_ome_zarr_labels(tmp_path / "t.ome.zarr", series, axes="tzyx",
                                 image=np.stack([image, image]), spacing=(2.0, 0.5, 0.5))
    _validate(path)
    ms = _attrs(path)["ome"]["multiscales"][0]
    assert [a["type"] for a in ms["axes"]] == ["time", "space", "space", "space"]
    _, info = read_ome_zarr_labels(path)
    assert info["axes"] == "tzyx" and info["spacing"] == (2.0, 0.5, 0.5)


def test_custom_colours(tmp_path):
    path = write_ome_zarr_labels(tmp_path / "c.ome.zarr", _semantic(),
                                 class_names={1: "bg", 2: "a", 3: "b"},
                                 colors={1: "#00000000", 2: (10, 20, 30)})
    _, info = read_ome_zarr_labels(path)
    assert info["colors"] == {1: (0, 0, 0, 0), 2: (10, 20, 30, 255), 3: (*PALETTE[2], 255)}


def test_label_colors_cycle_through_the_palette():
    colours = label_colors({v: f"c{v}" for v in range(1, 10)})
    assert colours[1] == colours[8] == [*PALETTE[0], 255]
    assert len({tuple(c) for c in colours.values()}) == len(PALETTE)


# ------------------------------------------------------------- dask, streaming, atomic

class _Recording:
    """An array-like that records the size of every read (to prove block-wise writing)."""

    def __init__(self, data):
        self.data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim
        self.reads = []
        self._lock = threading.Lock()

    def __getitem__(self, key):
        block = self.data[key]
        with self._lock:
            self.reads.append(block.size)
        return block


def test_dask_written_chunk_by_chunk(tmp_path):
    labels = RNG.integers(0, 50, (200, 260)).astype(np.uint32)
    source = _Recording(labels)
    lazy = da.from_array(source, chunks=(37, 53), asarray=True, lock=False)
    path = write_ome_zarr_labels(tmp_path / "d.ome.zarr", lazy, chunks=(64, 64),
                                 class_names={0: "background"})
    assert max(source.reads) <= 37 * 53  # the whole array is never read at once
    assert sum(source.reads) == labels.size  # every block read once
    arr = zarr.open_array(str(path / "0"), mode="r")
    assert arr.chunks == (64, 64) and arr.nchunks_initialized == arr.nchunks
    np.testing.assert_array_equal(arr[:], labels)


def test_streaming_api_block_by_block(tmp_path):
    """What a prediction writer does: lay out, write its own blocks, then the pyramid."""
    labels = _instances((64, 96))
    attrs = ngff_label_attrs(axes="yx", spacing=0.5, levels=2, class_names={1: "nucleus"})
    assert attrs["ome"]["image-label"]["properties"] == [{"label-value": 1, "class": "nucleus"}]
    store = tmp_path / "s.ome.zarr"
    target = create_ome_zarr_labels(store, shape=labels.shape, dtype=labels.dtype,
                                    image=da.zeros((64, 96), chunks=32, dtype=np.uint8),
                                    chunks=(32, 32), levels=2, spacing=0.5)
    assert target == store / "labels" / "prediction" / "0"
    for y in range(0, 64, 32):
        for x in range(0, 96, 32):
            block = zarr.open_array(str(target), mode="r+").with_config(
                {"write_empty_chunks": True})
            block[y:y + 32, x:x + 32] = labels[y:y + 32, x:x + 32]
    write_label_pyramid(store)
    np.testing.assert_array_equal(read_ome_zarr_labels(store)[0], labels)
    np.testing.assert_array_equal(read_ome_zarr_labels(store, level=1)[0], labels[::2, ::2])
    with pytest.raises(InvalidParameterError, match="already exists"):
        create_ome_zarr_labels(store, shape=labels.shape, dtype=labels.dtype)
    # store_ome_zarr_labels refuses what does not fit
    with pytest.raises(ShapeMismatchError):
        store_ome_zarr_labels(store, labels[:10])
    with pytest.raises(InvalidImageError, match="uint16"):
        store_ome_zarr_labels(store, labels.astype(np.uint16))


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "out.ome.zarr"
    write_ome_zarr_labels(path, _semantic())
    before = sorted(p.relative_to(path) for p in path.rglob("*"))

    def boom(block):
        raise RuntimeError("disk full")

    broken = da.from_array(_semantic(), chunks=(24, 30)).map_blocks(boom, dtype=np.uint8)
    with pytest.raises(RuntimeError, match="disk full"):
        write_ome_zarr_labels(path, broken)
    assert sorted(p.relative_to(path) for p in path.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ome.zarr"]
    np.testing.assert_array_equal(read_ome_zarr_labels(path)[0], _semantic())
    with pytest.raises(OutputExistsError):
        write_ome_zarr_labels(path, _semantic(), overwrite=False)


def test_add_labels_next_to_an_image(written):
    """A second label image into the same store: the image's axes and spacing, both listed."""
    path, image, labels = written
    before = sorted(p.relative_to(path) for p in (path / "0").rglob("*"))
    other = (labels == 2).astype(np.uint16) * 7
    add_ome_zarr_labels(path, da.from_array(other, chunks=(20, 20)), name="otsu",
                        class_names={0: "background", 7: "nucleus"})
    assert _attrs(path / "labels")["ome"]["labels"] == ["prediction", "otsu"]
    back, info = read_ome_zarr_labels(path, "otsu")
    np.testing.assert_array_equal(back, other)
    assert info["spacing"] == (0.5, 0.25) and info["units"] == ("micrometer", "micrometer")
    assert info["source"] == "../../" and info["levels"] == 3  # the image's levels
    np.testing.assert_array_equal(read_ome_zarr_labels(path, "otsu", level=2)[0],
                                  other[::4, ::4])
    np.testing.assert_array_equal(read_ome_zarr_labels(path, "prediction")[0], labels)
    assert sorted(p.relative_to(path) for p in (path / "0").rglob("*")) == before
    with pytest.raises(InvalidParameterError, match="2 label images"):
        read_ome_zarr_labels(path)
    with pytest.raises(OutputExistsError):
        add_ome_zarr_labels(path, other, name="otsu", overwrite=False)
    with pytest.raises(ShapeMismatchError, match=r"\(48, 60\)"):
        add_ome_zarr_labels(path, other[:10], name="small")
    assert not (path / "labels" / "small").exists()
    _validate(path)


def test_add_labels_to_an_image_written_by_ome_zarr_py(tmp_path):
    """Its own pyramid (odd sizes): each label level gets that level's shape and scale."""
    pytest.importorskip("ome_zarr", reason="ome-zarr not installed")
    from ome_zarr.writer import write_image

    image = RNG.integers(0, 255, (3, 51, 37)).astype(np.uint8)  # c, y, x
    group = zarr.open_group(str(tmp_path / "img.ome.zarr"), mode="w")
    write_image(image, group, axes="cyx", scale={"c": 1.0, "y": 0.4, "x": 0.4},
                scale_factors=(2, 4))
    labels = _instances((51, 37))
    add_ome_zarr_labels(tmp_path / "img.ome.zarr", labels, name="nuclei")
    _validate(tmp_path / "img.ome.zarr")
    ms = _attrs(tmp_path / "img.ome.zarr")["ome"]["multiscales"][0]
    for level, dataset in enumerate(ms["datasets"]):
        expected = zarr.open_array(str(tmp_path / "img.ome.zarr" / dataset["path"]))
        back, info = read_ome_zarr_labels(tmp_path / "img.ome.zarr", level=level)
        assert back.shape == expected.shape[1:]
        assert list(info["spacing"]) == dataset["coordinateTransformations"][0]["scale"][1:]
        label_ms = _attrs(tmp_path / "img.ome.zarr" / "labels" / "nuclei")["ome"]["multiscales"]
        assert label_ms[0]["datasets"][level]["coordinateTransformations"][1:] == [
            {"type": "translation", "translation": t["translation"][1:]}
            for t in dataset["coordinateTransformations"][1:]]
        assert set(np.unique(back)) <= set(np.unique(labels))  # values taken, not mixed
    np.testing.assert_array_equal(read_ome_zarr_labels(tmp_path / "img.ome.zarr")[0], labels)


def test_add_labels_refuses_what_is_not_an_ngff_05_image(tmp_path):
    solo = write_ome_zarr_labels(tmp_path / "solo.ome.zarr", _semantic())
    with pytest.raises(UnsupportedFormatError, match="0.5 image"):
        add_ome_zarr_labels(solo, _semantic())  # a label image, not an image
    group = zarr.open_group(str(tmp_path / "v2.zarr"), mode="w", zarr_format=2)
    group.attrs["multiscales"] = [{"version": "0.4", "axes": ["y", "x"],
                                   "datasets": [{"path": "0"}]}]
    with pytest.raises(UnsupportedFormatError, match="Zarr v3"):
        add_ome_zarr_labels(tmp_path / "v2.zarr", _semantic())


# ------------------------------------------------------------- bad input

@pytest.mark.parametrize("kwargs, error, match", [
    ({"labels": np.zeros((8, 8), np.float32)}, InvalidImageError, "integers"),
    ({"labels": np.zeros((0, 8), np.uint8)}, InvalidImageError, "empty"),
    ({"labels": np.zeros((2, 2, 8, 8), np.uint8)}, InvalidImageError, "axes="),
    ({"image": np.zeros((8, 9))}, ShapeMismatchError, "same pixels"),
    ({"image": np.zeros((8, 8, 3))}, InvalidParameterError, "channel_axis"),
    ({"image": np.zeros((3, 8, 9)), "channel_axis": 0}, ShapeMismatchError, "channels"),
    ({"spacing": (1.0, 2.0, 3.0)}, InvalidParameterError, "spacing"),
    ({"spacing": -1}, InvalidParameterError, "spacing"),
    ({"unit": "parsnip"}, InvalidParameterError, "micrometer"),
    ({"axes": "xy"}, InvalidParameterError, "order"),
    ({"levels": 5}, InvalidParameterError, "levels"),
    ({"chunks": (0, 4)}, InvalidParameterError, "chunks"),
    ({"name": "../up"}, InvalidParameterError, "folder name"),
    ({"class_names": {1: "a"}, "colors": {2: (1, 2, 3)}}, InvalidParameterError, "no class"),
    ({"class_names": {1: "a"}, "colors": {1: (1, 2, 300)}}, InvalidParameterError, "0-255"),
    ({"class_names": {"one": "a"}}, InvalidParameterError, "integers"),
])
def test_bad_input_is_refused_before_writing(tmp_path, kwargs, error, match):
    kwargs = {"labels": np.zeros((8, 8), np.uint8), **kwargs}
    with pytest.raises(error, match=match):
        write_ome_zarr_labels(tmp_path / "x.ome.zarr", kwargs.pop("labels"), **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_reading_errors(tmp_path, written):
    path, _, _ = written
    with pytest.raises(InvalidParameterError, match="no label image 'other'"):
        read_ome_zarr_labels(path, "other")
    with pytest.raises(InvalidParameterError, match="no level 3"):
        read_ome_zarr_labels(path, level=3)
    images.imwrite(tmp_path / "plain.zarr", np.zeros((4, 4), np.uint8))
    zarr.open_group(str(tmp_path / "group.zarr"), mode="w")
    with pytest.raises(InvalidParameterError, match="holds no labels"):
        read_ome_zarr_labels(tmp_path / "group.zarr")
    with pytest.raises(FileNotFoundError):
        read_ome_zarr_labels(tmp_path / "missing.ome.zarr")
