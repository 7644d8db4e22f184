"""``python -m deepseek_ocr2_loaders.cli``."""

from .main import main

raise SystemExit(main())
