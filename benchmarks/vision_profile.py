"""Where the vision stage's time goes, and what each change to it buys (GPU).

Encodes letter-size pages (1224 x 1584 px: the 1024 global view plus 6 crops of 768, 1,121
vision tokens) through the engine's own ``encode`` + ``_embed`` path, full-size
architecture with random bf16 weights, and reports per page: milliseconds, the FLOPs
counted by ``torch.utils.flop_counter`` and the share of a measured bf16 matmul ceiling.
Variants (``--variants``, applied in order): ``transformers`` (SAM attention as transformers
ships it: a dense relative-position bias per view and per window), ``fused_global`` (the
bias folded into q/k in the global layers only), ``fused`` (in every layer: the engine's
default), ``cudnn_benchmark`` and ``compiled`` (``torch.compile`` of every vision layer; the
first run of each batch size, compilation included, is reported apart); each over several
``vision_batch_size`` values, with a split of the time between the SAM tower, the
Qwen2-shaped encoder and the projector, and the top CUDA kernels of the first and last
variant. Writes a JSON result (``--json``).

    python benchmarks/vision_profile.py --checkpoint /tmp/full --pages 48 --batch-sizes 2 8 16
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _checkpoint import write_full_size_checkpoint  # noqa: E402

from deepseek_ocr2_loaders import TransformersEngine  # noqa: E402
from deepseek_ocr2_loaders.engines.transformers._sam_attention import patch_sam_attention  # noqa: E402
from deepseek_ocr2_loaders.model._prompts import resolve_prompt  # noqa: E402
from deepseek_ocr2_loaders.testing import make_tiny_checkpoint  # noqa: E402


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def pages(count: int, seed: int = 0) -> list[Image.Image]:
    """Distinct noisy letter pages (values do not change the cost, zeros could)."""
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (1584, 1224, 3), dtype=np.uint8)) for _ in range(count)]


def matmul_ceiling(device: torch.device, dtype: torch.dtype) -> float:
    """TFLOP/s of a large square matmul in the engine's dtype (median of 20)."""
    n = 8192 if device.type == "cuda" else 1024
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    times = []
    for _ in range(20):
        sync()
        begun = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - begun)
    return 2 * n**3 / statistics.median(times) / 1e12


def embed_time(engine: TransformersEngine, inputs: Any, repeats: int) -> tuple[float, float]:
    """Median seconds of one ``_embed`` over the whole batch, and the first (warm-up) run's seconds."""
    model = engine._acquire().model
    input_ids = inputs["input_ids"].to(engine.device)
    times = []
    with torch.inference_mode():
        for _ in range(repeats + 1):
            sync()
            begun = time.perf_counter()
            engine._embed(model, inputs, input_ids)
            sync()
            times.append(time.perf_counter() - begun)
    return statistics.median(times[1:]), times[0]


def stage_split(engine: TransformersEngine, inputs: Any) -> dict[str, float]:
    """Seconds in each vision module over one ``_embed`` (synchronised around each forward)."""
    model = engine._acquire().model
    tower = model.model.vision_tower
    modules = {
        "sam": tower.sam_encoder,
        "encoder": tower.vision_encoder,
        "projector": model.model.multi_modal_projector,
    }
    spent = dict.fromkeys(modules, 0.0)
    started: dict[str, float] = {}
    handles = []
    for name, module in modules.items():

        def before(_m: Any, _a: Any, name: str = name) -> None:
            sync()
            started[name] = time.perf_counter()

        def after(_m: Any, _a: Any, _o: Any, name: str = name) -> None:
            sync()
            spent[name] += time.perf_counter() - started[name]

        handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    input_ids = inputs["input_ids"].to(engine.device)
    with torch.inference_mode():
        engine._embed(model, inputs, input_ids)
    for handle in handles:
        handle.remove()
    return spent


