"""Any Pillow mode to RGB as the page would look printed: alpha on white, deep grey scaled.

Every mode Pillow gives a real file reaches RGB here (``tests/sources`` walks them all);
``La`` (premultiplied alpha, from libtiff) goes through ``LA``, since Pillow cannot convert
it to ``RGBA`` directly.
"""

from __future__ import annotations

from typing import cast

from PIL import Image

__all__ = ["to_rgb"]

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_DEEP_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to a new RGB image as it would look printed on white paper.

    Alpha is composited onto white (PIL's ``convert("RGB")`` would drop it and show black or
    garbage under transparent pixels); high-bit-depth grey is scaled, not clipped to 255.

    Args:
        image: An image in any mode.

    Returns:
        A new ``RGB`` image of the same size.
    """
    if image.mode == "La":
        image = image.convert("LA")
    if image.mode in _DEEP_MODES:
        return _deep_to_l(image).convert("RGB")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("RGB")
    return image.convert("RGB")


def _deep_to_l(image: Image.Image) -> Image.Image:
    """Scale 16-bit, 32-bit integer or float grey to 8 bits.

    16-bit modes map 0..65535 onto 0..255 (divide by 257). For ``I`` and ``F`` the range is
    read from the data: 8-bit values stay, 16-bit values are divided by 257, floats in 0..1
    are multiplied by 255, and anything else is stretched from its minimum to its maximum.
    """
    grey = image if image.mode in ("I", "F") else image.convert("I")
    low, high = cast("tuple[float, float]", grey.getextrema())  # one band: (min, max)
    if image.mode == "F" and low >= 0 and high <= 1:
        scale = 255.0
    elif image.mode not in ("I", "F") or (low >= 0 and 255 < high <= 65535):
        scale = 1 / 257
    elif low >= 0 and high <= 255:
        scale = 1.0
    else:
        scale = 255.0 / (high - low) if high > low else 0.0
        return grey.point(lambda v: v * scale - low * scale).convert("L")
    return grey.point(lambda v: v * scale).convert("L")
