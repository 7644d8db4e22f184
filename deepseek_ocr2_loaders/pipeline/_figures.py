"""Crop the figures the model found (``image`` blocks) out of the rendered page."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..types import Block, Figure

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["crop_figures"]


def crop_figures(
    image: Image.Image,
    blocks: tuple[Block, ...],
    figure_blocks: tuple[int, ...],
    *,
    page_width: float,
    page_height: float,
    figure_name: Callable[[int], str],
) -> tuple[Figure, ...]:
    """Cut each linked ``image`` block out of the page image.

    Boxes are in page units (points or pixels); the rendered image may be larger (PDFs at
    144 DPI), so boxes are scaled to the image and kept at least one pixel wide.
    """
    scale_x, scale_y = image.width / page_width, image.height / page_height
    figures = []
    for number, index in enumerate(figure_blocks):
        bbox = blocks[index].bbox
        if bbox is None:
            continue
        left = min(int(bbox[0] * scale_x), image.width - 1)
        top = min(int(bbox[1] * scale_y), image.height - 1)
        right = max(int(round(bbox[2] * scale_x)), left + 1)
        bottom = max(int(round(bbox[3] * scale_y)), top + 1)
        figures.append(Figure(name=figure_name(number), bbox=bbox, image=image.crop((left, top, right, bottom))))
    return tuple(figures)
