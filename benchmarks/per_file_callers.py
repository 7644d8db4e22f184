"""Pages/s of per-file callers against one call, on one folder of one-page PNGs, in one run.

LlamaIndex's ``SimpleDirectoryReader`` calls the reader once per file, threads and servers
call the engine a page at a time; the engine's scheduler lets those calls share one decode
batch. Rows: the engine alone on every page, ``reader.load_data(folder)`` (one call), one
thread per file, ``SimpleDirectoryReader.aload_data()`` (concurrent coroutines) and
``SimpleDirectoryReader.load_data()`` (sync, file after file: each call waits for its page,
so there is nothing to share). Every page gets exactly ``--max-new-tokens`` tokens
(``ignore_eos``), so rows differ only in how the pages reach the engine. Page cache off.

    python benchmarks/per_file_callers.py --checkpoint /tmp/full --device cuda --pages 256 \
        --max-new-tokens 1000

writes ``benchmarks/results/per-file-callers-<device>.json`` (the device named in the file and
in the JSON; a CPU run with the tiny checkpoint only shows the script works).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PDFS = HERE.parent / "tests" / "data" / "real-pdfs"


def write_pngs(folder: Path, pages: int) -> list[Path]:
    """``pages`` one-page PNGs rendered from the real PDFs (144 DPI), repeated as needed."""
    from deepseek_ocr2_loaders.sources import open_source

    images = []
    for pdf in sorted(PDFS.glob("*.pdf")):
        with open_source(pdf) as document:
            images.extend(page.image for page in document.iter_pages())
    paths = []
    for index in range(pages):
        paths.append(path := folder / f"page-{index:04d}.png")
        images[index % len(images)].save(path)
    return paths


def device_label(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device)).replace(" ", "-").lower()
    return "cpu"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="DeepSeek-OCR-2 checkpoint folder")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--pages", type=int, default=64, help="one-page PNGs in the folder")
    parser.add_argument("--max-new-tokens", type=int, default=1000, help="tokens every page gets")
    parser.add_argument(
        "--json", type=Path, default=None, help="default benchmarks/results/per-file-callers-<device>.json"
    )
    args = parser.parse_args(argv)

    from llama_index.core import SimpleDirectoryReader
    from PIL import Image

    from deepseek_ocr2_loaders import TransformersEngine
    from deepseek_ocr2_loaders.llama_index import DeepSeekOCR2Reader

    label = device_label(args.device)
    engine = TransformersEngine(
        args.checkpoint, device=args.device, max_new_tokens=args.max_new_tokens, ignore_eos=True, stop_loops=False
    )
    reader = DeepSeekOCR2Reader(engine=engine, cache=False)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_pngs(folder, args.pages)
        images = [Image.open(path).convert("RGB") for path in paths]
        engine.generate(images[: min(len(images), engine.batch_size)], "<image>\nFree OCR.")  # warm up
        directory = SimpleDirectoryReader(str(folder), file_extractor={".png": reader})

        def threads() -> None:
            with ThreadPoolExecutor(len(paths)) as pool:
                list(pool.map(reader.load_data, paths))

        cases: list[tuple[str, Callable[[], object]]] = [
            ("engine alone, one generate call", lambda: engine.generate(images, "<image>\nFree OCR.")),
            ("reader.load_data(folder), one call", lambda: reader.load_data(folder)),
            ("one thread per file, reader.load_data(file)", threads),
            ("SimpleDirectoryReader.aload_data()", lambda: asyncio.run(directory.aload_data())),
            ("SimpleDirectoryReader.load_data(), sync", directory.load_data),
        ]
        for name, case in cases:
            scheduler = engine._shared()
            runs = scheduler.stats.get("runs", 0)
            begun = time.perf_counter()
            case()
            seconds = time.perf_counter() - begun
            rows.append(
                {
                    "row": name,
                    "pages": args.pages,
                    "seconds": round(seconds, 3),
                    "pages_per_s": round(args.pages / seconds, 3),
                    "decode_runs": int(scheduler.stats.get("runs", 0) - runs),
                }
            )
            print(f"{name:48s} {rows[-1]['pages_per_s']:8.2f} pages/s  ({rows[-1]['decode_runs']} decode runs)")
    engine.close()
    one_call = rows[1]["pages_per_s"]
    for row in rows:
        row["vs_one_load_data_call"] = round(row["pages_per_s"] / one_call, 3)
    result = {
        "benchmark": "per_file_callers",
        "device": label,
        "cpu_only": label == "cpu",
        "note": "CPU run: proves the script works; not a throughput figure" if label == "cpu" else "",
        "checkpoint": args.checkpoint,
        "max_new_tokens": args.max_new_tokens,
        "slots": engine.batch_size,
        "python": platform.python_version(),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "rows": rows,
    }
    out = args.json or HERE / "results" / f"per-file-callers-{label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
