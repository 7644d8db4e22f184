"""``RenderPolicy``: how many render workers, and how long a page may take in one."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from ..errors import ConfigError

__all__ = ["RenderPolicy"]


def _default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class RenderPolicy:
    """How pages are rendered: in worker processes, each page under a deadline.

    A hostile page can make MuPDF loop for ever (holding the GIL) or crash a native decoder;
    in a worker process it costs only that page (``RenderTimeout`` / ``RenderCrashError``), the
    worker is replaced and the run goes on. The workers also render pages in parallel, which
    threads cannot: PyMuPDF holds the GIL while it renders.

    Attributes:
        workers: Render processes, started as pages need them (default: CPU count, at most 4).
        page_timeout: Seconds one page may take in its worker (opening the file included).
    """

    workers: int = field(default_factory=_default_workers)
    page_timeout: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or not 1 <= self.workers <= 64:
            raise ConfigError(f"workers must be an int between 1 and 64, got {self.workers!r}")
        timeout = self.page_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
            raise ConfigError(f"page_timeout must be seconds in (0, 3600], got {timeout!r}")
        if math.isnan(timeout):
            raise ConfigError("page_timeout must be a number, got nan")
