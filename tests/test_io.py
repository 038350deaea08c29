import os
import pickle
import sys
import warnings

import numpy as np
import pytest
import tifffile
import zarr

from pixelforest.io import images as io
from pixelforest.errors import (
    CorruptFileError,
    ImageFileNotFoundError,
    InvalidImageError,
    InvalidParameterError,
    OutputExistsError,
    UnsupportedFormatError,
)
from pixelforest.io.images import imread, imread_lazy, imwrite

RNG = np.random.default_rng(42)


def _random(shape, dtype):
    if np.issubdtype(dtype, np.floating):
        return RNG.normal(size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def _leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


# ---------------------------------------------------------------- round trips

@pytest.mark.parametrize("suffix", [".tif", ".tiff", ".zarr"])
@pytest.mark.parametrize("shape, dtype", [
    ((17, 23), np.uint8),
    ((17, 23), np.uint16),          # 12-bit-like values stay as they are
    ((5, 17, 23), np.uint16),       # 3-D stack
    ((17, 23, 3), np.uint8),        # RGB
    ((17, 23, 4), np.uint16),       # RGBA
    ((4, 17, 23), np.float32),      # channel-first multichannel
    ((3, 5, 17, 23), np.int16),     # (C, Z, Y, X)
    ((17, 23, 3), np.float64),      # float with three columns: not RGB
])
def test_round_trip_tiff_and_zarr(tmp_path, suffix, shape, dtype):
    data = _random(shape, dtype)
    path = tmp_path / f"img{suffix}"
    imwrite(path, data)
    back = imread(path)
    assert back.dtype == data.dtype
    np.testing.assert_array_equal(back, data)
    lazy = imread_lazy(path)
    assert lazy.shape == data.shape and lazy.dtype == data.dtype
    np.testing.assert_array_equal(lazy.compute(), data)
    assert _leftovers(tmp_path, {path.name}) == []


def test_tiff_rgb_is_stored_as_rgb(tmp_path):
    data = _random((9, 11, 3), np.uint8)
    imwrite(tmp_path / "rgb.tif", data)
    with tifffile.TiffFile(tmp_path / "rgb.tif") as tif:
        assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.RGB


def test_tiff_uint16_values_not_rescaled(tmp_path):
    data = np.array([[0, 1, 4095], [100, 200, 300]], dtype=np.uint16)
    imwrite(tmp_path / "a.tif", data)
    assert imread(tmp_path / "a.tif").max() == 4095


@pytest.mark.parametrize("shape, dtype", [
    ((20, 30), np.uint8), ((20, 30), np.uint16), ((20, 30, 3), np.uint8),
])
def test_round_trip_png(tmp_path, shape, dtype):
    data = _random(shape, dtype)
    imwrite(tmp_path / "a.png", data)
    back = imread(tmp_path / "a.png")
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, data)
    np.testing.assert_array_equal(imread_lazy(tmp_path / "a.png").compute(), data)


def test_png_rgba_drops_alpha(tmp_path):
    data = _random((20, 30, 4), np.uint8)
    imwrite(tmp_path / "rgba.png", data)
    back = imread(tmp_path / "rgba.png")
    np.testing.assert_array_equal(back, data[..., :3])
    lazy = imread_lazy(tmp_path / "rgba.png")
    assert lazy.shape == (20, 30, 3)
    np.testing.assert_array_equal(lazy.compute(), data[..., :3])


def test_jpeg_round_trip_is_close(tmp_path):
    yy, xx = np.mgrid[:32, :48]
    smooth = (yy * 4 + xx * 2).astype(np.uint8)
    imwrite(tmp_path / "a.jpg", smooth)
    back = imread(tmp_path / "a.jpg")
    assert back.shape == smooth.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - smooth).max() <= 4  # lossy, but close
    rgb = np.stack([smooth] * 3, axis=-1)
    imwrite(tmp_path / "b.jpeg", rgb)
    assert imread(tmp_path / "b.jpeg").shape == (32, 48, 3)


