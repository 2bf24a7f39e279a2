"""Minimal 16-bit-per-sample PNG and TIFF codecs (numpy + zlib) for what Pillow cannot do.

Pillow reads 16-bit *grayscale* PNG/TIFF fine (mode ``I;16``) but silently truncates 16-bit RGB(A)
to 8 bits and cannot write it at all. These functions cover exactly that gap:

- PNG (ISO/IEC 15948, W3C PNG 2nd ed.): decode bit depth 16, colour types 0/2/4/6, not interlaced,
  all five filter types (section 9), chunk CRCs and the ``IEND`` chunk checked (so truncation is
  detected). Encode bit depth 16, gray or RGB, filter type 0, zlib level 6.
- TIFF 6.0 baseline: decode 16-bit samples, 1-4 samples per pixel, strips (not tiles), chunky or
  planar, uncompressed or Deflate (codes 8, 32946), horizontal predictor 2, either byte order.
  Encode little-endian, uncompressed, one strip, gray or RGB.

Every function returns or takes a ``uint16`` array of shape ``(H, W, C)``; errors are
:class:`~knnlab.errors.InputError` naming the file and what is not supported.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from knnlab.errors import InputError

__all__ = [
    "PNG_SIGNATURE",
    "decode_png16",
    "decode_tiff16",
    "encode_png16",
    "encode_tiff16",
    "png_header",
    "tiff_bits_per_sample",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel (16-bit capable)


def _png_chunks(data: bytes, name: str) -> list[tuple[bytes, bytes]]:
    """Walk a PNG's chunks, checking lengths and CRCs; raise if it ends before ``IEND``."""
    if not data.startswith(PNG_SIGNATURE):
        raise InputError(f"{name}: not a PNG file (bad signature)")
    pos, chunks = len(PNG_SIGNATURE), []
    while True:
        if pos + 8 > len(data):
            raise InputError(
                f"{name}: PNG file is truncated (no IEND chunk); re-export or re-download it"
            )
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise InputError(
                f"{name}: PNG file is truncated inside a {ctype!r} chunk; re-export or re-download it"
            )
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(ctype + body) & 0xFFFFFFFF != crc:
            raise InputError(f"{name}: PNG chunk {ctype!r} is corrupt (CRC mismatch)")
        chunks.append((ctype, body))
        pos = end
        if ctype == b"IEND":
            return chunks


def png_header(data: bytes) -> tuple[int, int, int, int, int] | None:
    """``(width, height, bit_depth, colour_type, interlace)`` from a PNG's IHDR, or None if not PNG."""
    if len(data) < 33 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    w, h, depth, ctype, _comp, _filt, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return w, h, depth, ctype, interlace


def png_check(data: bytes, name: str) -> None:
    """Raise :class:`InputError` if a PNG byte string is truncated or has a corrupt chunk."""
    _png_chunks(data, name)


