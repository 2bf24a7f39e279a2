"""read_image / write_image / list_images: every format × bit depth × channel count, against bytes
written by independent encoders (Pillow, tifffile, a hand-written PNG encoder) and round trips."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from knnlab.data import list_images, read_image, write_image
from knnlab.errors import DataNotFoundError, InputError


def _smooth(c: int, h: int = 24, w: int = 32) -> torch.Tensor:
    """A smooth test image (JPEG-friendly)."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    chans = [0.5 + 0.4 * torch.sin(3 * xx + k) * torch.cos(2 * yy - k) for k in range(c)]
    return torch.stack(chans).float()


CASES = [
    (ext, c, bd)
    for ext in ("png", "jpg", "bmp", "tif")
    for c in (1, 3)
    for bd in (8, 16)
    if not (bd == 16 and ext in ("jpg", "bmp"))
]


@pytest.mark.parametrize(("ext", "c", "bit_depth"), CASES)
def test_round_trip(tmp_path, ext, c, bit_depth):
    x = torch.rand(c, 13, 17) if ext != "jpg" else _smooth(c)
    path = tmp_path / f"im.{ext}"
    write_image(path, x, bit_depth=bit_depth)
    y = read_image(path)
    assert y.dtype == torch.float32 and y.shape == x.shape
    if ext == "jpg":
        assert (y - x).abs().mean() < 0.01
    else:  # lossless: exact up to quantisation
        levels = 2**bit_depth - 1
        torch.testing.assert_close(
            y.double(), torch.round(x.double() * levels) / levels, atol=1e-7, rtol=0
        )


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "JPEG"])
@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_reads_pillow_written_8bit(tmp_path, fmt, mode):
    rng = np.random.default_rng(0)
    shape = (9, 11) if mode == "L" else (9, 11, 3)
    arr = rng.integers(0, 256, size=shape, dtype=np.uint8)
    path = tmp_path / f"im.{fmt.lower()}"
    Image.fromarray(arr, mode=mode).save(
        path, format=fmt, **({"quality": 95} if fmt == "JPEG" else {})
    )
    got = read_image(path)
    expect = np.asarray(Image.open(path), dtype=np.float64) / 255.0  # what the decoder produced
    expect = expect[None] if mode == "L" else expect.transpose(2, 0, 1)
    np.testing.assert_allclose(got.numpy(), expect, atol=1e-7)
    if fmt != "JPEG":
        ref = arr[None] if mode == "L" else arr.transpose(2, 0, 1)
        np.testing.assert_allclose(got.numpy() * 255, ref, atol=1e-4)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_reads_pillow_written_16bit_gray(tmp_path, fmt):
    arr = np.random.default_rng(1).integers(0, 65536, size=(7, 10), dtype=np.uint16)
    path = tmp_path / f"g16.{fmt.lower()}"
    Image.fromarray(arr).save(path, format=fmt)
    got = read_image(path)
    np.testing.assert_allclose(got[0].double().numpy() * 65535, arr, atol=0.01)


def test_tiff16_rgb_against_tifffile(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    arr = np.random.default_rng(2).integers(0, 65536, size=(6, 9, 3), dtype=np.uint16)
    for i, kwargs in enumerate(
        [
            {},
            {"compression": "zlib"},
            {"compression": "zlib", "predictor": True},
            {"planarconfig": "separate"},
            {"byteorder": ">"},
        ]
    ):
        path = tmp_path / f"t{i}.tif"
        data = arr.transpose(2, 0, 1) if kwargs.get("planarconfig") == "separate" else arr
        tifffile.imwrite(path, data, photometric="rgb", **kwargs)
        got = read_image(path)
        np.testing.assert_allclose(
            got.double().numpy().transpose(1, 2, 0) * 65535, arr, atol=0.01, err_msg=str(kwargs)
        )
    # and our writer is readable by tifffile
    x = torch.rand(3, 5, 8)
    write_image(tmp_path / "ours.tif", x, bit_depth=16)
    back = tifffile.imread(tmp_path / "ours.tif")
    assert back.dtype == np.uint16 and back.shape == (5, 8, 3)
    np.testing.assert_array_equal(back, np.rint(x.double().numpy().transpose(1, 2, 0) * 65535))


def _pypng16(path, arr: np.ndarray) -> None:
    """Write ``uint16 (H, W, C)`` with pypng (an independent pure-Python PNG writer), C = 1..4."""
    import png

    h, w, c = arr.shape
    writer = png.Writer(w, h, greyscale=c in (1, 2), alpha=c in (2, 4), bitdepth=16)
    with open(path, "wb") as f:
        writer.write(f, arr.reshape(h, w * c).tolist())


@pytest.mark.parametrize(("c_in", "c_out"), [(1, 1), (2, 1), (3, 3), (4, 3)])
def test_png16_against_pypng(tmp_path, c_in, c_out):
    arr = np.random.default_rng(3).integers(0, 65536, size=(11, 7, c_in), dtype=np.uint16)
    path = tmp_path / "p.png"
    _pypng16(path, arr)
    got = read_image(path)
    assert got.shape == (c_out, 11, 7)
    np.testing.assert_allclose(
        got.double().numpy().transpose(1, 2, 0) * 65535, arr[:, :, :c_out], atol=0.01
    )


def _idat_filters(data: bytes, stride: int, h: int) -> set[int]:
    """The filter type bytes of a non-interlaced PNG's scanlines."""
    pos, idat = 8, b""
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == b"IDAT":
            idat += data[pos + 8 : pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(idat)
    return {raw[y * (stride + 1)] for y in range(h)}


@pytest.mark.parametrize("filt", ["NONE", "SUB", "UP", "AVG", "PAETH"])
@pytest.mark.parametrize("c", [3, 4])
def test_png16_filters_against_libpng(tmp_path, filt, c):
    """Every scanline filter, written by libpng (through OpenCV, which stores BGR(A) as RGB(A))."""
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(4)
    # uniform random bytes: enough pixels where Paeth's tie-breaking order (a, b, c) matters
    arr = rng.integers(0, 65536, size=(32, 24, c), dtype=np.uint16)
    bgr = arr[:, :, [2, 1, 0, 3][:c]]
    flag = getattr(cv2, f"IMWRITE_PNG_FILTER_{filt}")
    ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_FILTER, flag])
    assert ok
    data = buf.tobytes()
    code = ["NONE", "SUB", "UP", "AVG", "PAETH"].index(filt)
    assert code in _idat_filters(data, 24 * 2 * c, 32)  # libpng really used that filter
    path = tmp_path / "cv.png"
    path.write_bytes(data)
    got = read_image(path)
    np.testing.assert_allclose(
        got.double().numpy().transpose(1, 2, 0) * 65535, arr[:, :, :3], atol=0.01
    )


def test_png16_rgb_writer_is_a_valid_png(tmp_path):
    x = torch.rand(3, 6, 5)
    write_image(tmp_path / "w.png", x, bit_depth=16)
    im = Image.open(tmp_path / "w.png")  # Pillow reads 16-bit RGB as 8-bit: the high bytes
    u16 = np.rint(x.double().numpy().transpose(1, 2, 0) * 65535).astype(np.uint16)
    np.testing.assert_array_equal(np.asarray(im), (u16 >> 8).astype(np.uint8))