def test_as_gray_grey_saved_as_rgb(tmp_path):
    grey = _random((20, 30), np.uint8)
    imwrite(tmp_path / "g.png", np.stack([grey] * 3 + [np.full_like(grey, 255)], axis=-1))
    assert imread(tmp_path / "g.png").shape == (20, 30, 3)  # only if asked
    np.testing.assert_array_equal(imread(tmp_path / "g.png", as_gray=True), grey)
    imwrite(tmp_path / "g.tif", np.stack([grey] * 3, axis=-1))
    np.testing.assert_array_equal(imread(tmp_path / "g.tif", as_gray=True), grey)
    imwrite(tmp_path / "plain.png", grey)
    np.testing.assert_array_equal(imread(tmp_path / "plain.png", as_gray=True), grey)


def test_as_gray_refuses_colour(tmp_path):
    imwrite(tmp_path / "c.png", _random((20, 30, 3), np.uint8))
    with pytest.raises(InvalidImageError, match="channel_axis=-1"):
        imread(tmp_path / "c.png", as_gray=True)


def test_bool_written_as_uint8(tmp_path):
    mask = RNG.random((10, 12)) > 0.5
    for suffix in (".tif", ".png", ".zarr"):
        imwrite(tmp_path / f"m{suffix}", mask)
        back = imread(tmp_path / f"m{suffix}")
        assert back.dtype == np.uint8
        np.testing.assert_array_equal(back, mask)


def test_compression(tmp_path):
    data = np.zeros((64, 64), np.uint16)
    imwrite(tmp_path / "z.tif", data, compression="zlib")
    imwrite(tmp_path / "u.tif", data)
    assert (tmp_path / "z.tif").stat().st_size < (tmp_path / "u.tif").stat().st_size
    np.testing.assert_array_equal(imread(tmp_path / "z.tif"), data)
    for name in ("zstd", "gzip", "blosc", "none"):
        imwrite(tmp_path / f"{name}.zarr", data + 3, compression=name)
        np.testing.assert_array_equal(imread(tmp_path / f"{name}.zarr"), data + 3)
    with pytest.raises(UnsupportedFormatError, match="zstd"):
        imwrite(tmp_path / "x.zarr", data, compression="lz77")
    with pytest.raises(UnsupportedFormatError, match="zlib"):
        imwrite(tmp_path / "x.tif", data, compression="no-such-codec")
    with pytest.raises(UnsupportedFormatError, match="compression"):
        imwrite(tmp_path / "x.png", data.astype(np.uint8), compression="zlib")
    assert not (tmp_path / "x.tif").exists() and not (tmp_path / "x.zarr").exists()


def test_bigtiff_when_large(tmp_path, monkeypatch):
    data = _random((32, 32), np.uint16)
    imwrite(tmp_path / "small.tif", data)
    with tifffile.TiffFile(tmp_path / "small.tif") as tif:
        assert not tif.is_bigtiff
    monkeypatch.setattr(io, "_BIGTIFF_THRESHOLD", data.nbytes - 1)
    imwrite(tmp_path / "big.tif", data)
    with tifffile.TiffFile(tmp_path / "big.tif") as tif:
        assert tif.is_bigtiff
    np.testing.assert_array_equal(imread(tmp_path / "big.tif"), data)


# ---------------------------------------------------------------- Zarr / OME-Zarr

def test_zarr_chunks_written(tmp_path):
    imwrite(tmp_path / "c.zarr", np.zeros((100, 80), np.float32), chunks=(32, 40))
    assert zarr.open_array(tmp_path / "c.zarr", mode="r").chunks == (32, 40)
    assert imread_lazy(tmp_path / "c.zarr").chunksize == (32, 40)
    assert imread_lazy(tmp_path / "c.zarr", chunks=(50, 80)).chunksize == (50, 80)


def test_zarr_v2_array_and_one_array_group(tmp_path):
    data = _random((30, 20), np.uint16)
    z = zarr.create_array(store=str(tmp_path / "v2.zarr"), shape=data.shape,
                          dtype=data.dtype, chunks=(10, 10), zarr_format=2)
    z[...] = data
    np.testing.assert_array_equal(imread(tmp_path / "v2.zarr"), data)
    np.testing.assert_array_equal(imread_lazy(tmp_path / "v2.zarr").compute(), data)
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("raw", shape=data.shape, dtype=data.dtype, chunks=(16, 16))[...] = data
    np.testing.assert_array_equal(imread(tmp_path / "g.zarr"), data)
    np.testing.assert_array_equal(imread(tmp_path / "g.zarr" / "raw"), data)


