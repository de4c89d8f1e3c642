import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from model.images import MAX_PIXELS, ImageDecodeError, decode_image, read_image


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _digit_like(mode="L", size=(40, 30)):
    pixels = np.zeros(size[::-1], np.uint8)
    pixels[5:25, 10:14] = 255
    return Image.fromarray(pixels).convert(mode)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"])
def test_each_accepted_format_decodes(fmt):
    array = decode_image(_encode(_digit_like("RGB"), fmt))
    assert array.shape[:2] == (30, 40) and array.dtype == np.uint8
    assert array.max() > 200 and array.min() < 50


def test_first_frame_of_an_animation():
    frames = [Image.new("L", (20, 20), 255), Image.new("L", (20, 20), 0)]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert decode_image(data).min() > 200


def test_transparency_is_kept_as_rgba():
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    rgba.putpixel((5, 5), (0, 0, 0, 255))
    assert decode_image(_encode(rgba, "PNG")).shape == (10, 10, 4)
    palette = rgba.convert("P")
    palette.info["transparency"] = 0
    assert decode_image(_encode(palette, "PNG", transparency=0)).shape[2] == 4


def test_sixteen_bit_images_are_scaled_to_unit_range():
    pixels = np.zeros((8, 8), np.uint16)
    pixels[2:6, 2:6] = 65535
    array = decode_image(_encode(Image.fromarray(pixels), "PNG"))
    assert array.dtype == np.float32 and array.max() == pytest.approx(1.0) and array.min() == 0.0


def test_exif_orientation_is_applied():
    wide = Image.new("L", (40, 20), 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = _encode(wide, "JPEG", exif=exif)
    assert decode_image(data).shape == (40, 20)


def _png_claiming(width, height):
    """A valid 1x1 PNG whose header claims another size: what a decompression bomb looks like."""
    data = bytearray(_encode(Image.new("L", (1, 1)), "PNG"))
    ihdr = 8 + 8  # signature, then length + type
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


@pytest.mark.parametrize("width, height", [(30000, 30000), (8000, 8000)])
def test_decompression_bomb_is_refused_from_the_header(width, height):
    # Only the header is read: decoding 30000x30000 would need ~900 MB.
    with pytest.raises(ImageDecodeError, match="megapixels: resize it"):
        decode_image(_png_claiming(width, height), "bomb.png")


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"hello, I am text", "not an image"),
    (b"<html><body>nope</body></html>", "not an image"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="10" height="10"/></svg>', "not an image"),
])
def test_non_images_get_a_clear_message(data, message):
    with pytest.raises(ImageDecodeError, match=message):
        decode_image(data, "upload.png")


def test_truncated_image_gets_a_clear_message():
    data = _encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)), "PNG")
    with pytest.raises(ImageDecodeError, match="truncated or corrupt"):
        decode_image(data[: len(data) // 2], "cut.png")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageDecodeError, match="does not exist"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageDecodeError, match="folder"):
        read_image(tmp_path)


def test_limit_is_sane():
    assert 12_000_000 <= MAX_PIXELS < 30000 * 30000


def _large_photo(fmt: str, width: int = 4400, height: int = 4000) -> bytes:
    """An opaque colour photo of over 16 MP: a dark bar on light, bluish paper, sideways by its EXIF tag."""
    pixels = np.full((height, width, 3), (200, 205, 215), np.uint8)
    pixels[1000:3000, 2000:2400] = (40, 40, 60)
    picture = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to show
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, exif=exif, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def test_a_large_opaque_photo_is_decoded_grey_and_a_jpeg_at_half_size():
    """Issue 34: a 40 MP photo cost 600 MB decoded in colour; reading needs at most 512 px of grey."""
    from model.images import LARGE_PIXELS

    assert 4400 * 4000 > LARGE_PIXELS
    jpeg, png = decode_image(_large_photo("JPEG")), decode_image(_large_photo("PNG"))
    assert jpeg.shape == (2200, 2000) and jpeg.dtype == np.uint8  # grey, half size, upright (EXIF applied)
    assert png.shape == (4400, 4000) and png.dtype == np.uint8
    for grey, scale in ((jpeg, 2), (png, 1)):  # the bar, turned with the picture, is where it should be
        bar = grey[2000 // scale:2400 // scale, 1000 // scale:3000 // scale]
        assert bar.mean() < 80 and np.delete(grey, np.s_[1900 // scale:2500 // scale], axis=0).mean() > 180


def test_below_the_large_size_a_photo_decodes_as_before():
    small = _large_photo("JPEG", 1600, 1200)
    assert decode_image(small).shape == (1600, 1200, 3)  # colour, full size, upright
