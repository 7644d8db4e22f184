"""The engine contract: images and a prompt in, one :class:`EngineOutput` per image out.

Engines see images and prompt strings only, never PDFs, pages, grounding or Documents;
that keeps any backend (in-process GPU, a remote server, a scripted test double) a
drop-in replacement. Only :meth:`OCREngine.generate` is abstract.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from ..model import DEFAULT_MODEL

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["DEFAULT_MODEL", "EngineOutput", "OCREngine"]


FINISH_REASONS = ("stop", "length", "repetition")


@dataclass(frozen=True)
class EngineOutput:
    """What an engine returns for one image.

    Attributes:
        text: The raw model output, grounding tags included, special end tokens removed.
        finish_reason: ``"stop"`` (the model ended the page), ``"length"`` (cut off at the
            token limit) or ``"repetition"`` (stopped because it was looping).
        vision_tokens: Image tokens the page cost in the prompt.
        output_tokens: Tokens the model generated for the page.
    """

    text: str
    finish_reason: str = "stop"
    vision_tokens: int = 0
    output_tokens: int = 0

    def __post_init__(self) -> None:
        if self.finish_reason not in FINISH_REASONS:
            raise ValueError(f"finish_reason must be one of {FINISH_REASONS}, got {self.finish_reason!r}")


class OCREngine(ABC):
    """Base class of OCR backends; implement :meth:`generate` and you have an engine.

    Example:
        >>> class Echo(OCREngine):
        ...     def generate(self, images, prompt):
        ...         return [EngineOutput(text="# Hello") for _ in images]
        >>> Echo().generate([None], "<image>\\nFree OCR.")[0].text
        '# Hello'
    """

    #: Pages the pipeline hands to one :meth:`generate` call. Engines that batch on a
    #: device raise it; it also bounds how many rendered pages are held in memory.
    batch_size: int = 1

    #: :meth:`generate` calls worth making at once: 2 for an engine that batches pages across
    #: calls, so the next batch fills the device while the current one's last pages finish.
    concurrent_calls: int = 1

    @property
    def name(self) -> str:
        """The model name recorded in page metadata (``model``)."""
        return type(self).__name__

    @property
    def fingerprint(self) -> dict[str, object]:
        """What determines this engine's output, for page-cache keys.

        Override it when options change what the engine writes (token limits, decoding
        guards, the backend model), so a cached page is never served for other settings.
        """
        return {"engine": f"{type(self).__module__}.{type(self).__qualname__}", "name": self.name}

    def stricter(self) -> OCREngine:
        """The engine to retry a looping page with: a stronger repetition guard, same model.

        By default the same engine (a retry then only helps a non-deterministic backend).
        """
        return self

    @abstractmethod
    def generate(self, images: list[Image.Image], prompt: str) -> list[EngineOutput]:
        """Read each image with ``prompt``; return one output per image, in order."""

    async def agenerate(self, images: list[Image.Image], prompt: str) -> list[EngineOutput]:
        """Async :meth:`generate`; by default runs it in a worker thread."""
        return await asyncio.to_thread(self.generate, images, prompt)

    def close(self) -> None:  # noqa: B027 - optional hook, deliberately not abstract
        """Free what the engine holds (GPU memory, connections). Safe to call twice."""

    def __enter__(self) -> OCREngine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
