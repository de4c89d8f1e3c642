"""Decode image files and bytes into numpy arrays, refusing what is unsafe or unreadable.

Pillow does the decoding. We add what it does not: a size check from the
header before any pixel is decoded (decompression bombs), the first frame of
animations, EXIF orientation, and one error type with a message a user can act on.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ACCEPTED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP", "BMP": "BMP", "TIFF": "TIFF", "GIF": "GIF", "MPO": "JPEG"}
ACCEPTED_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff")
MAX_FILE_BYTES = 25 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 40-megapixel photo; decoded as RGBA that is 160 MB
# Above this, an opaque colour image is decoded into as little as reading needs (grey; a JPEG at half size by
# its decoder), since preprocessing works on at most 512 px anyway (issue 34: a 40 MP PNG cost 600 MB). Below
# it, images decode exactly as before, so every reading of the benches' photos stays the same.
LARGE_PIXELS = 16_000_000
_TRANSPARENT_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}


class ImageDecodeError(ValueError):
    """The input is not an image we can read; the message says why and what would work."""


def _formats() -> str:
    return ", ".join(sorted(set(ACCEPTED_FORMATS.values())))


def read_bytes(path: str | Path) -> bytes:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImageDecodeError(
                f"{path.name} is {size / 2**20:.1f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB. Send a smaller photo.")
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageDecodeError(f"{path} does not exist.") from None
    except IsADirectoryError:
        raise ImageDecodeError(f"{path} is a folder, not an image file.") from None
    except PermissionError:
        raise ImageDecodeError(f"{path} cannot be read (permission denied).") from None


def decode_image(data: bytes, name: str = "the image") -> np.ndarray:
    """Bytes of a PNG/JPEG/WebP/BMP/TIFF/GIF -> an array for model.preprocess.

    Returns uint8 HxW (gray), HxWx3 (RGB) or HxWx4 (RGBA, when there is
    transparency), or float32 HxW in [0, 1] for 16-bit and float images.
    """
    if not data:
        raise ImageDecodeError(f"{name} is empty (0 bytes). Expected an image file: {_formats()}.")
    if len(data) > MAX_FILE_BYTES:
        raise ImageDecodeError(f"{name} is {len(data) / 2**20:.1f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB.")
    too_large = f"the limit is {MAX_PIXELS / 1e6:.0f} megapixels: resize it before uploading"
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
        kind = ACCEPTED_FORMATS.get(image.format or "")
        if kind is None:
            raise ImageDecodeError(f"{name} is a {image.format} image; expected {_formats()}.")
        width, height = image.size
        if width * height > MAX_PIXELS or width <= 0 or height <= 0:
            raise ImageDecodeError(f"{name} is {width}x{height} pixels; {too_large}.")
        image.seek(0)  # the first frame of an animation
        if width * height > LARGE_PIXELS and _opaque_colour(image):
            image = _decoded_grey(image)
        ImageOps.exif_transpose(image, in_place=True)  # not a copy of the whole picture
        return _to_array(image)
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        raise ImageDecodeError(f"{name} is not an image file we can read. Expected {_formats()}.") from None
    except Image.DecompressionBombError as error:
        # Pillow's own, stricter-than-ours check fired first, from the header.
        raise ImageDecodeError(f"{name} is too large ({error}); {too_large}.") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as error:
        raise ImageDecodeError(f"{name} is truncated or corrupt ({error}). Save or export it again.") from None


def _opaque_colour(image: Image.Image) -> bool:
    return image.mode in ("RGB", "YCbCr", "CMYK", "P") and "transparency" not in image.info


def _decoded_grey(image: Image.Image) -> Image.Image:
    """A large opaque colour image as grey, decoded into as little memory as the format allows: a JPEG by its
    decoder at half size in grey (`draft`), anything else decoded and made grey, the colour copy let go."""
    if image.format in ("JPEG", "MPO"):
        image.draft("L", (image.width // 2, image.height // 2))
    image.load()
    return image if image.mode == "L" else image.convert("L")


def _to_array(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image.convert("I"), dtype=np.float64)
        top = 65535.0 if values.max() > 255 or mode.startswith("I;16") else 255.0
        return (np.clip(values, 0, top) / top).astype(np.float32)
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float32))
        top = float(values.max())
        return np.clip(values / (255.0 if top > 1.0 else 1.0), 0.0, 1.0)
    if mode in _TRANSPARENT_MODES or (mode == "P" and "transparency" in image.info) or "transparency" in image.info:
        return _as(image, "RGBA")
    if mode in ("1", "L"):
        return _as(image, "L")
    return _as(image, "RGB")


def _as(image: Image.Image, mode: str) -> np.ndarray:
    """The pixels in `mode` as an array; an image already in it is not converted (a copy of a 40 MP picture)."""
    return np.asarray(image if image.mode == mode else image.convert(mode))


def read_image(path: str | Path) -> np.ndarray:
    return decode_image(read_bytes(path), Path(path).name)


def encode_png(image: np.ndarray, max_side: int | None = None) -> bytes:
    """An array as decode_image returns it -> PNG bytes, optionally shrunk to `max_side`."""
    array = np.asarray(image)
    if array.dtype != np.uint8:  # 16-bit and float images come back as floats in [0, 1]
        array = np.clip(np.nan_to_num(array.astype(np.float32)) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    picture = Image.fromarray(array)
    if max_side and max(picture.size) > max_side:
        picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
