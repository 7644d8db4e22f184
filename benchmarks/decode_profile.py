"""Where one decode step's time goes at the widths and live lengths of a batch's tail (GPU).

Why: at the default budget a run ends with a few long pages decoding alone (realistic.py's
tail: 8 pages at 8,192 tokens), so the time of one step at a small width sets the run's end.
This builds the engine's own slot decoder (``_scheduled_decoder``: the slots, pool and graphs
users get), fills the first ``width`` slots with pages of ``length`` live tokens (random KV
content: the cost does not depend on it) and times the captured step's replay, beside the
bytes a step must read (weights touched + live KV) over the measured HBM bandwidth. For one
(width, length) it also profiles eager steps and lists the CUDA kernels by total time.

    python benchmarks/decode_profile.py --checkpoint /tmp/full --widths 8 128 --lengths 2048 9216 \\
        --variants base grouped compile --profile 8 9216 --json benchmarks/results/decode-profile-h200-fused.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput  # noqa: E402
from _checkpoint import write_full_size_checkpoint  # noqa: E402

from deepseek_ocr2_loaders import TransformersEngine  # noqa: E402
from deepseek_ocr2_loaders.engines.transformers._slots import compiled_step  # noqa: E402


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def fill(decoder: Any, width: int, length: int, steps: int) -> None:
    """The first ``width`` slots hold pages of ``length`` tokens with room for ``steps`` more."""
    for index in range(decoder.slots):
        decoder.allocator.release(index)
        decoder.table[index] = 0
    for index in range(width):
        if not decoder._lend(index, length + steps + 1):
            raise SystemExit(f"the pool cannot hold {width} pages of {length} tokens")
    busy = torch.arange(decoder.slots, device=decoder.device) < width
    decoder.cache.positions.copy_(torch.where(busy, length, 0))
    decoder.finished.copy_(~busy)
    decoder.counts.fill_(1)
    decoder.limits.fill_(decoder.max_new_tokens)
    decoder.cache.table.copy_(decoder.table)


def step_ms(decoder: Any, width: int, length: int, steps: int) -> float:
    """Milliseconds per replayed (or eager, off CUDA graphs) step, after a warm-up stretch."""
    fill(decoder, width, length, 2 * steps)
    for _ in range(steps):
        decoder._run_step(width)
    sync()
    fill(decoder, width, length, steps)
    begun = time.perf_counter()
    for _ in range(steps):
        decoder._run_step(width)
    sync()
    return (time.perf_counter() - begun) / steps * 1e3


def step_bytes(model: Any, width: int, length: int) -> dict[str, float]:
    """Bytes one step must read: dense weights, the experts the width's tokens touch (expected), live KV.

    The terms of ``throughput.bound``, at one width and one live length.
    """
    text = model.config.text_config
    counts = throughput.model_bytes(model)
    experts = getattr(text, "n_routed_experts", None) or text.num_experts
    touched = throughput.experts_touched(experts, text.num_experts_per_tok, width) / experts
    return {
        "dense": counts["dense_decode_bytes"],
        "experts": counts["routed_expert_bytes"] * touched,
        "kv": width * length * throughput.kv_bytes_per_token(model),
    }


def kernels(decoder: Any, width: int, length: int, steps: int, top: int) -> list[dict[str, Any]]:
    """The CUDA kernels of ``steps`` steps launched from the host (no graph), by total time per step."""
    from torch.profiler import ProfilerActivity, profile

    fill(decoder, width, length, steps + 2)
    rows = decoder._rows(width)
    decoder._step_once(rows)
    sync()
    with profile(activities=[ProfilerActivity.CUDA if torch.cuda.is_available() else ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            decoder._step_once(rows)
        sync()
    times: dict[str, list[float]] = defaultdict(list)
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA or not torch.cuda.is_available():
            times[event.name].append(event.device_time)
    ranked = sorted(times.items(), key=lambda item: -sum(item[1]))
    return [
        {"kernel": name[:120], "us_per_step": round(sum(t) / steps, 1), "launches_per_step": len(t) / steps}
        for name, t in ranked[:top]
    ] + [
        {
            "kernel": "(all)",
            "us_per_step": round(sum(sum(t) for t in times.values()) / steps, 1),
            "launches_per_step": sum(len(t) for t in times.values()) / steps,
        }
    ]


def apply(decoder: Any, variant: str) -> None:
    """Set the decoder up as ``variant`` says (graphs are captured again at the next step).

    A variant is ``-``-joined parts: ``base`` (the engine's step), ``compile`` (the step as the
    engine option ``compile_decode=True`` compiles it, captured in the same graphs), ``grouped``
    (the routed experts through transformers' grouped GEMMs instead of the fused kernels), for
    the fused experts kernels ``en<N>``/``ek<N>`` (tile columns/depth), ``ew<N>``/``es<N>``
    (warps/stages), and for the split attention kernel ``split<N>`` (parts of N keys), ``w<N>``
    (warps), ``s<N>`` (stages).
    """
    from deepseek_ocr2_loaders.engines.transformers import _fused_experts, _paged_attention

    decoder._graphs.clear()
    decoder._views.clear()  # rebuilt, their widths marked dynamic where the step is compiled
    decoder.compile_step, decoder._compiled = False, None
    text_config = decoder.model.model.language_model.config
    text_config._experts_implementation = _fused_experts.IMPLEMENTATION
    _paged_attention.SPLIT_TOKENS = 512
    _paged_attention.SPLIT_WARPS, _paged_attention.SPLIT_STAGES = 4, 3
    _fused_experts.BLOCK_N, _fused_experts.BLOCK_K = 64, 64
    _fused_experts.NUM_WARPS, _fused_experts.NUM_STAGES = 4, 3
    experts_settings = {"en": "BLOCK_N", "ek": "BLOCK_K", "ew": "NUM_WARPS", "es": "NUM_STAGES"}
    for part in variant.split("-"):
        if part == "compile":
            decoder.compile_step, decoder._compiled = True, compiled_step(decoder._step)
        elif part == "grouped":
            text_config._experts_implementation = "grouped_mm"
        elif part[:2] in experts_settings and part[2:].isdigit():
            setattr(_fused_experts, experts_settings[part[:2]], int(part[2:]))
        elif part.startswith("split"):
            _paged_attention.SPLIT_TOKENS = int(part[len("split") :])
        elif part[0] in "ws" and part[1:].isdigit():
            name = "SPLIT_WARPS" if part[0] == "w" else "SPLIT_STAGES"
            setattr(_paged_attention, name, int(part[1:]))
        elif part != "base":
            raise SystemExit(f"unknown variant part {part!r} in {variant!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 9216])
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--profile", type=int, nargs=2, default=[8, 9216], metavar=("WIDTH", "LENGTH"))
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=[],
        help="base, compile, grouped, en<N>, ek<N>, ew<N>, es<N>, split<N>, w<N>, s<N>, joined by -",
    )
    parser.add_argument("--points", nargs="+", default=["8x9216", "8x2048", "128x2048"], metavar="WIDTHxLENGTH")
    parser.add_argument("--profile-variant", default="base")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not (args.checkpoint / "config.json").exists():
        write_full_size_checkpoint(args.checkpoint)
    engine = TransformersEngine(str(args.checkpoint))
    loaded = engine._acquire()
    model, tokenizer = loaded.model, loaded.processor.tokenizer
    decoder = engine._scheduled_decoder(model, tokenizer, {})
    copy = throughput.copy_bandwidth(decoder.device, 2**30 if decoder.device.type == "cuda" else 2**26)
    gbs = copy["measured_Bps"] / 1e9
    result: dict[str, Any] = {
        "command": " ".join(["python", *sys.argv]),
        "device": torch.cuda.get_device_name(decoder.device) if decoder.device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "slots": decoder.slots,
        "blocks": decoder.blocks,
        "copy_gbs": round(gbs, 1),
        "steps": [],
    }
    with torch.inference_mode():
        for width in args.widths:
            for length in args.lengths:
                ms = step_ms(decoder, width, length, args.steps)
                need = step_bytes(model, width, length)
                bound = sum(need.values()) / gbs / 1e6
                row = {"width": width, "length": length, "ms": round(ms, 3), "bound_ms": round(bound, 3)}
                row |= {f"{k}_gb": round(v / 1e9, 2) for k, v in need.items()}
                result["steps"].append(row)
                print(row, flush=True)
        result["variants"] = []
        for variant in args.variants:
            begun = time.perf_counter()
            apply(decoder, variant)
            for point in args.points:
                width, length = map(int, point.split("x"))
                ms = step_ms(decoder, width, length, args.steps)
                row = {"variant": variant, "width": width, "length": length, "ms": round(ms, 3)}
                result["variants"].append(row)
                print(row, {"seconds_so_far": round(time.perf_counter() - begun, 1)}, flush=True)
        apply(decoder, args.profile_variant)
        width, length = args.profile
        decoder._capture = False  # eager steps: the host launches every kernel
        result["eager_ms"] = round(step_ms(decoder, width, length, args.steps), 3)
        result["kernels"] = {"width": width, "length": length, "top": kernels(decoder, width, length, 16, args.top)}
    for row in result["kernels"]["top"]:
        print(row, flush=True)
    print({"eager_ms": result["eager_ms"]}, flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
