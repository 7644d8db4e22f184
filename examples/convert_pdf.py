"""Convert a PDF with DeepSeek-OCR-2 and print each page's Markdown.

    python examples/convert_pdf.py paper.pdf --model ./DeepSeek-OCR-2 --pages 1-2

Without a GPU or the real weights, try it with the tiny random checkpoint the tests use
(the text is random, everything else is real):

    python -c "from deepseek_ocr2_loaders.testing import make_tiny_checkpoint as m; m('tiny')"
    python examples/convert_pdf.py paper.pdf --model tiny --max-new-tokens 16
"""

from __future__ import annotations

import argparse

from deepseek_ocr2_loaders import TransformersEngine, convert


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdf")
    parser.add_argument("--model", default="deepseek-community/DeepSeek-OCR-2")
    parser.add_argument("--pages", default=None, help="1-based pages, e.g. 1-3,7")
    parser.add_argument("--max-new-tokens", type=int, default=8192)
    args = parser.parse_args()

    with TransformersEngine(args.model, max_new_tokens=args.max_new_tokens) as engine:
        for page in convert(args.pdf, engine=engine, pages=args.pages):
            print(
                f"--- page {page.page_number}/{page.total_pages} [{page.status}] "
                f"{page.vision_tokens} vision tokens, {page.output_tokens} output tokens"
            )
            print(page.markdown)
            for block in page.blocks:
                print(f"    {block.label:<14} {block.bbox}")


if __name__ == "__main__":
    main()