def test_zarr_group_with_several_arrays_needs_a_choice(tmp_path):
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("a", shape=(4, 4), dtype="u1")
    group.create_array("b", shape=(4, 4), dtype="u1")
    with pytest.raises(UnsupportedFormatError, match=r"several arrays \(a, b\)"):
        imread(tmp_path / "g.zarr")


def _write_ome_zarr(path, data, *, zarr_format=2):
    """A small OME-Zarr (v0.4 with zarr v2, v0.5 with zarr v3) with 3 levels."""
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    levels = [data, data[::2, ::2], data[::4, ::4]]
    for i, level in enumerate(levels):
        group.create_array(f"s{i}", shape=level.shape, dtype=level.dtype,
                           chunks=(16, 16))[...] = level
    multiscales = [{
        "version": "0.4",
        "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
        "datasets": [
            {"path": f"s{i}", "coordinateTransformations": [
                {"type": "scale", "scale": [2.0**i, 2.0**i]}]}
            for i in range(3)
        ],
    }]
    if zarr_format == 2:
        group.attrs["multiscales"] = multiscales
    else:
        multiscales[0].pop("version")
        group.attrs["ome"] = {"version": "0.5", "multiscales": multiscales}
    return levels


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_levels(tmp_path, zarr_format):
    data = _random((64, 48), np.uint16)
    levels = _write_ome_zarr(tmp_path / "img.ome.zarr", data, zarr_format=zarr_format)
    for i, level in enumerate(levels):
        np.testing.assert_array_equal(imread(tmp_path / "img.ome.zarr", level=i), level)
        lazy = imread_lazy(tmp_path / "img.ome.zarr", level=i)
        np.testing.assert_array_equal(lazy.compute(), level)
    with pytest.raises(InvalidParameterError, match="has 3"):
        imread(tmp_path / "img.ome.zarr", level=3)


def test_bioformats2raw_layout(tmp_path):
    data = _random((32, 32), np.uint8)
    root = zarr.open_group(str(tmp_path / "b.zarr"), mode="w", zarr_format=2)
    root.attrs["bioformats2raw.layout"] = 3
    _write_ome_zarr(tmp_path / "b.zarr" / "0", data)
    np.testing.assert_array_equal(imread(tmp_path / "b.zarr"), data)


# ---------------------------------------------------------------- lazy reading

def test_lazy_zarr_reads_nothing_until_computed(tmp_path):
    path = tmp_path / "l.zarr"
    imwrite(path, np.zeros((40, 40), np.uint8), chunks=(20, 20))
    lazy = imread_lazy(path)
    zarr.open_array(str(path), mode="r+")[0, 0] = 7  # changed after opening
    assert int(lazy[0, 0].compute()) == 7


@pytest.mark.parametrize("tile", [None, (16, 16)])
def test_lazy_tiff_reads_nothing_until_computed(tmp_path, tile):
    path = tmp_path / "l.tif"
    data = _random((6, 48, 64), np.uint16)
    tifffile.imwrite(path, data, tile=tile, photometric="minisblack")
    lazy = imread_lazy(path, chunks=(1, 16, 32))
    assert lazy.shape == data.shape and lazy.dtype == data.dtype
    assert lazy.numblocks == (6, 3, 2)
    # replace the pixels (same layout) after opening: the lazy array sees them
    changed = data[::-1].copy()
    tifffile.imwrite(path, changed, tile=tile, photometric="minisblack")
    assert int(lazy[5, 47, 63].compute()) == changed[5, 47, 63]
    np.testing.assert_array_equal(lazy.compute(), changed)


def test_lazy_tiff_is_picklable_for_distributed(tmp_path):
    data = _random((30, 40), np.uint8)
    imwrite(tmp_path / "p.tif", data)
    lazy = imread_lazy(tmp_path / "p.tif", chunks=(10, 20))
    again = pickle.loads(pickle.dumps(lazy))
    np.testing.assert_array_equal(again.compute(scheduler="synchronous"), data)


