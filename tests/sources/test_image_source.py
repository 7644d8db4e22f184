"""ImageSource: formats, EXIF orientation, colour modes, multi-page TIFF and bad images."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from deepseek_ocr2_loaders.errors import CorruptInputError, InputError, UnsupportedInputError
from deepseek_ocr2_loaders.sources import ImageSource, SourcePage, open_source
from deepseek_ocr2_loaders.sources._image import to_rgb

RED = (255, 0, 0)
WHITE = (255, 255, 255)


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def only_page(data: bytes | Path, name: str | None = None) -> SourcePage:
    with open_source(data, name=name) as source:
        assert isinstance(source, ImageSource)
        assert source.total_pages == 1
        return next(source.iter_pages())


def close_to(pixel: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def marked_rgb(size: tuple[int, int] = (40, 20)) -> Image.Image:
    """White image with a red 10x10 block in the top-left corner."""
    image = Image.new("RGB", size, WHITE)
    image.paste(RED, (0, 0, 10, 10))
    return image


@pytest.mark.parametrize(
    ("fmt", "params"),
    [("PNG", {}), ("JPEG", {"quality": 95}), ("WEBP", {"lossless": True}), ("BMP", {}), ("GIF", {}), ("TIFF", {})],
)
def test_formats_decode_to_rgb_pixels(tmp_path: Path, fmt: str, params: dict[str, object]) -> None:
    path = tmp_path / f"scan.{fmt.lower()}"
    path.write_bytes(encode(marked_rgb(), fmt, **params))
    page = only_page(path)
    assert (page.index, page.label, page.unit, page.text) == (0, "1", "px", None)
    assert (page.width, page.height) == (40.0, 20.0)
    assert page.image.mode == "RGB"
    assert page.image.size == (40, 20)
    assert close_to(page.image.getpixel((3, 3)), RED)
    assert close_to(page.image.getpixel((30, 15)), WHITE)


def test_jpeg_exif_orientation_6_is_turned_upright() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display by turning 90 degrees clockwise
    page = only_page(encode(marked_rgb((40, 20)), "JPEG", quality=95, exif=exif))
    assert page.image.size == (20, 40)
    assert (page.width, page.height) == (20.0, 40.0)
    # The red top-left block moves to the top-right corner.
    assert close_to(page.image.getpixel((16, 3)), RED)
    assert close_to(page.image.getpixel((3, 3)), WHITE)


def test_multi_frame_tiff_is_one_page_per_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (30 + 10 * i, 20), colour) for i, colour in enumerate([RED, (0, 255, 0), (0, 0, 255)])]
    path = tmp_path / "fax.tiff"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with open_source(path) as source:
        assert source.total_pages == 3
        pages = list(source.iter_pages([2, 0, 1]))
    assert [p.index for p in pages] == [2, 0, 1]
    assert [p.label for p in pages] == ["3", "1", "2"]
    assert [p.image.size for p in pages] == [(50, 20), (30, 20), (40, 20)]
    assert [p.image.getpixel((0, 0)) for p in pages] == [(0, 0, 255), RED, (0, 255, 0)]


def test_animated_gif_is_one_page() -> None:
    frames = [Image.new("RGB", (10, 10), colour) for colour in (RED, (0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    with Image.open(io.BytesIO(data)) as animation:
        assert animation.n_frames == 3
    page = only_page(data)  # animation frames are not pages: the first frame is the page
    assert page.image.size == (10, 10)
    assert page.image.getpixel((5, 5)) == RED


def test_cmyk_jpeg() -> None:
    page = only_page(encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95))
    assert page.image.mode == "RGB"
    assert close_to(page.image.getpixel((8, 8)), RED, tolerance=20)


def test_16_bit_grey_png_is_scaled_not_clipped() -> None:
    gradient = Image.new("I;16", (256, 4))
    gradient.putdata([x * 257 for x in range(256)] * 4)
    data = encode(gradient, "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    image = only_page(data).image
    values = [image.getpixel((x, 0))[0] for x in range(256)]
    assert values[0] == 0
    assert values[255] == 255
    assert 120 <= values[128] <= 136  # clipping would give 255 here
    assert len(set(values)) > 250


def test_palette_png_with_transparency_is_on_white() -> None:
    image = Image.new("P", (10, 10), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 5, 10))
    data = encode(image, "PNG", transparency=0)  # index 0 (black) is transparent
    page = only_page(data)
    assert page.image.getpixel((2, 2)) == RED
    assert page.image.getpixel((8, 8)) == WHITE


def test_rgba_transparency_is_composited_on_white() -> None:
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    image.putpixel((1, 1), (255, 0, 0, 255))
    image.putpixel((2, 2), (255, 0, 0, 128))
    page = only_page(encode(image, "PNG"))
    assert page.image.getpixel((5, 5)) == WHITE
    assert page.image.getpixel((1, 1)) == RED
    assert close_to(page.image.getpixel((2, 2)), (255, 127, 127), tolerance=2)


def test_la_png_is_composited_on_white() -> None:
    image = Image.new("LA", (10, 10), (0, 0))
    image.putpixel((1, 1), (0, 255))
    page = only_page(encode(image, "PNG"))
    assert page.image.getpixel((5, 5)) == WHITE
    assert page.image.getpixel((1, 1)) == (0, 0, 0)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (Image.new("1", (4, 4), 1), WHITE),
        (Image.new("L", (4, 4), 128), (128, 128, 128)),
        (Image.new("P", (4, 4), 0), (0, 0, 0)),
        (Image.new("YCbCr", (4, 4), (255, 128, 128)), WHITE),
        (Image.new("F", (4, 4), 0.5), (128, 128, 128)),  # floats in 0..1
        (Image.new("I", (4, 4), 100), (100, 100, 100)),  # already 8-bit values
        (Image.new("I", (4, 4), 65535), WHITE),  # 16-bit values
        (Image.new("RGBa", (4, 4), (0, 0, 0, 0)), WHITE),
        (Image.new("PA", (4, 4), (0, 0)), WHITE),
    ],
    ids=lambda value: getattr(value, "mode", ""),
)
def test_to_rgb_every_mode(image: Image.Image, expected: tuple[int, int, int]) -> None:
    rgb = to_rgb(image)
    assert rgb.mode == "RGB"
    assert rgb.size == image.size
    assert close_to(rgb.getpixel((1, 1)), expected, tolerance=1)


def test_to_rgb_stretches_signed_32_bit_grey() -> None:
    image = Image.new("I", (3, 1))
    image.putdata([-1000, 0, 1000])
    rgb = to_rgb(image)
    low, middle, high = (rgb.getpixel((x, 0))[0] for x in range(3))
    assert (low, high) == (0, 255)
    assert middle in (127, 128)


def test_truncated_png_is_a_corrupt_input_error_at_its_page(tmp_path: Path) -> None:
    data = encode(Image.effect_noise((64, 64), 50).convert("RGB"), "PNG")
    path = tmp_path / "truncated.png"
    path.write_bytes(data[: len(data) // 2])
    with open_source(path) as source:
        with pytest.raises(InputError, match="corrupt or truncated image") as caught:
            next(source.iter_pages())
    assert type(caught.value) is CorruptInputError
    assert caught.value.source == str(path)
    assert caught.value.page == 0
    assert "truncated.png" in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_decompression_bomb_is_an_input_error_and_pil_state_is_untouched(tmp_path: Path) -> None:
    before = Image.MAX_IMAGE_PIXELS
    header = struct.pack(">IIBBBBB", 30_000, 30_000, 8, 2, 0, 0, 0)  # 900 MP RGB, no pixel data
    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IEND", b""))
    with pytest.raises(InputError, match="too large") as caught:
        open_source(path)
    assert "bomb.png" in str(caught.value)
    assert isinstance(caught.value.__cause__, Image.DecompressionBombError)
    assert Image.MAX_IMAGE_PIXELS == before


@pytest.mark.parametrize(("fmt", "mode"), [("ICO", "RGBA"), ("PPM", "RGB"), ("PCX", "RGB")])
def test_images_outside_the_supported_formats_are_refused(tmp_path: Path, fmt: str, mode: str) -> None:
    path = tmp_path / f"picture.{fmt.lower()}"
    path.write_bytes(encode(Image.new(mode, (16, 16)), fmt))
    with Image.open(path) as image:  # PIL itself reads it
        image.load()
    with pytest.raises(UnsupportedInputError, match="not a PDF or a supported image") as caught:
        open_source(path)
    assert caught.value.source == str(path)


def test_closed_image_source_refuses_pages() -> None:
    source = open_source(encode(marked_rgb(), "PNG"))
    source.close()
    source.close()
    with pytest.raises(InputError, match="closed"):
        source.load_page(0)