def flops_per_page(engine: TransformersEngine, inputs: Any, count: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    model = engine._acquire().model
    input_ids = inputs["input_ids"].to(engine.device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        engine._embed(model, inputs, input_ids)
    return counter.get_total_flops() / count


def top_kernels(engine: TransformersEngine, inputs: Any, rows: int = 40) -> str:
    from torch.profiler import ProfilerActivity, profile

    model = engine._acquire().model
    input_ids = inputs["input_ids"].to(engine.device)
    cuda = engine.device.type == "cuda"
    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
    with torch.inference_mode(), profile(activities=activities) as prof:
        engine._embed(model, inputs, input_ids)
        sync()
    sort = "cuda_time_total" if cuda else "cpu_time_total"
    table: str = prof.key_averages().table(sort_by=sort, row_limit=rows, max_name_column_width=70)
    return table


def apply_variant(model: Any, variant: str) -> None:
    """Set the SAM attention (or cuDNN autotuning) the variant names."""
    layers = model.model.vision_tower.sam_encoder.layers
    if variant == "transformers":
        for layer in layers:
            layer.attn.__dict__.pop("forward", None)  # back to the class's own forward
    elif variant in ("fused_global", "fused"):
        patch_sam_attention(model, windowed=variant == "fused")
    elif variant == "cudnn_benchmark":
        torch.backends.cudnn.benchmark = True
    elif variant == "compiled":
        torch._dynamo.config.cache_size_limit = 64
        tower = model.model.vision_tower
        for layer in [*tower.sam_encoder.layers, *tower.vision_encoder.layers]:
            layer.compile()
    else:
        raise SystemExit(f"unknown variant {variant}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="the tiny test checkpoint (a CPU smoke run)")
    parser.add_argument("--pages", type=int, default=48)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[2, 8, 16])
    parser.add_argument("--variants", nargs="+", default=["transformers", "fused_global", "fused", "cudnn_benchmark"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--kernels", type=Path, help="write the profiler tables here")
    args = parser.parse_args()

    if not (args.checkpoint / "config.json").exists():
        make = make_tiny_checkpoint if args.tiny else write_full_size_checkpoint
        make(args.checkpoint)
    engine = TransformersEngine(str(args.checkpoint), device=args.device, local_files_only=True)
    model = engine._acquire().model
    ceiling = matmul_ceiling(engine.device, engine.dtype)
    print(f"{engine.dtype} matmul ceiling: {ceiling:.1f} TFLOP/s", flush=True)

    begun = time.perf_counter()
    inputs = engine.encode(pages(args.pages), resolve_prompt("markdown"))
    preprocess = (time.perf_counter() - begun) / args.pages
    print(f"processor (CPU, one thread): {preprocess * 1e3:.1f} ms/page", flush=True)

    results: dict[str, Any] = {
        "pages": args.pages,
        "matmul_tflops": ceiling,
        "preprocess_ms_per_page": preprocess * 1e3,
    }
    kernels = []
    for variant in args.variants:
        apply_variant(model, variant)
        rows = []
        for size in args.batch_sizes:
            engine.vision_batch_size = size
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            seconds, first = embed_time(engine, inputs, args.repeats)
            rows.append(
                {
                    "vision_batch_size": size,
                    "ms_per_page": seconds / args.pages * 1e3,
                    "first_run_s": first,
                    "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0,
                }
            )
            print(
                f"{variant:15} vbs={size:3}  {rows[-1]['ms_per_page']:7.2f} ms/page  {rows[-1]['peak_gib']:6.1f} GiB"
                f"  first run {first:6.1f} s",
                flush=True,
            )
        best = min(rows, key=lambda row: row["ms_per_page"])
        engine.vision_batch_size = best["vision_batch_size"]
        flops = flops_per_page(engine, inputs, args.pages)
        split = {k: v / args.pages * 1e3 for k, v in stage_split(engine, inputs).items()}
        utilisation = flops / (best["ms_per_page"] / 1e3) / 1e12 / ceiling
        print(
            f"{variant:14} best vbs={best['vision_batch_size']}: {flops / 1e12:.2f} TFLOP/page, "
            f"{utilisation:.0%} of the matmul ceiling; ms/page " + ", ".join(f"{k} {v:.1f}" for k, v in split.items()),
            flush=True,
        )
        if variant in (args.variants[0], args.variants[-1]):
            kernels.append(f"== {variant} (vbs={best['vision_batch_size']}) ==\n{top_kernels(engine, inputs)}")
        results[variant] = {
            "rows": rows,
            "tflop_per_page": flops / 1e12,
            "utilisation": utilisation,
            "stage_ms_per_page": split,
        }
    if args.kernels:
        args.kernels.write_text("\n\n".join(kernels))
    print(kernels[-1][:6000])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
