"""Parsing of raw DeepSeek-OCR-2 output into Markdown and grounded layout blocks.

Kept free of model and framework imports so it can be used (and tested) on saved
model output alone.
"""

from __future__ import annotations

from ._boxes import GRID_MAX, grid_to_bbox
from ._grounding import ParsedPage, is_figure, join_blocks, parse_grounding

__all__ = ["GRID_MAX", "ParsedPage", "grid_to_bbox", "is_figure", "join_blocks", "parse_grounding"]
