"""How many vision tokens DeepSeek-OCR-2 spends on a page image.

The rule, from the model's image processor: a 1024x1024 global view gives 256 tokens;
a page larger than 768 px on a side is also cut into a grid of 2..6 crops of 768x768,
144 tokens each; one separator token closes the image. The grid is the one whose aspect
ratio is closest to the page's (ties go to more crops while they cover less than twice
the page's area). Kept here, torch-free, so scripted engines and metadata agree with the
real processor (a test checks that they do).
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["GLOBAL_VIEW_TOKENS", "TILE_SIZE", "TILE_TOKENS", "count_crops", "count_vision_tokens"]

GLOBAL_VIEW_TOKENS = 256
TILE_TOKENS = 144
TILE_SIZE = 768
MIN_CROPS, MAX_CROPS = 2, 6


@lru_cache(maxsize=1)
def _grids() -> tuple[tuple[int, int], ...]:
    grids = [
        (cols, rows)
        for cols in range(1, MAX_CROPS + 1)
        for rows in range(1, MAX_CROPS + 1)
        if MIN_CROPS <= cols * rows <= MAX_CROPS
    ]
    return tuple(sorted(grids, key=lambda grid: grid[0] * grid[1]))


def count_crops(width: int, height: int) -> int:
    """Number of 768x768 crops for an image of ``width`` x ``height`` pixels."""
    if max(width, height) <= TILE_SIZE:
        return 0
    aspect, area = width / height, width * height
    best, best_diff = (1, 1), float("inf")
    for cols, rows in _grids():
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and area > 0.5 * TILE_SIZE * TILE_SIZE * cols * rows:
            best = (cols, rows)
    return best[0] * best[1]


def count_vision_tokens(width: int, height: int, *, crops: bool = True) -> int:
    """Vision tokens for one page image: 256 + 144 per crop + 1 separator.

    Examples:
        >>> count_vision_tokens(700, 700)
        257
        >>> count_vision_tokens(1224, 1584)  # US Letter at 144 DPI: 6 crops
        1121
    """
    return GLOBAL_VIEW_TOKENS + (TILE_TOKENS * count_crops(width, height) if crops else 0) + 1