def test_lazy_tiff_pyramid_level(tmp_path):
    data = _random((64, 64), np.uint8)
    with tifffile.TiffWriter(tmp_path / "pyr.tif") as tif:
        tif.write(data, subifds=1, photometric="minisblack")
        tif.write(data[::2, ::2], subfiletype=1, photometric="minisblack")
    np.testing.assert_array_equal(imread(tmp_path / "pyr.tif", level=1), data[::2, ::2])
    np.testing.assert_array_equal(imread_lazy(tmp_path / "pyr.tif", level=1).compute(),
                                  data[::2, ::2])
    with pytest.raises(InvalidParameterError, match="level"):
        imread(tmp_path / "pyr.tif", level=2)
    with pytest.raises(InvalidParameterError, match="level"):
        imread_lazy(tmp_path / "pyr.tif", level=2)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("reader", [imread, imread_lazy])
def test_missing_file(tmp_path, reader):
    with pytest.raises(ImageFileNotFoundError, match="does not exist"):
        reader(tmp_path / "nope.tif")


@pytest.mark.parametrize("reader", [imread, imread_lazy])
def test_unsupported_extension(tmp_path, reader):
    (tmp_path / "a.bmp").write_bytes(b"BM")
    with pytest.raises(UnsupportedFormatError, match=r"\.tif, \.tiff, \.png"):
        reader(tmp_path / "a.bmp")
    with pytest.raises(UnsupportedFormatError, match="use one of"):
        imwrite(tmp_path / "out.bmp", np.zeros((3, 3), np.uint8))


