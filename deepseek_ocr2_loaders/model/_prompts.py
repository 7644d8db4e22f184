"""Prompt presets of DeepSeek-OCR-2.

The model takes no chat roles: the prompt is the image placeholder, a newline and the
instruction. The engine adds BOS; the placeholder is expanded to the page's vision tokens.
"""

from __future__ import annotations

__all__ = ["IMAGE_PLACEHOLDER", "PROMPTS", "resolve_prompt"]

IMAGE_PLACEHOLDER = "<image>"

PROMPTS: dict[str, str] = {
    "markdown": "<image>\n<|grounding|>Convert the document to markdown.",
    "free": "<image>\nFree OCR.",
    "figure": "<image>\nParse the figure.",
    "describe": "<image>\nDescribe this image in detail.",
}


def resolve_prompt(prompt: str) -> str:
    """Return the full prompt for a preset name or a custom instruction.

    A custom instruction without the ``<image>`` placeholder gets it prepended, since the
    model cannot see the page otherwise.

    Examples:
        >>> resolve_prompt("free")
        '<image>\\nFree OCR.'
        >>> resolve_prompt("List the table headers.")
        '<image>\\nList the table headers.'
    """
    if prompt in PROMPTS:
        return PROMPTS[prompt]
    if IMAGE_PLACEHOLDER not in prompt:
        return f"{IMAGE_PLACEHOLDER}\n{prompt}"
    return prompt
