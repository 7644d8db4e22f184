"""Answer a question about a long PDF: compact-view summaries + budgeted context.

    python examples/long_context_qa.py --model ./DeepSeek-OCR-2 report.pdf "What was the coolant flow?"
    python examples/long_context_qa.py --images --token-budget 16000 report.pdf "What does the chart on p. 3 show?"

DeepSeek-OCR-2 reads every page from its compact view (257 vision tokens) to build the
document map. With ``--images`` the selected pages go as page images, for a vision-capable
downstream model. The downstream LLM is a placeholder here: plug in any LangChain chat model
(``LongContextQA``) or LlamaIndex LLM (``LongContextQueryEngine``); this script prints what
it would send.
"""

from __future__ import annotations

import argparse

from deepseek_ocr2_loaders import TransformersEngine
from deepseek_ocr2_loaders.compression import PageImage, PageImages, build_context, summarize_pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdf")
    parser.add_argument("question")
    parser.add_argument("--model", default="deepseek-community/DeepSeek-OCR-2")
    parser.add_argument("--token-budget", type=int, default=8000)
    parser.add_argument("--images", action="store_true", help="send the selected pages as images")
    args = parser.parse_args()

    with TransformersEngine(args.model) as engine:
        pages = list(summarize_pages(args.pdf, engine=engine))
    for page in pages:
        print(f"p. {page.page_number}: ratio {page.stats.compression_ratio:.1f}  {page.summary[:70]!r}")
    images = PageImages(args.pdf) if args.images else None
    context = build_context(args.question, pages, token_budget=args.token_budget, page_images=images)
    print(f"\n{context.token_count} tokens; pages in full {list(context.pages_used)}\n")
    for part in context.parts:
        if isinstance(part, PageImage):
            print(f"[image of p. {part.page_number}: {part.width}x{part.height} px, ~{part.tokens} tokens]")
        else:
            print(part)
    # Placeholder for the downstream LLM, e.g.:
    #   from deepseek_ocr2_loaders.langchain import LongContextQA
    #   LongContextQA(pages, ChatOpenAI(model="..."), token_budget=8000, page_images=images).invoke(
    #       {"question": args.question})


if __name__ == "__main__":
    main()
