"""Page images with a few lines of text, for tests that feed the real (tiny) engine."""

from __future__ import annotations

from PIL import Image, ImageDraw


def text_page(width: int, height: int, label: str, rows: int = 5) -> Image.Image:
    """A white ``width`` x ``height`` page with ``rows`` lines naming ``label``; its size sets its crop count."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for row in range(rows):
        draw.text((30, 30 + 50 * row), f"{label} line {row}", fill="black")
    return image
