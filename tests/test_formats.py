"""Microscope files through bioio (pixelforest.io.formats and imread/read_metadata).

Every file is generated here (no reader package ships samples, and tests
never download): OME-TIFF by tifffile (with PhysicalSizeX/Y/Z), CZI by
pylibCZIrw (the library bioio-czi reads with, which also writes), LIF and ND2
by minimal writers of Leica's and Nikon's containers below (the layouts
liffile and nd2 read; no library writes these formats).  Tests of a reader
skip with one line when the ``formats`` extra is not installed.
"""

import struct
import subprocess
import sys
import uuid
import warnings

import numpy as np
import pytest
import tifffile

from pixelforest.cli.main import main
from pixelforest.errors import (
    CorruptFileError,
    InvalidParameterError,
    MissingDependencyError,
    MultipleScenesWarning,
    UnsupportedFormatError,
)
from pixelforest.io import formats, imread, imread_lazy, read_metadata

EXTRA = 'pip install "pixelforest[formats]"'


def _needs(module):
    return pytest.importorskip(module, reason=f"the formats extra is not installed ({EXTRA})")


def _stack(shape=(3, 2, 24, 32), dtype=np.uint16):
    """Z, C, Y, X with values across the dtype's range (to see that nothing is rescaled)."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(3)
    data = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    data.flat[0], data.flat[1] = info.min, info.max
    return data


def _ome_tiff(path, data, axes, **sizes):
    tifffile.imwrite(path, data, ome=True, metadata={"axes": axes, **sizes})
    return path


# ------------------------------------------------------------------ OME-TIFF

def test_ome_tiff_zcyx_channels_last_with_spacing(tmp_path):
    _needs("bioio_ome_tiff")
    data = _stack()
    path = _ome_tiff(tmp_path / "cells.ome.tif", data, "ZCYX", PhysicalSizeZ=1.5,
                     PhysicalSizeY=0.25, PhysicalSizeX=0.2,
                     Channel={"Name": ["DAPI", "GFP"]})
    image = imread(path)
    assert image.dtype == np.uint16 and image.shape == (3, 24, 32, 2)
    np.testing.assert_array_equal(image, np.moveaxis(data, 1, -1))  # values as stored
    meta = read_metadata(path)
    assert meta["spacing"] == [1.5, 0.25, 0.2] and meta["unit"] == "micrometer"
    assert meta["axes"] == "zyxc" and meta["channel_axis"] == -1
    assert meta["channel_names"] == ["DAPI", "GFP"]
    lazy = imread_lazy(path)
    assert lazy.shape == image.shape
    np.testing.assert_array_equal(lazy.compute(), image)


def test_ome_tiff_2d_grey_and_rgb(tmp_path):
    _needs("bioio_ome_tiff")
    grey = _stack((24, 32), np.uint8)
    path = _ome_tiff(tmp_path / "g.ome.tiff", grey, "YX", PhysicalSizeY=0.5, PhysicalSizeX=0.5)
    np.testing.assert_array_equal(imread(path), grey)
    meta = read_metadata(path)
    assert meta["spacing"] == [0.5, 0.5] and meta["axes"] == "yx"
    assert meta["channel_axis"] is None

    rgb = _stack((24, 32, 3), np.uint8)
    path = tmp_path / "rgb.ome.tif"
    tifffile.imwrite(path, rgb, ome=True, photometric="rgb")
    image = imread(path)
    np.testing.assert_array_equal(image, rgb)
    meta = read_metadata(path)
    assert meta["channel_axis"] == -1 and meta["channel_names"] == ["red", "green", "blue"]
    assert meta["spacing"] is None and meta["unit"] is None  # not recorded: not invented


def test_lazy_ome_tiff_is_read_tile_by_tile(tmp_path, monkeypatch):
    """imread_lazy reads an OME-TIFF through tifffile's tiles (bioio would read whole
    planes), in the same layout as imread."""
    _needs("bioio_ome_tiff")
    data = _stack((2, 3, 64, 48))  # Z, C, Y, X
    path = tmp_path / "tiled.ome.tif"
    tifffile.imwrite(path, data, ome=True, tile=(16, 16), metadata={"axes": "ZCYX"})
    expected = imread(path)
    monkeypatch.setattr(formats, "read_bioio", None)  # not used for lazy OME-TIFF
    lazy = imread_lazy(path, chunks=(1, 16, 16, 3))
    assert lazy.shape == (2, 64, 48, 3) and lazy.chunksize == (1, 16, 16, 3)
    np.testing.assert_array_equal(lazy[1, 16:32].compute(), expected[1, 16:32])
    np.testing.assert_array_equal(lazy.compute(), expected)


def test_time_series_one_time_point_at_a_time(tmp_path):
    _needs("bioio_ome_tiff")
    data = _stack((4, 24, 32))
    path = _ome_tiff(tmp_path / "t.ome.tif", data, "TYX")
    for read in (imread, imread_lazy):
        with pytest.raises(UnsupportedFormatError, match="4 time points.*timepoint="):
            read(path)
    image, info = formats.read_bioio(path, timepoint=2)
    np.testing.assert_array_equal(image, data[2])
    assert info["axes"] == "yx"
    with pytest.raises(InvalidParameterError, match="timepoint"):
        formats.read_bioio(path, timepoint=4)


def test_several_scenes_warn_and_can_be_chosen(tmp_path):
    _needs("bioio_ome_tiff")
    first, second = _stack((24, 32)), _stack((10, 12))[::-1]
    path = tmp_path / "scenes.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(first, metadata={"axes": "YX"})
        tif.write(second, metadata={"axes": "YX"})
    for read in (imread, imread_lazy):
        with warnings.catch_warnings(record=True) as caught:  # (not pytest.warns: it would
            warnings.simplefilter("always")                   # re-raise bioio's deprecations)
            image = np.asarray(read(path))
        scenes = [w for w in caught if issubclass(w.category, MultipleScenesWarning)]
        assert len(scenes) == 1 and "2 scenes" in str(scenes[0].message)
        np.testing.assert_array_equal(image, first)
    image, info = formats.read_bioio(path, scene=1)
    np.testing.assert_array_equal(image, second)
    assert info["scene"] == info["scenes"][1]
    with pytest.raises(InvalidParameterError, match="2 scenes"):
        formats.read_bioio(path, scene=2)


def test_ome_tiff_without_the_extra_is_read_as_a_tiff(tmp_path, monkeypatch):
    data = _stack()
    path = _ome_tiff(tmp_path / "cells.ome.tif", data, "ZCYX")
    monkeypatch.setitem(sys.modules, "bioio_ome_tiff", None)  # not installed
    np.testing.assert_array_equal(imread(path), data)  # tifffile: as stored
    assert read_metadata(path) is None


# ------------------------------------------------------------------ CZI

def _czi(path, data, spacing):
    """A CZI written by pylibCZIrw: data Z, C, Y, X; spacing (z, y, x) in micrometres."""
    pyczi = pytest.importorskip("pylibCZIrw.czi", reason=f"pylibCZIrw not installed ({EXTRA})")
    with pyczi.create_czi(str(path), exist_ok=True) as czi:
        for c in range(data.shape[1]):
            for z in range(data.shape[0]):
                czi.write(data=data[z, c], plane={"C": c, "Z": z, "T": 0})
        czi.write_metadata(document_name="test", channel_names={0: "DAPI", 1: "GFP"},
                           scale_x=spacing[2] * 1e-6, scale_y=spacing[1] * 1e-6,
                           scale_z=spacing[0] * 1e-6)
    return path


def test_czi(tmp_path):
    _needs("bioio_czi")
    data = _stack()
    path = _czi(tmp_path / "scan.czi", data, (1.5, 0.25, 0.25))
    image = imread(path)
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image, np.moveaxis(data, 1, -1))
    meta = read_metadata(path)
    assert meta["spacing"] == pytest.approx([1.5, 0.25, 0.25])
    assert meta["channel_names"] == ["DAPI", "GFP"]
    np.testing.assert_array_equal(imread_lazy(path).compute(), image)


def test_corrupt_czi(tmp_path):
    _needs("bioio_czi")
    path = tmp_path / "broken.czi"
    path.write_bytes(b"ZISRAWFILE" + bytes(200))
    with pytest.raises(CorruptFileError, match="broken.czi"):
        imread(path)


# ------------------------------------------------------------------ LIF

def _lif(path, data, spacing):
    """A minimal Leica LIF (version 2): one image, data Z, C, Y, X uint16.

    Leica's container: a header block (0x70, size, 0x2A, length, UTF-16 XML)
    then memory blocks (0x70, 0, 0x2A, uint64 size, 0x2A, length, UTF-16
    id, bytes).  Each DimensionDescription gives the extent of an axis from
    the first to the last pixel centre, so the pixel size is Length / (N - 1).
    """
    nz, nc, ny, nx = data.shape
    plane = ny * nx * 2
    dims = [(1, nx, 2, spacing[2]), (2, ny, nx * 2, spacing[1]),
            (3, nz, plane * nc, spacing[0])]
    dim_xml = "".join(
        f'<DimensionDescription DimID="{d}" NumberOfElements="{n}" Origin="0" '
        f'Length="{(n - 1) * s * 1e-6!r}" Unit="m" BitInc="0" BytesInc="{inc}"/>'
        for d, n, inc, s in dims)
    chan_xml = "".join(
        f'<ChannelDescription DataType="0" ChannelTag="0" Resolution="16" '
        f'NameOfMeasuredQuantity="" Min="0" Max="65535" Unit="" LUTName="Gray" '
        f'IsLUTInverted="0" BytesInc="{c * plane}" BitInc="0"/>' for c in range(nc))
    # bytes: for each z, the channels' planes one after the other
    body = np.ascontiguousarray(data).astype("<u2").tobytes()
    xml = (
        '<LMSDataContainerHeader Version="2">'
        f'<Element Name="test" Visibility="1" CopyOption="1" UniqueID="{uuid.uuid4()}">'
        '<Data><Experiment IsSavedFlag="1"/></Data>'
        '<Memory Size="0" MemoryBlockID="MemBlock_0"/>'
        '<Children>'
        f'<Element Name="stack" Visibility="1" CopyOption="1" UniqueID="{uuid.uuid4()}">'
        '<Data><Image TextDescription=""><ImageDescription>'
        f'<Channels>{chan_xml}</Channels><Dimensions>{dim_xml}</Dimensions>'
        '</ImageDescription></Image></Data>'
        f'<Memory Size="{len(body)}" MemoryBlockID="MemBlock_1"/><Children/>'
        '</Element></Children></Element></LMSDataContainerHeader>'
    )

    def block(name, payload):
        ident = name.encode("utf-16-le")
        return (struct.pack("<IIBQBI", 0x70, 0, 0x2A, len(payload), 0x2A, len(name))
                + ident + payload)

    text = xml.encode("utf-16-le")
    with open(path, "wb") as f:
        f.write(struct.pack("<IIBI", 0x70, len(text) + 5, 0x2A, len(xml)) + text)
        f.write(block("MemBlock_0", b""))
        f.write(block("MemBlock_1", body))
    return path


def test_lif(tmp_path):
    _needs("bioio_lif")
    data = np.stack([_stack((2, 24, 32))] * 3)  # Z=3, C=2
    data = data + np.arange(3, dtype=np.uint16)[:, None, None, None]  # planes differ
    path = _lif(tmp_path / "confocal.lif", data, (1.5, 0.25, 0.2))
    image = imread(path)
    assert image.dtype == np.uint16 and image.shape == (3, 24, 32, 2)
    np.testing.assert_array_equal(image, np.moveaxis(data, 1, -1))
    meta = read_metadata(path)
    assert meta["spacing"] == pytest.approx([1.5, 0.25, 0.2])
    assert meta["axes"] == "zyxc"


# ------------------------------------------------------------------ ND2

_ND2_MAGIC = 0x0ABECEDA


def _clx(name, value):
    """One CLxVariant XML element (the metadata encoding of ND2 version 2 files)."""
    if isinstance(value, dict):
        inner = "".join(_clx(k, v) for k, v in value.items())
        return f'<{name} runtype="CLxListVariant">{inner}</{name}>'
    if isinstance(value, bool):
        return f'<{name} runtype="bool" value="{str(value).lower()}"/>'
    if isinstance(value, int):
        return f'<{name} runtype="lx_uint32" value="{value}"/>'
    if isinstance(value, float):
        return f'<{name} runtype="double" value="{value!r}"/>'
    return f'<{name} runtype="CLxStringW" value="{value}"/>'


def _nd2(path, data, spacing, names=("DAPI", "GFP")):
    """A minimal Nikon ND2 (version 2.0): data Z, C, Y, X uint16; spacing (z, xy) in µm.

    The container: chunks (magic, name length, data length, name, data), a
    Z-stack experiment, one calibration for x and y, one frame chunk per
    plane (an 8-byte time stamp, then Y, X, C interleaved, 4096 bytes after
    the chunk start), and a chunk map at the end that names every chunk.
    """
    nz, nc, ny, nx = data.shape

    def variant(d):
        return ('<?xml version="1.0" encoding="UTF-8"?><variant version="1.0">'
                + _clx("no_name", d) + "</variant>").encode()

    attributes = {"uiWidth": nx, "uiWidthBytes": nx * nc * 2, "uiHeight": ny, "uiComp": nc,
                  "uiBpcInMemory": 16, "uiBpcSignificant": 16, "uiSequenceCount": nz,
                  "eCompression": 2}
    probe = {"m_ExcitationSpectrum": {"uiCount": 0}, "m_EmissionSpectrum": {"uiCount": 0}}
    planes = {f"a{c}": {"sDescription": names[c], "uiCompCount": 1, "uiSampleIndex": c,
                        "uiColor": 255, "pFluorescentProbe": probe} for c in range(nc)}
    metadata = {"bCalibrated": True, "dCalibration": float(spacing[1]),
                "sPicturePlanes": {"uiCount": nc, "sPlaneNew": planes}}
    experiment = {"eType": 4, "uLoopPars": {"uiCount": nz, "dZStep": float(spacing[0]),
                                            "dZLow": 0.0, "dZHigh": spacing[0] * (nz - 1)}}
    out = bytearray(struct.pack("<IIQ", _ND2_MAGIC, 32, 64)
                    + b"ND2 FILE SIGNATURE CHUNK NAME01!" + b"Ver2.0".ljust(64, b"\0"))
    entries = []

    def add(name, payload, name_length=None):
        key = name.encode()
        n = len(key) if name_length is None else name_length
        entries.append(key + struct.pack("<QQ", len(out), len(payload)))
        out.extend(struct.pack("<IIQ", _ND2_MAGIC, n, len(payload)) + key.ljust(n, b"\0")
                   + payload)

    add("ImageAttributes!", variant(attributes))
    add("ImageMetadataSeq|0!", variant(metadata))
    add("ImageMetadata!", variant(experiment))
    for z in range(nz):
        pixels = np.ascontiguousarray(np.moveaxis(data[z], 0, -1)).astype("<u2").tobytes()
        add(f"ImageDataSeq|{z}!", struct.pack("<d", float(z)) + pixels, name_length=4072)
    add("CustomData|AcqTimesCache!", np.arange(nz, dtype="<f8").tobytes())
    location = len(out)
    table = b"".join(entries) + b"ND2 CHUNK MAP SIGNATURE 0000001!" + struct.pack("<Q", location)
    add("ND2 FILEMAP SIGNATURE NAME 0001!", table)
    path.write_bytes(bytes(out))
    return path


def test_nd2(tmp_path):
    _needs("bioio_nd2")
    data = _stack()
    path = _nd2(tmp_path / "widefield.nd2", data, (1.5, 0.325))
    image = imread(path)
    assert image.dtype == np.uint16 and image.shape == (3, 24, 32, 2)
    np.testing.assert_array_equal(image, np.moveaxis(data, 1, -1))
    meta = read_metadata(path)
    assert meta["spacing"] == pytest.approx([1.5, 0.325, 0.325])
    assert meta["channel_names"] == ["DAPI", "GFP"] and meta["axes"] == "zyxc"
    np.testing.assert_array_equal(imread_lazy(path).compute(), image)


# ------------------------------------------------------------------ without the extra

@pytest.mark.parametrize("suffix, module", [(".czi", "bioio_czi"), (".nd2", "bioio_nd2"),
                                            (".lif", "bioio_lif")])
def test_missing_extra_names_the_install_command(tmp_path, monkeypatch, suffix, module):
    path = tmp_path / f"scan{suffix}"
    path.write_bytes(b"\x00" * 64)
    monkeypatch.setitem(sys.modules, module, None)  # the plugin is not installed
    for read in (imread, imread_lazy, read_metadata):
        with pytest.raises(MissingDependencyError, match=r'pip install "pixelforest\[formats\]"'):
            read(path)
    assert not formats.bioio_available(path)


def test_cli_says_how_to_install_in_one_line(tmp_path, monkeypatch, capsys):
    path = tmp_path / "scan.nd2"
    path.write_bytes(b"\x00" * 64)
    monkeypatch.setitem(sys.modules, "bioio", None)
    assert main(["kmeans", str(path), "-o", str(tmp_path / "out.tif")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and EXTRA in err and "scan.nd2" in err
    assert not (tmp_path / "out.tif").exists()


def test_library_imports_without_the_extras():
    """Nothing of bioio (or ome-zarr) is imported until a microscope file is read."""
    code = (
        "import sys\n"
        "for name in ('bioio', 'bioio_czi', 'bioio_nd2', 'bioio_lif', 'bioio_ome_tiff',"
        " 'ome_zarr', 'ome_zarr_models'):\n"
        "    sys.modules[name] = None\n"
        "import pixelforest, pixelforest.io, pixelforest.io.formats, pixelforest.io.ngff\n"
        "import pixelforest.cli.main\n"
        "import numpy as np, tempfile, pathlib\n"
        "d = pathlib.Path(tempfile.mkdtemp())\n"
        "pixelforest.io.imwrite(d / 'a.tif', np.ones((4, 4), np.uint8))\n"
        "assert pixelforest.io.imread(d / 'a.tif').sum() == 16\n"
        "pixelforest.io.ngff.write_ome_zarr_labels(d / 'l.ome.zarr', np.ones((4, 4), np.uint8))\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_extensions():
    assert formats.bioio_extension("a.ome.tif") == ".ome.tif"
    assert formats.bioio_extension("A.ND2") == ".nd2"
    assert formats.bioio_extension("a.tif") is None
    with pytest.raises(UnsupportedFormatError):
        formats.read_bioio("a.png")