def _unfilter(raw: np.ndarray, height: int, stride: int, bpp: int, name: str) -> np.ndarray:
    """Undo PNG scanline filters (PNG spec section 9.2). ``raw``: uint8, ``height*(1+stride)``."""
    if raw.size != height * (1 + stride):
        raise InputError(
            f"{name}: PNG image data has {raw.size} bytes, expected {height * (1 + stride)}"
        )
    rows = raw.reshape(height, 1 + stride)
    ftypes, filt = rows[:, 0], rows[:, 1:]
    out = np.empty((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        f, line = int(ftypes[y]), filt[y]
        if f == 0:  # None
            cur = line.copy()
        elif f == 1:  # Sub: Recon(x) = Filt(x) + Recon(a); a cumulative sum along pixels, mod 256
            cur = np.cumsum(line.reshape(-1, bpp), axis=0, dtype=np.uint8).reshape(-1)
        elif f == 2:  # Up
            cur = line + prev
        elif f in (3, 4):  # Average, Paeth: sequential along the row
            fl, up = line.tolist(), prev.tolist()
            rec = [0] * stride
            for i in range(stride):
                a = rec[i - bpp] if i >= bpp else 0
                b = up[i]
                if f == 3:
                    pred = (a + b) >> 1
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
                rec[i] = (fl[i] + pred) & 0xFF
            cur = np.array(rec, dtype=np.uint8)
        else:
            raise InputError(
                f"{name}: PNG scanline {y} has unknown filter type {f}; the file is corrupt"
            )
        out[y] = cur
        prev = cur
    return out


def decode_png16(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode a 16-bit PNG into ``uint16 (H, W, C)`` with C = 1, 2, 3 or 4 (alpha kept)."""
    chunks = _png_chunks(data, name)
    if chunks[0][0] != b"IHDR":
        raise InputError(f"{name}: PNG does not start with an IHDR chunk")
    w, h, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1][:13])
    if depth != 16 or ctype not in _PNG_CHANNELS:
        raise InputError(
            f"{name}: decode_png16 handles 16-bit gray/RGB(A) PNGs, got bit depth {depth}, colour type {ctype}"
        )
    if comp != 0 or filt != 0:
        raise InputError(f"{name}: PNG uses unknown compression/filter method ({comp}, {filt})")
    if interlace != 0:
        raise InputError(
            f"{name}: interlaced (Adam7) 16-bit colour PNGs are not supported; re-save it without interlacing"
        )
    try:
        raw = zlib.decompress(b"".join(body for ctype_, body in chunks if ctype_ == b"IDAT"))
    except zlib.error as e:
        raise InputError(
            f"{name}: PNG image data cannot be decompressed ({e}); the file is corrupt"
        ) from e
    c = _PNG_CHANNELS[ctype]
    bpp = 2 * c
    out = _unfilter(np.frombuffer(raw, dtype=np.uint8), h, w * bpp, bpp, name)
    return out.reshape(h, w * c * 2).view(">u2").astype(np.uint16).reshape(h, w, c)


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body))
        + ctype
        + body
        + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)
    )


def encode_png16(image: np.ndarray) -> bytes:
    """Encode ``uint16 (H, W, C)`` (C = 1 or 3) as a 16-bit PNG (filter type 0, zlib level 6)."""
    h, w, c = image.shape
    ctype = {1: 0, 3: 2}[c]
    rows = np.ascontiguousarray(image.astype(">u2")).view(np.uint8).reshape(h, w * c * 2)
    raw = np.concatenate([np.zeros((h, 1), dtype=np.uint8), rows], axis=1).tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )


# ----------------------------------------------------------------------------------------- TIFF
_TIFF_TYPES = {1: ("B", 1), 3: ("H", 2), 4: ("I", 4), 5: ("II", 8), 16: ("Q", 8)}


def _tiff_ifd(data: bytes, name: str) -> tuple[str, dict[int, tuple[int, ...]]]:
    if len(data) < 8 or data[:4] not in (b"II*\x00", b"MM\x00*"):
        raise InputError(f"{name}: not a TIFF file (bad header)")
    bo = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(bo + "I", data[4:8])
    if offset + 2 > len(data):
        raise InputError(f"{name}: TIFF file is truncated (IFD past the end of the file)")
    (n,) = struct.unpack(bo + "H", data[offset : offset + 2])
    if offset + 2 + 12 * n > len(data):
        raise InputError(f"{name}: TIFF file is truncated inside its IFD")
    tags: dict[int, tuple[int, ...]] = {}
    for i in range(n):
        entry = data[offset + 2 + 12 * i : offset + 14 + 12 * i]
        tag, typ, count = struct.unpack(bo + "HHI", entry[:8])
        if typ not in _TIFF_TYPES:
            continue
        fmt, size = _TIFF_TYPES[typ]
        nbytes = size * count
        if nbytes <= 4:
            payload = entry[8 : 8 + nbytes]
        else:
            (voff,) = struct.unpack(bo + "I", entry[8:12])
            if voff + nbytes > len(data):
                raise InputError(f"{name}: TIFF file is truncated (tag {tag} points past the end)")
            payload = data[voff : voff + nbytes]
        tags[tag] = struct.unpack(bo + fmt * count, payload)
    return bo, tags


def tiff_bits_per_sample(data: bytes) -> tuple[int, int] | None:
    """``(bits_per_sample, samples_per_pixel)`` of a TIFF's first image, or None if unreadable."""
    try:
        _bo, tags = _tiff_ifd(data, "")
    except InputError:
        return None
    return tags.get(258, (1,))[0], tags.get(277, (1,))[0]


def decode_tiff16(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode a 16-bit TIFF (strips, none/Deflate, predictor 1/2) into ``uint16 (H, W, C)``."""
    bo, tags = _tiff_ifd(data, name)
    try:
        w, h = tags[256][0], tags[257][0]
        offsets, counts = tags[273], tags[279]
    except KeyError as e:
        if 322 in tags:
            raise InputError(
                f"{name}: tiled 16-bit TIFFs are not supported; save it with strips"
            ) from e
        raise InputError(f"{name}: TIFF lacks required tag {e.args[0]}") from e
    c = tags.get(277, (1,))[0]
    bps = tags.get(258, (16,))
    comp = tags.get(259, (1,))[0]
    planar = tags.get(284, (1,))[0]
    predictor = tags.get(317, (1,))[0]
    if any(b != 16 for b in bps) or tags.get(339, (1,))[0] not in (1,):
        raise InputError(
            f"{name}: decode_tiff16 handles unsigned 16-bit samples, got bits per sample {bps}"
        )
    if comp not in (1, 8, 32946):
        raise InputError(
            f"{name}: 16-bit TIFF compression {comp} is not supported (only none and Deflate); "
            "re-save it uncompressed"
        )
    parts = []
    for off, cnt in zip(offsets, counts):
        if off + cnt > len(data):
            raise InputError(
                f"{name}: TIFF file is truncated (image data past the end of the file)"
            )
        strip = data[off : off + cnt]
        if comp != 1:
            try:
                strip = zlib.decompress(strip)
            except zlib.error as e:
                raise InputError(f"{name}: TIFF strip cannot be decompressed ({e})") from e
        parts.append(strip)
    raw = b"".join(parts)
    need = w * h * c * 2
    if len(raw) < need:
        raise InputError(f"{name}: TIFF file is truncated ({len(raw)} of {need} image bytes)")
    arr = np.frombuffer(raw[:need], dtype=bo + "u2").astype(np.uint16)
    if planar == 2:
        arr = arr.reshape(c, h, w).transpose(1, 2, 0)
    else:
        arr = arr.reshape(h, w, c)
    if predictor == 2:  # horizontal differencing, per sample, mod 2**16
        arr = np.cumsum(arr, axis=1, dtype=np.uint16)
    elif predictor != 1:
        raise InputError(f"{name}: TIFF predictor {predictor} is not supported")
    return np.ascontiguousarray(arr)


def encode_tiff16(image: np.ndarray) -> bytes:
    """Encode ``uint16 (H, W, C)`` (C = 1 or 3) as an uncompressed little-endian baseline TIFF."""
    h, w, c = image.shape
    pixels = np.ascontiguousarray(image.astype("<u2")).tobytes()
    n_tags = 12
    ifd_off = 8
    extra = ifd_off + 2 + 12 * n_tags + 4  # where out-of-line values start
    bps_off = extra
    xres_off = bps_off + (6 if c == 3 else 0)
    yres_off = xres_off + 8
    data_off = yres_off + 8

    def entry(tag: int, typ: int, count: int, value: int) -> bytes:
        if typ == 3 and count == 1:
            return struct.pack("<HHIHH", tag, typ, count, value, 0)
        return struct.pack("<HHII", tag, typ, count, value)

    entries = [
        entry(256, 4, 1, w),
        entry(257, 4, 1, h),
        entry(258, 3, c, bps_off) if c == 3 else entry(258, 3, 1, 16),
        entry(259, 3, 1, 1),
        entry(262, 3, 1, 2 if c == 3 else 1),
        entry(273, 4, 1, data_off),
        entry(277, 3, 1, c),
        entry(278, 4, 1, h),
        entry(279, 4, 1, len(pixels)),
        entry(282, 5, 1, xres_off),
        entry(283, 5, 1, yres_off),
        entry(284, 3, 1, 1),
    ]
    assert len(entries) == n_tags
    out = b"II*\x00" + struct.pack("<I", ifd_off) + struct.pack("<H", n_tags) + b"".join(entries)
    out += struct.pack("<I", 0)
    if c == 3:
        out += struct.pack("<HHH", 16, 16, 16)
    out += struct.pack("<II", 72, 1) + struct.pack("<II", 72, 1)
    assert len(out) == data_off
    return out + pixels