def test_rgba_palette_and_bilevel(tmp_path):
    rgba = np.random.default_rng(4).integers(0, 256, size=(5, 6, 4), dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    got = read_image(tmp_path / "a.png")
    np.testing.assert_allclose(got.numpy().transpose(1, 2, 0) * 255, rgba[:, :, :3], atol=1e-4)

    pal = Image.fromarray(rgba[:, :, :3], mode="RGB").quantize(colors=8)
    pal.save(tmp_path / "p.png")
    got = read_image(tmp_path / "p.png")
    np.testing.assert_allclose(
        got.numpy().transpose(1, 2, 0) * 255, np.asarray(pal.convert("RGB")), atol=1e-4
    )

    Image.fromarray(rgba[:, :, 0] > 128).save(tmp_path / "b.png")
    got = read_image(tmp_path / "b.png")
    assert got.shape == (1, 5, 6) and set(got.unique().tolist()) <= {0.0, 1.0}


def test_channel_conversion(tmp_path):
    x = torch.rand(3, 8, 8)
    write_image(tmp_path / "c.png", x)
    stored = read_image(tmp_path / "c.png")
    gray = read_image(tmp_path / "c.png", channels=1)
    expect = 0.299 * stored[0] + 0.587 * stored[1] + 0.114 * stored[2]
    torch.testing.assert_close(gray[0], expect, atol=1e-6, rtol=0)
    write_image(tmp_path / "g.png", x[0])
    rgb = read_image(tmp_path / "g.png", channels=3)
    assert rgb.shape == (3, 8, 8) and torch.equal(rgb[0], rgb[2])
    with pytest.raises(InputError, match="channels"):
        read_image(tmp_path / "g.png", channels=2)


def test_write_accepts_hw_and_clips(tmp_path):
    write_image(tmp_path / "hw.png", torch.full((4, 5), 2.0))
    assert torch.all(read_image(tmp_path / "hw.png") == 1.0)


@pytest.mark.parametrize("ext", ["png", "jpg", "bmp", "tif"])
def test_truncated_files_are_errors(tmp_path, ext):
    path = tmp_path / f"t.{ext}"
    write_image(path, torch.rand(3, 64, 64))
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 3):
        path.write_bytes(data[:cut])
        with pytest.raises(InputError, match=r"truncated|corrupt|readable"):
            read_image(path)


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_truncated_16bit_rgb_is_an_error(tmp_path, ext):
    path = tmp_path / f"t.{ext}"
    write_image(path, torch.rand(3, 32, 32), bit_depth=16)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])
    with pytest.raises(InputError, match="truncated"):
        read_image(path)


def test_read_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"this is not an image")
    with pytest.raises(InputError, match="not a readable image"):
        read_image(tmp_path / "junk.png")
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="GIF")
    (tmp_path / "x.gif").write_bytes(buf.getvalue())
    with pytest.raises(InputError, match="unsupported image format GIF"):
        read_image(tmp_path / "x.gif")
    with pytest.raises(InputError, match="folder"):
        read_image(tmp_path)


def test_write_errors_leave_nothing(tmp_path):
    bad = torch.rand(3, 4, 4)
    bad[0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN or Inf"):
        write_image(tmp_path / "n.png", bad)
    with pytest.raises(InputError, match="NaN or Inf"):
        write_image(tmp_path / "n.png", torch.full((4, 4), float("inf")))
    with pytest.raises(InputError, match=r"C = 1 or 3"):
        write_image(tmp_path / "c.png", torch.rand(2, 4, 4))
    with pytest.raises(InputError, match=r"C = 1 or 3"):
        write_image(tmp_path / "c.png", torch.rand(1, 3, 4, 4))
    with pytest.raises(InputError, match="extension"):
        write_image(tmp_path / "x.gif", torch.rand(3, 4, 4))
    with pytest.raises(InputError, match="bit_depth=16"):
        write_image(tmp_path / "x.jpg", torch.rand(3, 4, 4), bit_depth=16)
    assert list(tmp_path.iterdir()) == []


def test_list_images(tmp_path):
    for name in ("b.PNG", "a.jpg", "c.tiff", "d.bmp", "e.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "c.tiff", "d.bmp"]
    with pytest.raises(DataNotFoundError):
        list_images(tmp_path / "nope")


def test_png_signature_followed_by_garbage_is_one_input_error(tmp_path) -> None:
    # Pillow raises a bare OSError ("Truncated File Read") when the IHDR chunk is cut short
    from knnlab.data import read_image
    from knnlab.errors import InputError

    path = tmp_path / "bad.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(InputError, match="not a readable image"):
        read_image(path)
