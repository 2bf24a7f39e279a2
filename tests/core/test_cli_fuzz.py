"""Bad image files given to every command that reads images end in one line on stderr and exit 2.

The files are made here with independent writers (Pillow, pypng, tifffile, raw bytes): truncated,
empty, another format under a .png name, a header announcing huge dimensions, NaN in a float TIFF;
16-bit and 1×1 images are valid and are either processed or refused with one line.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import png
import pytest
import tifffile
import torch
from PIL import Image

from knnlab.cli import main
from knnlab.n3.dncnn import DnCNN


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(path: Path, w: int, h: int, bit_depth: int, color_type: int) -> None:
    """A valid PNG signature and IHDR for ``w × h`` with almost no pixel data."""
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


def _tiff_with_dims(path: Path, w: int, h: int, rgb16: bool) -> None:
    """A small TIFF (tifffile) whose ImageWidth/ImageLength tags are rewritten to ``w × h``."""
    arr = np.zeros((16, 16, 3), np.uint16) if rgb16 else np.zeros((16, 16), np.uint8)
    tifffile.imwrite(path, arr, photometric="rgb" if rgb16 else "minisblack")
    data = bytearray(path.read_bytes())
    assert data[:2] == b"II"
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for i in range(count):
        off = ifd + 2 + 12 * i
        tag, typ = struct.unpack_from("<HH", data, off)
        if tag in (256, 257):
            value = w if tag == 256 else h
            if typ == 3:  # SHORT
                struct.pack_into("<HHIHH", data, off, tag, 4, 1, 0, 0)  # rewrite as LONG
            struct.pack_into("<HHII", data, off, tag, 4, 1, value)
    path.write_bytes(bytes(data))


BAD = [
    "truncated.png",
    "empty.png",
    "text.png",
    "npy.png",
    "gif.png",
    "huge.png",
    "huge16rgb.png",
    "huge.tif",
    "huge16rgb.tif",
    "truncated.tif",
    "nan.tif",
    "outofrange.tif",
    "folder.png",
]


def make_bad(folder: Path, name: str) -> Path:
    """Write the bad input ``name`` into ``folder``."""
    rng = np.random.default_rng(0)
    gray = (rng.random((40, 40)) * 255).astype(np.uint8)
    p = folder / name
    if name == "truncated.png":
        Image.fromarray(gray).save(p)
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    elif name == "empty.png":
        p.write_bytes(b"")
    elif name == "text.png":
        p.write_text("not an image\n")
    elif name == "npy.png":
        with p.open("wb") as f:
            np.save(f, gray)
    elif name == "gif.png":
        Image.fromarray(gray).save(p, format="GIF")
    elif name == "huge.png":
        _png_header_only(p, 100_000, 100_000, 8, 0)
    elif name == "huge16rgb.png":
        _png_header_only(p, 60_000, 60_000, 16, 2)
    elif name == "huge.tif":
        _tiff_with_dims(p, 100_000, 100_000, rgb16=False)
    elif name == "huge16rgb.tif":
        _tiff_with_dims(p, 60_000, 60_000, rgb16=True)
    elif name == "truncated.tif":
        tifffile.imwrite(p, gray)
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    elif name in ("nan.tif", "outofrange.tif"):
        f = rng.random((40, 40)).astype(np.float32)
        if name == "nan.tif":
            f[3, 3] = np.nan
        else:
            f *= 3
        tifffile.imwrite(p, f)
    elif name == "folder.png":
        p.mkdir()
    else:  # pragma: no cover
        raise AssertionError(name)
    return p


def make_good(folder: Path, name: str) -> Path:
    """Valid but unusual images: 16-bit gray / RGB PNG (pypng), 1×1."""
    rng = np.random.default_rng(1)
    p = folder / name
    if name == "gray16.png":
        a = (rng.random((24, 20)) * 65535).astype(np.uint16)
        with p.open("wb") as f:
            png.Writer(20, 24, greyscale=True, bitdepth=16).write(f, a.tolist())
    elif name == "rgb16.png":
        a = (rng.random((24, 20 * 3)) * 65535).astype(np.uint16)
        with p.open("wb") as f:
            png.Writer(20, 24, greyscale=False, bitdepth=16).write(f, a.tolist())
    elif name == "one.png":
        Image.fromarray(np.full((1, 1), 128, np.uint8)).save(p)
    else:  # pragma: no cover
        raise AssertionError(name)
    return p


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model") / "dncnn"
    DnCNN(depth=3, features=4).save_pretrained(folder)
    return folder


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: "), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("name", BAD)
def test_denoise_bad_file(tmp_path, capsys, model_dir, name):
    src = make_bad(tmp_path, name)
    out = tmp_path / "out.png"
    code = main(["denoise", str(src), "-o", str(out), "--sigma", "25", "--model",
                 str(model_dir), "--device", "cpu"])  # fmt: skip
    assert code == 2
    one_line_error(capsys)
    assert not out.exists()


@pytest.mark.parametrize("name", BAD)
def test_denoise_folder_with_a_bad_file(tmp_path, capsys, model_dir, name):
    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "in" / "a_good.png")
    make_bad(tmp_path / "in", name)
    out = tmp_path / "out"
    code = main(["denoise", str(tmp_path / "in"), "-o", str(out), "--sigma", "25", "--model",
                 str(model_dir), "--device", "cpu"])  # fmt: skip
    if name == "folder.png":  # a sub-folder is not an image: skipped, the rest is denoised
        assert code == 0
        return
    assert code == 2
    one_line_error(capsys)
    assert not out.exists()  # nothing written: all or nothing


@pytest.mark.parametrize("name", BAD)
def test_eval_denoise_dataset_folder_with_a_bad_file(tmp_path, capsys, model_dir, name):
    (tmp_path / "set").mkdir()
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "set" / "a_good.png")
    make_bad(tmp_path / "set", name)
    code = main(["eval", "denoise", "--model", str(model_dir), "--sigma", "25", "--dataset",
                 str(tmp_path / "set"), "--device", "cpu"])  # fmt: skip
    if name == "folder.png":
        assert code == 0
        return
    assert code == 2
    one_line_error(capsys)


@pytest.mark.parametrize("name", ["gray16.png", "rgb16.png", "one.png"])
def test_denoise_valid_unusual_images(tmp_path, capsys, model_dir, name):
    src = make_good(tmp_path, name)
    out = tmp_path / "out.png"
    code = main(["denoise", str(src), "-o", str(out), "--sigma", "25", "--model",
                 str(model_dir), "--device", "cpu"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert Image.open(out).size == Image.open(src).size


def test_bm3d_on_a_too_small_image_is_one_line(tmp_path, capsys):
    """The bm3d package fails on images under 9×9 (a ValueError below 8, a crash at 8)."""
    pytest.importorskip("bm3d")
    src = make_good(tmp_path, "one.png")
    code = main(["denoise", str(src), "-o", str(tmp_path / "o.png"), "--sigma", "25",
                 "--model", "bm3d"])  # fmt: skip
    assert code == 2
    assert "9×9" in one_line_error(capsys)


@pytest.mark.parametrize(
    "config",
    [
        "{not json",
        "",
        "[1, 2]",
        '{"model_type": "DnCNN", "depth": 1}',
        '{"model_type": "DnCNN", "kernel_size": 4}',
        '{"model_type": "DnCNN", "depth": "three"}',
        '{"model_type": "DnCNN", "features": 8}',
        '{"model_type": "Nope"}',
    ],
)
def test_denoise_corrupt_model_folder(tmp_path, capsys, model_dir, config):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(model_dir, folder)
    (folder / "config.json").write_text(config)
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "x.png")
    code = main(["denoise", str(tmp_path / "x.png"), "-o", str(tmp_path / "o.png"), "--sigma",
                 "25", "--model", str(folder), "--device", "cpu"])  # fmt: skip
    assert code == 2
    assert "--model" in one_line_error(capsys)


def test_denoise_corrupt_weights(tmp_path, capsys, model_dir):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(model_dir, folder)
    w = folder / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "x.png")
    code = main(["denoise", str(tmp_path / "x.png"), "-o", str(tmp_path / "o.png"), "--sigma",
                 "25", "--model", str(folder), "--device", "cpu"])  # fmt: skip
    assert code == 2
    assert "--model" in one_line_error(capsys)


@pytest.mark.parametrize("out", ["/proc/x.png", "/proc/newdir/x.png", "{tmp}/x.gif"])
def test_denoise_unwritable_output(tmp_path, capsys, model_dir, out):
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "x.png")
    code = main(["denoise", str(tmp_path / "x.png"), "-o", out.format(tmp=tmp_path), "--sigma",
                 "25", "--model", str(model_dir), "--device", "cpu"])  # fmt: skip
    assert code == 2
    assert "-o" in one_line_error(capsys)


def test_denoise_folder_into_unwritable_output(tmp_path, capsys, model_dir):
    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "in" / "a.png")
    code = main(["denoise", str(tmp_path / "in"), "-o", "/proc/newdir", "--sigma", "25",
                 "--model", str(model_dir), "--device", "cpu"])  # fmt: skip
    assert code == 2
    one_line_error(capsys)


def test_train_denoise_dataset_folder_with_a_bad_file(tmp_path, capsys):
    (tmp_path / "set").mkdir()
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "set" / "a_good.png")
    make_bad(tmp_path / "set", "truncated.png")
    code = main(["train", "denoise", "--model", "dncnn", "--dataset", str(tmp_path / "set"),
                 "--budget-steps", "1", "--batch-size", "2", "--patch-size", "16",
                 "--eval-dataset", "", "--out", str(tmp_path / "run"),
                 "--device", "cpu"])  # fmt: skip
    assert code == 2
    one_line_error(capsys)


@pytest.mark.parametrize(
    "option, value",
    [("--sigma", "nan"), ("--sigma", "-5"), ("--bn-batches", "-1"), ("--eval-limit", "0"),
     ("--batch-size", "0"), ("--patch-size", "0"), ("--budget-steps", "0")],
)  # fmt: skip
def test_train_denoise_bad_numbers_name_the_option(tmp_path, capsys, option, value):
    (tmp_path / "set").mkdir()
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "set" / "a.png")
    args = {"--model": "dncnn", "--dataset": str(tmp_path / "set"), "--budget-steps": "1",
            "--batch-size": "2", "--patch-size": "16", "--eval-dataset": "",
            "--out": str(tmp_path / "run"), "--device": "cpu"}  # fmt: skip
    args[option] = value
    code = main(["train", "denoise", *[a for kv in args.items() for a in kv]])
    assert code == 2
    err = one_line_error(capsys)
    assert option.lstrip("-").replace("-", "_") in err.replace("-", "_")


def test_eval_denoise_unwritable_out_before_any_work(tmp_path, capsys, model_dir):
    (tmp_path / "set").mkdir()
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "set" / "a.png")
    code = main(["eval", "denoise", "--model", str(model_dir), "--sigma", "25", "--dataset",
                 str(tmp_path / "set"), "--device", "cpu", "--out", "/proc/x.json"])  # fmt: skip
    assert code == 2
    assert "--out" in one_line_error(capsys)


def test_denoise_negative_overlap(tmp_path, capsys, model_dir):
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "x.png")
    code = main(["denoise", str(tmp_path / "x.png"), "-o", str(tmp_path / "o.png"), "--sigma",
                 "25", "--model", str(model_dir), "--overlap", "-5"])  # fmt: skip
    assert code == 2
    assert "--overlap" in one_line_error(capsys)


@pytest.mark.parametrize(
    "what", ["config-not-json", "config-list", "config-bad-field", "weights-truncated"]
)
def test_experiment_hubness_corrupt_generator_folder(tmp_path, capsys, what):
    import shutil

    from knnlab.hubness.gan import BUILTIN_GAN_DIR

    g = tmp_path / "gan"
    shutil.copytree(BUILTIN_GAN_DIR, g)
    cfg = g / "config.json"
    if what == "config-not-json":
        cfg.write_text("{bad")
    elif what == "config-list":
        cfg.write_text("[1]")
    elif what == "config-bad-field":
        import json

        cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "w_dim": "x"}))
    else:
        w = g / "model.safetensors"
        w.write_bytes(w.read_bytes()[:100])
    code = main(["experiment", "hubness", "--generator", str(g), "--quick", "--out",
                 str(tmp_path / "out")])  # fmt: skip
    assert code == 2
    one_line_error(capsys)
    assert not (tmp_path / "out").exists()
