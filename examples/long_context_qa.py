"""Answer a question about a long PDF: compact-view summaries + budgeted context.

    python examples/long_context_qa.py --model ./DeepSeek-OCR-2 report.pdf "What was the coolant flow?"

DeepSeek-OCR-2 reads every page from its compact view (257 vision tokens) to build the
document map. The downstream LLM is a placeholder here: plug in any LangChain chat model
(``LongContextQA``) or LlamaIndex LLM (``LongContextQueryEngine``); this script prints the
prompt it would send.
"""

from __future__ import annotations

import argparse

from deepseek_ocr2_loaders import TransformersEngine
from deepseek_ocr2_loaders.compression import build_context, summarize_pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdf")
    parser.add_argument("question")
    parser.add_argument("--model", default="deepseek-community/DeepSeek-OCR-2")
    parser.add_argument("--token-budget", type=int, default=8000)
    args = parser.parse_args()

    with TransformersEngine(args.model) as engine:
        pages = list(summarize_pages(args.pdf, engine=engine))
    for page in pages:
        print(f"p. {page.page_number}: ratio {page.stats.compression_ratio:.1f}  {page.summary[:70]!r}")
    context = build_context(args.question, pages, token_budget=args.token_budget)
    print(f"\n{context.token_count} tokens; full text of pages {list(context.pages_used)}\n")
    print(context.prompt)
    # Placeholder for the downstream LLM, e.g.:
    #   from deepseek_ocr2_loaders.langchain.qa import LongContextQA
    #   LongContextQA(pages, ChatOpenAI(model="..."), token_budget=8000).invoke({"question": args.question})


if __name__ == "__main__":
    main()
