"""Read and write images as float tensors ``(C, H, W)`` in [0, 1].

Formats: PNG, JPEG, BMP, TIFF; 8- and 16-bit; gray (C = 1) and RGB (C = 3). Pillow does the decoding
except for 16-bit RGB(A) PNG/TIFF, which Pillow would silently truncate to 8 bits; those go through
the small codecs in :mod:`knnlab.data.codecs`. Alpha is dropped (RGBA → RGB, gray+alpha → gray),
palette images become RGB, 1-bit images gray.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from knnlab.data import codecs
from knnlab.errors import DataNotFoundError, InputError
from knnlab.io_utils import atomic_write_bytes, check_writable

__all__ = [
    "IMAGE_EXTENSIONS",
    "check_output_image",
    "list_images",
    "read_image",
    "to_channels",
    "write_image",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_PIL_FORMATS = {"PNG", "JPEG", "MPO", "BMP", "DIB", "TIFF"}
_WRITE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

# ITU-R BT.601 luma weights, as Pillow's convert("L") and MATLAB's rgb2gray use.
_LUMA = (0.299, 0.587, 0.114)


def _check_channels(channels: int | None) -> None:
    if channels not in (None, 1, 3):
        raise InputError(f"channels={channels!r}: choose 1 (gray), 3 (RGB) or None (as stored)")


def to_channels(image: torch.Tensor, channels: int | None) -> torch.Tensor:
    """Convert ``(..., C, H, W)`` with C in {1, 3} to ``channels`` (gray → RGB repeats; RGB → gray
    uses BT.601 luma ``0.299 R + 0.587 G + 0.114 B``). ``None`` returns the input unchanged."""
    _check_channels(channels)
    c = image.shape[-3]
    if channels is None or c == channels:
        return image
    if c == 1 and channels == 3:
        return image.expand(*image.shape[:-3], 3, *image.shape[-2:]).contiguous()
    if c == 3 and channels == 1:
        w = torch.tensor(_LUMA, dtype=torch.float64).view(3, 1, 1)
        return (image.double() * w).sum(dim=-3, keepdim=True).to(image.dtype)
    raise InputError(f"image has {c} channels; can convert only between 1 and 3")


def _pil_to_array(im: Image.Image, name: str) -> np.ndarray:
    """Pillow image → float64 ``(H, W, C)`` in [0, 1], C in {1, 3}."""
    mode = im.mode
    if mode in ("1", "L", "LA", "La"):
        arr = (
            np.asarray(im.getchannel(0) if mode != "1" else im.convert("L"), dtype=np.float64)
            / 255.0
        )
        return arr[:, :, None]
    if mode.startswith("I;16"):
        return np.asarray(im, dtype=np.float64)[:, :, None] / 65535.0
    if mode == "I":
        arr = np.asarray(im, dtype=np.float64)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise InputError(
                f"{name}: 32-bit integer image with values outside 0..65535 is not supported"
            )
        return arr[:, :, None] / 65535.0
    if mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        if not np.isfinite(arr).all() or (arr.size and (arr.min() < 0 or arr.max() > 1)):
            raise InputError(f"{name}: floating-point image must hold finite values in [0, 1]")
        return arr[:, :, None]
    if mode != "RGB":
        im = im.convert("RGBA" if "A" in mode or "transparency" in im.info else "RGB")
    return np.asarray(im, dtype=np.float64)[:, :, :3] / 255.0


def _decode(data: bytes, name: str) -> np.ndarray:
    """Bytes → float64 ``(H, W, C)`` in [0, 1] with C in {1, 3}."""
    head = codecs.png_header(data)
    if head is not None:
        codecs.png_check(data, name)  # Pillow does not notice a PNG cut after its last IDAT
        if head[2] == 16 and head[3] in (2, 4, 6):
            arr = codecs.decode_png16(data, name)
            return arr[:, :, : 1 if arr.shape[2] == 2 else 3].astype(np.float64) / 65535.0
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        info = codecs.tiff_bits_per_sample(data)
        if info is not None and info[0] == 16 and info[1] >= 2:
            arr = codecs.decode_tiff16(data, name)
            return arr[:, :, : 1 if arr.shape[2] == 2 else 3].astype(np.float64) / 65535.0
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise InputError(f"{name}: {_bomb_message(e)}") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        # also a header cut short (Pillow raises a bare OSError, "Truncated File Read")
        raise InputError(
            f"{name}: not a readable image (supported: PNG, JPEG, BMP, TIFF); check the file"
        ) from e
    if im.format not in _PIL_FORMATS:
        raise InputError(
            f"{name}: unsupported image format {im.format}; convert it to PNG, JPEG, BMP or TIFF"
        )
    try:
        im.load()
    except Image.DecompressionBombError as e:
        raise InputError(f"{name}: {_bomb_message(e)}") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise InputError(
            f"{name}: cannot decode the image ({e}); the file is truncated or corrupt"
        ) from e
    return _pil_to_array(im, name)


def _bomb_message(e: Exception) -> str:
    return (
        f"the header announces more pixels than Pillow decodes by default ({e}); if the image is "
        "real, raise PIL.Image.MAX_IMAGE_PIXELS"
    )


def check_output_image(path: str | os.PathLike, what: str = "output") -> Path:
    """Check, before any work, that an image can be written to ``path``: a known extension and a
    writable folder (created if missing). Raises :class:`InputError` naming ``what``."""
    path = Path(path)
    if path.suffix.lower() not in _WRITE_FORMATS:
        raise InputError(
            f"{what} {str(path)!r}: extension {path.suffix!r} is not one of {list(_WRITE_FORMATS)}"
        )
    return check_writable(path, what)


def read_image(path: str | os.PathLike, *, channels: int | None = None) -> torch.Tensor:
    """Read an image file as a float32 tensor ``(C, H, W)`` in [0, 1].

    ``channels``: None keeps what is stored (gray → 1, everything else → 3), 1 converts to gray
    (BT.601 luma), 3 to RGB. 8-bit values are divided by 255, 16-bit by 65535.

    Raises :class:`DataNotFoundError` for a missing file and :class:`InputError` for an unreadable,
    truncated or unsupported one.
    """
    _check_channels(channels)
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(f"image file {str(path)!r} does not exist")
    if path.is_dir():
        raise InputError(f"{str(path)!r} is a folder, not an image file")
    arr = _decode(path.read_bytes(), str(path))
    image = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
    return to_channels(image, channels).float()


def _as_chw(image: Any, name: str) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        arr = image.detach().cpu().double().numpy()
    else:
        arr = np.asarray(image, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[0] not in (1, 3):
        raise InputError(
            f"write_image({name}): image shape {tuple(arr.shape)} is not (C, H, W) with C = 1 or 3, or (H, W)"
        )
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise InputError(f"write_image({name}): image shape {tuple(arr.shape)} is empty")
    if not np.isfinite(arr).all():
        raise InputError(
            f"write_image({name}): image holds NaN or Inf values; fix the computation that made it"
        )
    return arr


def write_image(
    path: str | os.PathLike, image: Any, *, bit_depth: int = 8, quality: int = 95
) -> None:
    """Write ``(C, H, W)`` or ``(H, W)`` values in [0, 1] (clipped) to PNG, JPEG, BMP or TIFF.

    The format follows the extension. ``bit_depth=16`` is available for PNG and TIFF. JPEG uses
    ``quality`` (1-95). The file appears atomically: a reader never sees it half-written.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in _WRITE_FORMATS:
        raise InputError(
            f"write_image: extension {path.suffix!r} of {str(path)!r} is not one of {list(_WRITE_FORMATS)}"
        )
    fmt = _WRITE_FORMATS[ext]
    if bit_depth not in (8, 16):
        raise InputError(f"write_image: bit_depth={bit_depth!r}; choose 8 or 16")
    if bit_depth == 16 and fmt not in ("PNG", "TIFF"):
        raise InputError(
            f"write_image: bit_depth=16 needs a .png or .tif file, got {path.suffix!r}"
        )
    arr = np.clip(_as_chw(image, str(path)), 0.0, 1.0).transpose(1, 2, 0)  # (H, W, C)
    if bit_depth == 16:
        u16 = np.rint(arr * 65535.0).astype(np.uint16)
        if u16.shape[2] == 3:
            data = codecs.encode_png16(u16) if fmt == "PNG" else codecs.encode_tiff16(u16)
        else:
            buf = io.BytesIO()
            Image.fromarray(u16[:, :, 0]).save(buf, format=fmt)
            data = buf.getvalue()
    else:
        u8 = np.rint(arr * 255.0).astype(np.uint8)
        im = Image.fromarray(u8[:, :, 0] if u8.shape[2] == 1 else u8)
        buf = io.BytesIO()
        kwargs = {"quality": int(quality)} if fmt == "JPEG" else {}
        im.save(buf, format=fmt, **kwargs)
        data = buf.getvalue()
    try:
        atomic_write_bytes(path, data)
    except OSError as e:
        raise InputError(f"cannot write {str(path)!r} ({e.strerror or e})") from e


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files (by extension: PNG, JPEG, BMP, TIFF) directly in ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.exists():
        raise DataNotFoundError(f"image folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise InputError(f"{str(folder)!r} is not a folder")
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )
