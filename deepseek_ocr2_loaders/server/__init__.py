"""``deepseek-ocr2 serve``: an OpenAI-compatible chat-completions server over an OCR engine.

Clients such as :class:`~deepseek_ocr2_loaders.engines.openai._engine.OpenAIEngine`, the ``openai``
package or ``curl`` send one page per request; concurrent requests are batched on the GPU.
"""

from __future__ import annotations

from ._app import OCRServer, make_server
from ._batcher import Batcher, BatcherClosed

__all__ = ["Batcher", "BatcherClosed", "OCRServer", "make_server"]
