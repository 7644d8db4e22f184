"""Read the model's ``[[x0, y0, x1, y1], ...]`` coordinate lists into page boxes.

Coordinates are on a 0-999 grid. Real outputs overshoot it a little (-4 ... 1006), which
is clamped; a value far off the grid (``1500`` for ``150``) or a box that is inverted or
empty after clamping is a garbled box, and a garbled box is unknown: it is dropped with
the reason, never turned into a confident sliver at the page edge. Numbers are read with a
regex; model text is never evaluated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from ..types import BBox

__all__ = ["GRID_MAX", "GRID_SLACK", "enclose", "grid_to_bbox", "read_boxes"]

GRID_MAX = 999
"""The model's coordinate grid runs from 0 to this value on both axes."""

GRID_SLACK = 10
"""How far past the grid a value may be and still be clamped onto it (real overshoots are <= 7)."""

_NUMBER_RE = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_GROUP_RE = re.compile(r"\[([^\[\]]*)\]")


def grid_to_bbox(box: Sequence[float], width: float, height: float) -> BBox:
    """Convert one ``[x0, y0, x1, y1]`` box from the 0-999 grid to page units.

    Values up to :data:`GRID_SLACK` past the grid are clamped onto it.

    Args:
        box: Four grid values (x right, y down).
        width: Page width in the output unit (points or pixels).
        height: Page height in the same unit.

    Returns:
        ``(x0, y0, x1, y1)`` within ``[0, width] x [0, height]``, ``x0 < x1``, ``y0 < y1``.

    Raises:
        ValueError: ``box`` does not hold four values, one is off the grid, or the box is
            inverted or empty after clamping; the message says which.
    """
    if len(box) != 4:
        raise ValueError(f"a box needs 4 values, got {len(box)}")
    values = [float(v) for v in box]
    if any(math.isnan(v) or not -GRID_SLACK <= v <= GRID_MAX + GRID_SLACK for v in values):
        raise ValueError("a value is off the 0-999 grid")
    x0, y0, x1, y1 = (min(max(v, 0.0), float(GRID_MAX)) for v in values)
    if x0 >= x1 or y0 >= y1:
        raise ValueError("the box is inverted or empty")
    w, h = max(float(width), 0.0), max(float(height), 0.0)
    return (x0 / GRID_MAX * w, y0 / GRID_MAX * h, x1 / GRID_MAX * w, y1 / GRID_MAX * h)


def read_boxes(payload: str, width: float, height: float) -> tuple[tuple[BBox, ...], tuple[str, ...]]:
    """Every innermost ``[...]`` of ``payload`` holding exactly four numbers, as page boxes.

    Groups that are not four numbers are not boxes at all and are skipped silently, as
    before; four numbers that make no box on the page are reported.

    Returns:
        The boxes, and one message per garbled box (``"box [1500, 308, 920, 329] dropped: ..."``).
    """
    boxes: list[BBox] = []
    problems: list[str] = []
    for group in _GROUP_RE.findall(payload):
        numbers = _NUMBER_RE.findall(group)
        if len(numbers) != 4 or _NUMBER_RE.sub("", group).strip(" \t,"):
            continue
        try:
            boxes.append(grid_to_bbox([float(n) for n in numbers], width, height))
        except ValueError as exc:
            problems.append(f"box [{', '.join(numbers)}] dropped: {exc}")
    return tuple(boxes), tuple(problems)


def enclose(boxes: Sequence[BBox]) -> BBox | None:
    """The smallest box holding all ``boxes``, or None when there are none."""
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
