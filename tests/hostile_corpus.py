"""Broken, fake, huge and unusual image files, each with the outcome a user should get.

Built on the fly from the MNIST test digits of the fixture (nothing binary is
committed). ``build(folder, digits)`` writes the files and returns
``{file name: expected}``, where expected is a digit (read it), ``None`` (an
image with no digit in it: say so) or ``"error"`` (not an image we can read:
a clear message).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

EXIF_ORIENTATION = 0x0112


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = 30000) -> bytes:
    """A real side x side 1-bit PNG, all white: a few hundred KB on disk, 900 MB as 8-bit pixels."""
    row = b"\x00" + b"\xff" * (side // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1 bit, grayscale
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def _paper(digit: np.ndarray, scale: int = 8) -> np.ndarray:
    """Dark ink on white paper, enlarged: uint8 gray."""
    return 255 - np.kron(np.pad(digit, 4), np.ones((scale, scale), np.uint8))


def build(folder: Path, digits: dict[int, np.ndarray]) -> dict[str, int | str | None]:
    """Write the corpus into `folder`; `digits` maps a label to a 28x28 MNIST test image of it."""
    folder.mkdir(parents=True, exist_ok=True)
    three, seven, four = digits[3], digits[7], digits[4]
    gray = _paper(seven)
    real_png = _save(Image.fromarray(gray), "PNG")
    files: dict[str, tuple[bytes, int | str | None]] = {
        # broken or fake
        "zero-bytes.png": (b"", "error"),
        "truncated.png": (real_png[: len(real_png) // 2], "error"),
        "page.png": (b"<!doctype html><html><body>not a picture</body></html>", "error"),
        "notes.jpg": (b"digits: 7 3 4\n" * 20, "error"),
        "drawing.svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="280" height="280">'
                        b'<path d="M60 40 H200 L120 240" stroke="black" stroke-width="20" fill="none"/></svg>', "error"),
        "renamed.svg.png": (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "error"),
        # decompression bombs, oversized files and odd sizes
        "bomb-30000x30000.png": (bomb_png(), "error"),
        "oversized.jpg": (b"\xff\xd8\xff\xe0" + bytes(26 * 2**20), "error"),  # 26 MB: over the 25 MB limit
        "one-pixel.png": (_save(Image.new("L", (1, 1), 255), "PNG"), None),
        "huge-blank.png": (_save(Image.new("L", (6000, 6000), 255), "PNG"), None),
        # unusual formats, to be read
        "sixteen-bit.png": (_save(Image.fromarray((gray.astype(np.uint16) * 257)), "PNG"), 7),
        "float.tiff": (_save(Image.fromarray(gray.astype(np.float32) / 255.0, mode="F"), "TIFF"), 7),
        "cmyk.jpg": (_save(Image.fromarray(_paper(three)).convert("CMYK"), "JPEG", quality=92), 3),
        "palette-transparent.png": (_palette_with_transparency(four), 4),
        "gray-alpha.png": (_save(Image.fromarray(np.dstack([np.zeros_like(_paper(three)), 255 - _paper(three)]),
                                                 mode="LA"), "PNG"), 3),
        # transparent paper, as a viewer shows it: dark ink on white
        "palette-paper-transparent.png": (_transparent_paper(seven, "P"), 7),
        "gray-alpha-paper-transparent.png": (_transparent_paper(four, "LA"), 4),
        "rgba-paper-transparent.png": (_transparent_paper(three, "RGBA"), 3),
        "animated.gif": (_animation(seven, three), 7),
        "scan.tiff": (_save(Image.fromarray(_paper(four)), "TIFF"), 4),
        "photo.webp": (_save(Image.fromarray(_paper(three)).convert("RGB"), "WEBP", quality=90), 3),
        "paint.bmp": (_save(Image.fromarray(_paper(seven)).convert("RGB"), "BMP"), 7),
        "phone-sideways.jpg": (_sideways_jpeg(seven), 7),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: expected for name, (_, expected) in files.items()}


def _palette_with_transparency(digit: np.ndarray) -> bytes:
    """Ink in palette entry 1 on a transparent background (entry 0): how icon editors save."""
    indices = (np.kron(np.pad(digit, 4), np.ones((8, 8), np.uint8)) > 100).astype(np.uint8)
    image = Image.fromarray(indices, mode="P")
    image.putpalette([255, 255, 255, 20, 20, 120] + [0, 0, 0] * 254)
    return _save(image, "PNG", transparency=0)


def _soft_paper(digit: np.ndarray, side: int = 288) -> np.ndarray:
    """Dark ink on white, enlarged smoothly: grey edges around every stroke, as a scan or a brush leaves."""
    return 255 - cv2.resize(np.pad(digit, 4), (side, side), interpolation=cv2.INTER_LINEAR)


def _transparent_paper(digit: np.ndarray, mode: str) -> bytes:
    """The paper made transparent and the ink's grey edges kept opaque.

    "P": a greyscale drawing converted to the web palette (dithered), its white index transparent;
    "LA"/"RGBA": the grey itself, with alpha 0 where the paper is white. The opaque pixels are then
    mostly light grey edges, not ink."""
    gray = _soft_paper(digit)
    if mode == "P":
        image = Image.fromarray(gray).convert("RGB").convert("P")  # the web palette, dithered
        palette = np.array(image.getpalette()).reshape(-1, 3)
        used = np.unique(np.asarray(image))
        return _save(image, "PNG", transparency=int(used[np.argmax(palette[used].sum(axis=1))]))
    alpha = np.where(gray >= 250, 0, 255).astype(np.uint8)
    channels = [gray, alpha] if mode == "LA" else [gray, gray, gray, alpha]
    return _save(Image.fromarray(np.dstack(channels), mode=mode), "PNG")


def _animation(first: np.ndarray, second: np.ndarray) -> bytes:
    frames = [Image.fromarray(_paper(d)) for d in (first, second)]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=300, loop=0)


def _sideways_jpeg(digit: np.ndarray) -> bytes:
    """Stored turned a quarter, with the EXIF tag that tells viewers to turn it back."""
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(_paper(digit), 1))).convert("RGB")
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # rotate 90° clockwise to display
    return _save(stored, "JPEG", quality=92, exif=exif)