@pytest.mark.parametrize("reader", [imread, imread_lazy])
def test_truncated_and_corrupt_tiff(tmp_path, reader):
    imwrite(tmp_path / "ok.tif", _random((64, 64), np.uint16))
    full = (tmp_path / "ok.tif").read_bytes()
    (tmp_path / "half.tif").write_bytes(full[: len(full) // 2])
    (tmp_path / "head.tif").write_bytes(full[:100])
    (tmp_path / "junk.tif").write_bytes(b"this is not a tiff" * 10)
    (tmp_path / "empty.tif").write_bytes(b"")
    # a plain tifffile file cut inside its first IFD parses as an image with no
    # data (zarr then raises NotImplementedError): still a corrupt file
    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((64, 64), np.uint16))
    (tmp_path / "cut.tif").write_bytes((tmp_path / "plain.tif").read_bytes()[:100])
    for name in ("half.tif", "head.tif", "junk.tif", "empty.tif", "cut.tif"):
        with pytest.raises(CorruptFileError, match=f"{name}.*truncated"):
            reader(tmp_path / name).__array__()


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_png_and_jpeg(tmp_path, suffix):
    imwrite(tmp_path / f"ok{suffix}", _random((64, 64, 3), np.uint8))
    full = (tmp_path / f"ok{suffix}").read_bytes()
    (tmp_path / f"half{suffix}").write_bytes(full[: len(full) // 2])
    (tmp_path / f"junk{suffix}").write_bytes(b"garbage" * 20)
    with pytest.raises(CorruptFileError, match="truncated"):
        imread(tmp_path / f"half{suffix}")
    with pytest.raises(CorruptFileError, match="truncated"):
        imread(tmp_path / f"junk{suffix}")


def test_broken_zarr(tmp_path):
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(CorruptFileError, match="Zarr"):
        imread(tmp_path / "empty.zarr")
    (tmp_path / "file.zarr").write_bytes(b"x")
    with pytest.raises(CorruptFileError, match="folder"):
        imread(tmp_path / "file.zarr")


@pytest.mark.parametrize("bad, match", [
    (np.arange(5), "reshape it to"),
    (np.zeros((0, 5)), "empty"),
    (np.zeros((3, 3), dtype=complex), "dtype complex"),
    (np.array([["a", "b"], ["c", "d"]]), "dtype"),
])
@pytest.mark.parametrize("suffix", [".tif", ".png", ".zarr"])
def test_bad_arrays_rejected_and_nothing_written(tmp_path, bad, match, suffix):
    with pytest.raises(InvalidImageError, match=match):
        imwrite(tmp_path / f"out{suffix}", bad)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("data, suffix, match", [
    (np.zeros((4, 4), np.float32), ".png", "float32"),
    (np.zeros((4, 4, 3), np.uint16), ".png", "uint16 \\(grey only\\)"),
    (np.zeros((3, 4, 5), np.uint8), ".png", "stacks"),
    (np.zeros((4, 4), np.uint16), ".jpg", "uint8"),
    (np.zeros((4, 4, 4), np.uint8), ".jpg", "stacks"),
])
def test_format_limits(tmp_path, data, suffix, match):
    with pytest.raises(InvalidImageError, match=match):
        imwrite(tmp_path / f"out{suffix}", data)
    assert list(tmp_path.iterdir()) == []


def test_chunks_only_for_zarr(tmp_path):
    with pytest.raises(UnsupportedFormatError, match="Zarr outputs only"):
        imwrite(tmp_path / "a.tif", np.zeros((4, 4), np.uint8), chunks=(2, 2))


# ---------------------------------------------------------------- atomicity

@pytest.mark.parametrize("suffix", [".tif", ".png", ".zarr"])
def test_overwrite_false_refuses_and_keeps_file(tmp_path, suffix):
    path = tmp_path / f"keep{suffix}"
    imwrite(path, np.full((4, 4), 1, np.uint8))
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        imwrite(path, np.full((4, 4), 2, np.uint8), overwrite=False)
    assert imread(path).max() == 1
    imwrite(path, np.full((4, 4), 2, np.uint8))  # overwrite=True replaces it
    assert imread(path).min() == 2
    assert _leftovers(tmp_path, {path.name}) == []


@pytest.mark.parametrize("suffix", [".tif", ".png", ".zarr"])
def test_failing_write_leaves_nothing(tmp_path, suffix, monkeypatch):
    import imageio.v3 as iio

    def explode(*args, **kwargs):
        # write something first, so a half-written temporary file exists
        target = args[0] if args else kwargs["store"]
        os.makedirs(os.path.dirname(str(target)), exist_ok=True)
        with open(str(target), "wb") as fh:
            fh.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(tifffile, "imwrite", explode)
    monkeypatch.setattr(iio, "imwrite", explode)
    monkeypatch.setattr(zarr, "create_array", explode)
    path = tmp_path / f"out{suffix}"
    with pytest.raises(KeyboardInterrupt):
        imwrite(path, np.zeros((8, 8), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_failing_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "prev.tif"
    imwrite(path, np.full((4, 4), 9, np.uint8))

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", explode)
    with pytest.raises(OSError, match="disk full"):
        imwrite(path, np.zeros((4, 4), np.uint8))
    assert imread(path).min() == 9
    assert _leftovers(tmp_path, {path.name}) == []


def test_dask_array_written_to_zarr_block_by_block(tmp_path):
    import dask.array as da

    data = _random((50, 70), np.uint16)
    lazy = da.from_array(data, chunks=(13, 17))
    imwrite(tmp_path / "d.zarr", lazy, chunks=(25, 35))
    np.testing.assert_array_equal(imread(tmp_path / "d.zarr"), data)
    imwrite(tmp_path / "d.tif", lazy)
    np.testing.assert_array_equal(imread(tmp_path / "d.tif"), data)


def test_top_level_names():
    import pixelforest

    assert pixelforest.imread is imread
    assert pixelforest.imwrite is imwrite


@pytest.mark.parametrize("level", [-1, 1.5, True])
def test_bad_level_value(tmp_path, level):
    imwrite(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(InvalidParameterError, match="non-negative integer"):
        imread(tmp_path / "a.png", level=level)
    with pytest.raises(InvalidParameterError, match="has no resolution level 1"):
        imread(tmp_path / "a.png", level=1)


def test_palette_and_one_bit_png(tmp_path):
    from PIL import Image

    index = RNG.integers(0, 3, (20, 30)).astype(np.uint8)
    palette = Image.fromarray(index, mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    palette.save(tmp_path / "p.png")
    rgb = imread(tmp_path / "p.png")
    assert rgb.shape == (20, 30, 3)
    np.testing.assert_array_equal(rgb[..., 0] == 255, index == 1)
    Image.fromarray(index > 0).save(tmp_path / "bits.png")
    bits = imread(tmp_path / "bits.png")
    assert bits.dtype == np.uint8
    np.testing.assert_array_equal(bits, (index > 0).astype(np.uint8))


def test_nan_is_written_as_is(tmp_path):
    data = np.array([[np.nan, 1.5], [np.inf, -2.0]], np.float32)
    for suffix in (".tif", ".zarr"):
        imwrite(tmp_path / f"n{suffix}", data)
        np.testing.assert_array_equal(imread(tmp_path / f"n{suffix}"), data)


# ------------------------------------------------- broken data, named (issue 10)

@pytest.mark.parametrize("reader", [imread, lambda p: imread_lazy(p).compute()])
def test_truncated_compressed_tiff_names_the_file(tmp_path, reader):
    # a zlib stream cut short: tifffile lets zlib.error escape
    tifffile.imwrite(tmp_path / "z.tif", _random((256, 256), np.uint16),
                     compression="zlib", tile=(64, 64))
    full = (tmp_path / "z.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(full[: len(full) // 2])
    with pytest.raises(CorruptFileError, match=r"cut\.tif.*truncated"):
        reader(tmp_path / "cut.tif")


@pytest.mark.parametrize("reader", [imread, imread_lazy, lambda p: io.read_metadata(p)])
def test_png_renamed_tif_says_what_it_is(tmp_path, reader):
    imwrite(tmp_path / "a.png", _random((16, 16), np.uint8))
    os.rename(tmp_path / "a.png", tmp_path / "a.tif")
    with pytest.raises(CorruptFileError) as info:
        reader(tmp_path / "a.tif")
    assert str(info.value) == (f"{tmp_path / 'a.tif'} is not a TIFF file (it looks like "
                               "PNG); rename it to .png.")


def _zarr_with_chunks(path, zarr_format):
    data = _random((64, 64), np.uint16) | 1  # no chunk equals the fill value
    z = zarr.create_array(store=str(path), shape=data.shape, chunks=(16, 16),
                          dtype=data.dtype, zarr_format=zarr_format)
    z[...] = data
    files = sorted(p for p in path.rglob("*") if p.is_file()
                   and p.name not in ("zarr.json", ".zarray", ".zattrs", ".zgroup"))
    assert len(files) == 16
    return data, files


@pytest.mark.parametrize("zarr_format, key", [(2, "1.2"), (3, "c/1/2")])
@pytest.mark.parametrize("lazy", [False, True])
def test_corrupt_zarr_chunk_is_named(tmp_path, zarr_format, key, lazy):
    store = tmp_path / "img.zarr"
    _zarr_with_chunks(store, zarr_format)
    (store / key).write_bytes(b"not compressed data" * 4)
    with pytest.raises(CorruptFileError) as info:
        if lazy:  # the error happens inside dask's compute, block by block
            imread_lazy(store).sum().compute()
        else:
            imread(store)
    message = str(info.value)
    assert f"chunk '{key}'" in message and "img.zarr" in message and "copy it again" in message
    assert "\n" not in message


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("reader", [imread, imread_lazy])
def test_missing_zarr_chunks_warn(tmp_path, zarr_format, reader):
    from pixelforest.errors import MissingChunksWarning

    store = tmp_path / "img.zarr"
    data, files = _zarr_with_chunks(store, zarr_format)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete store: no warning
        np.testing.assert_array_equal(np.asarray(reader(store)), data)
    files[3].unlink()
    with pytest.warns(MissingChunksWarning, match="1 of 16 chunks are missing"):
        arr = np.asarray(reader(store))
    assert (arr == 0).sum() == 16 * 16  # the lost chunk reads as the fill value


def test_imwrite_zarr_stores_chunks_of_only_zeros(tmp_path):
    # else a mask with empty regions would look like a store with lost chunks
    imwrite(tmp_path / "zeros.zarr", np.zeros((64, 64), np.uint8), chunks=(16, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert imread(tmp_path / "zeros.zarr").sum() == 0


# ------------------------------------------------------------------ metadata

META = {"kind": "labels", "classes": [1, 2],
        "class_names": {"1": "background", "2": "foreground"}, "foreground": 2}


@pytest.mark.parametrize("suffix", [".tif", ".png", ".zarr"])
def test_metadata_round_trip(tmp_path, suffix):
    labels = np.array([[1, 2], [2, 1]], np.uint8)
    imwrite(tmp_path / f"a{suffix}", labels, metadata=META)
    assert io.read_metadata(tmp_path / f"a{suffix}") == META
    np.testing.assert_array_equal(imread(tmp_path / f"a{suffix}"), labels)
    # the {"pixelforest": {...}} form that scale/ builds is the same
    imwrite(tmp_path / f"b{suffix}", labels, metadata={"pixelforest": META})
    assert io.read_metadata(tmp_path / f"b{suffix}") == META
    imwrite(tmp_path / f"c{suffix}", labels)
    assert io.read_metadata(tmp_path / f"c{suffix}") is None


def test_metadata_where_other_writers_put_it(tmp_path):
    # tifffile's own writer (what scale/writers.py uses): the shaped description
    tifffile.imwrite(tmp_path / "t.tif", np.ones((8, 8), np.uint8), tile=(16, 16),
                     metadata={"pixelforest": META})
    assert io.read_metadata(tmp_path / "t.tif") == META
    # zarr v2 array attributes
    z = zarr.create_array(store=str(tmp_path / "v2.zarr"), shape=(8, 8), dtype="u1",
                          zarr_format=2)
    z.attrs["pixelforest"] = META
    assert io.read_metadata(tmp_path / "v2.zarr") == META
    # OME-Zarr: on the image group, above the level arrays (v2 and v3)
    for fmt in (2, 3):
        path = tmp_path / f"ome{fmt}.zarr"
        _write_ome_zarr(path, np.ones((32, 32), np.uint8), zarr_format=fmt)
        zarr.open_group(str(path), mode="r+").attrs["pixelforest"] = META
        assert io.read_metadata(path) == META
        assert io.read_metadata(path / "s0") == META  # a level inside the group
    # JPEG cannot hold it: written without error, read as None
    imwrite(tmp_path / "j.jpg", np.ones((8, 8), np.uint8), metadata=META)
    assert io.read_metadata(tmp_path / "j.jpg") is None


def test_metadata_of_an_ome_tiff(tmp_path, monkeypatch):
    """tifffile writes OME-XML for *.ome.tif: the metadata goes into an OME key-value
    annotation, read back with or without the formats extra (bioio)."""
    labels = np.array([[1, 2], [2, 1]], np.uint8)
    path = tmp_path / "pred.ome.tif"
    imwrite(path, labels, metadata=META)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome and 'K="pixelforest"' in tif.ome_metadata
    meta = io.read_metadata(path)
    assert {k: meta[k] for k in META} == META  # (plus spacing etc. through bioio)
    np.testing.assert_array_equal(imread(path), labels)
    monkeypatch.setitem(sys.modules, "bioio_ome_tiff", None)  # without the extra
    assert io.read_metadata(path) == META
    np.testing.assert_array_equal(imread(path), labels)
    imwrite(tmp_path / "plain.ome.tif", labels)
    assert io.read_metadata(tmp_path / "plain.ome.tif") is None


def test_ome_zarr_labels_are_read_by_imread(tmp_path):
    """The stores io.ngff writes: the image at the root, the labels inside, pixelforest's
    metadata found from the label image."""
    from pixelforest.io.ngff import write_ome_zarr_labels

    image = _random((32, 40), np.uint16)
    labels = (image > 30000).astype(np.uint8) + 1
    path = write_ome_zarr_labels(tmp_path / "p.ome.zarr", labels, image=image, levels=2,
                                 metadata=META)
    np.testing.assert_array_equal(imread(path), image)
    np.testing.assert_array_equal(imread(path / "labels" / "prediction", level=1),
                                  labels[::2, ::2])
    np.testing.assert_array_equal(imread_lazy(path / "labels" / "prediction").compute(), labels)
    assert io.read_metadata(path / "labels" / "prediction") == META
    assert io.read_metadata(path) is None  # the image carries none


def test_metadata_must_be_json(tmp_path):
    with pytest.raises(InvalidParameterError, match="JSON"):
        imwrite(tmp_path / "a.tif", np.ones((4, 4), np.uint8),
                metadata={"foreground": np.arange(2)})
    assert not (tmp_path / "a.tif").exists()
