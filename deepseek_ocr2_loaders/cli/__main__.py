"""``python -m deepseek_ocr2_loaders.cli``."""

from ._main import main

raise SystemExit(main())
