"""Decode throughput of DeepSeek-OCR-2 on one GPU: naive, batched ``generate``, and the engine.

Full-size architecture with random bf16 weights (speed and memory do not depend on weight
values), read back through ``from_pretrained``; real PDF pages rendered at 144 DPI, so the
crop count and the vision-token count per page vary as in real use. Every path generates
exactly ``--new-tokens`` tokens per page (EOS blocked, greedy), so the paths are comparable.

Paths (each after an untimed warm-up, ``torch.cuda.synchronize()`` around the timing, peak
memory reset before each):

* ``naive``: one page per ``model.generate`` call, processor output passed straight in.
* ``batched_generate``: ``model.generate(inputs_embeds=...)`` with the vision features
  computed by ``TransformersEngine._embed`` (micro-batches of 2 pages), one batch per size.
* ``engine``: ``TransformersEngine(max_batch_size=B, ignore_eos=True, stop_loops=False)``
  over full batches of pages.

Also measured: vision encoding ms per page, device-to-device copy bandwidth; computed: the
HBM-bandwidth bound of decoding and each path's fraction of it. Results are written to JSON
after every measurement (a run cut short keeps what it measured); a table is printed last.

    python benchmarks/throughput.py --checkpoint /tmp/full --json benchmarks/results/throughput-h100.json \
        --plot benchmarks/results/throughput-h100.png --time-budget-s 480
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import platform
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _checkpoint import write_full_size_checkpoint  # benchmarks/ is on sys.path: scripts run from there

from deepseek_ocr2_loaders import TransformersEngine
from deepseek_ocr2_loaders.errors import GPUOutOfMemoryError
from deepseek_ocr2_loaders.model._prompts import resolve_prompt
from deepseek_ocr2_loaders.sources import open_source
from deepseek_ocr2_loaders.testing import make_tiny_checkpoint

HERE = Path(__file__).resolve().parent
DEFAULT_PDF_DIR = HERE.parent / "tests" / "data" / "real-pdfs"
H100_SXM_HBM_BPS = 3.35e12
BOUND_FORMULA = (
    "bytes_per_step(B) = W_step(B) + B * T_avg * kv_bytes_per_token; "
    "kv_bytes_per_token = 2 (K,V) * layers * kv_heads * head_dim * dtype_bytes; "
    "W_step(B) = dense_decode_bytes + moe_layers * experts_touched(B) * bytes_per_expert; "
    "experts_touched(B) = E if B >= E else E * (1 - (1 - k/E)^B) (uniform routing); "
    "T_avg = mean(vision + prompt tokens per page) + N/2; "
    "tokens_per_s_bound = B * bandwidth / bytes_per_step; pages_per_s_bound = tokens_per_s_bound / N"
)
BOUND_NOTES = (
    "dense_decode_bytes: every language-model weight read per decode step except the routed experts and the "
    "input embedding table (a step gathers only B of its rows): attention, dense MLP, shared experts, routers, "
    "norms, lm_head. Vision towers and projector are not read while decoding. The bound ignores prefill, vision "
    "encoding, activations and logits, so it is an upper bound for decode-only throughput; "
    "pages_per_s_bound_incl_vision adds the measured vision encoding time per page (serial with decoding). "
    "pages_per_s_bound_full_length_kv reads every slot's KV at the full length (longest prompt + N) every step, "
    "as attention over a static, masked cache does: the floor of such a design, not of the model."
)


def log(message: str) -> None:
    print(f"[throughput] {message}", file=sys.stderr, flush=True)


class Bench:
    """Device helpers, the time budget and the JSON result, shared by every measurement."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.perf_counter()
        spec = args.device if args.device not in ("auto", "cuda:all") else "cuda"  # several GPUs: timed on the first
        self.device = torch.device((spec or ("cuda" if torch.cuda.is_available() else "cpu")).split(",")[0])
        self.cuda = self.device.type == "cuda"
        self.result: dict[str, Any] = {"notes": [], "measurements": []}
        # seconds per decode step seen so far, per path: (batch_size, seconds_per_step)
        self.step_obs: dict[str, list[tuple[int, float]]] = {}

    # -- device --------------------------------------------------------------------

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def reset_peak(self) -> None:
        if self.cuda:
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gib(self) -> float | None:
        if not self.cuda:
            return None
        return round(torch.cuda.max_memory_allocated(self.device) / 2**30, 2)

    def free(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()

    # -- budget --------------------------------------------------------------------

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> float:
        return self.args.time_budget_s - self.elapsed()

    def predict(self, path: str, batch_size: int, steps: int, like: str | None = None) -> float | None:
        """Seconds a run of ``steps`` decode steps at ``batch_size`` should take, from earlier runs of the path.

        Before the path's first run, the per-step time of path ``like`` (unscaled) stands in.
        """
        seen = self.step_obs.get(path)
        if not seen:
            stand_in = self.step_obs.get(like or "")
            return steps * min(obs[1] for obs in stand_in) if stand_in else None
        below = [obs for obs in seen if obs[0] <= batch_size]
        base_batch, per_step = max(below) if below else min(seen)
        return steps * per_step * max(1.0, batch_size / base_batch) ** 0.5

    def observe(self, path: str, batch_size: int, seconds: float, steps: int) -> None:
        self.step_obs.setdefault(path, []).append((batch_size, seconds / max(steps, 1)))

    def skip_reason(self, predicted: float | None) -> str | None:
        left = self.left()
        if left <= 0:
            return f"skipped: time budget ({self.args.time_budget_s} s spent)"
        if predicted is not None and predicted > left:
            return f"skipped: time budget (predicted {predicted:.0f} s, {left:.0f} s left)"
        return None

    # -- results -------------------------------------------------------------------

    def save(self) -> None:
        self.result["elapsed_s"] = round(self.elapsed(), 1)
        add_fractions(self.result)
        if self.args.json:
            self.args.json.parent.mkdir(parents=True, exist_ok=True)
            self.args.json.write_text(json.dumps(self.result, indent=2, default=str))

    def measure(
        self, path: str, batch_size: int, fn: Callable[[], dict[str, Any]], predicted: float | None = None
    ) -> dict[str, Any]:
        """Run one measurement under the budget; OOM and other failures are recorded, not raised."""
        entry: dict[str, Any] = {"path": path, "batch_size": batch_size}
        reason = self.skip_reason(predicted)
        if reason:
            entry["status"] = reason
            log(f"{path} batch {batch_size}: {reason}")
        else:
            log(f"{path} batch {batch_size}: running ({self.left():.0f} s of budget left)")
            try:
                entry.update(fn())
                entry.setdefault("status", "ok")
            except (torch.OutOfMemoryError, GPUOutOfMemoryError) as exc:
                entry["status"] = "oom"
                entry["error"] = str(exc).splitlines()[0][:300]
            except Exception as exc:  # a benchmark keeps going: record the failure and measure the rest
                entry["status"] = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
                entry["traceback"] = traceback.format_exc(limit=6)
            self.free()
            log(f"{path} batch {batch_size}: {entry['status']} {summary(entry)}")
        self.result["measurements"].append(entry)
        self.save()
        return entry


def summary(entry: dict[str, Any]) -> str:
    if entry.get("status") != "ok":
        return ""
    return (
        f"{entry['pages']} pages in {entry['seconds']} s = {entry['pages_per_s']} pages/s, "
        f"{entry['output_tokens_per_s']} output tok/s, peak {entry.get('peak_gpu_gib')} GiB"
    )


def throughput(pages: int, seconds: float, tokens: list[int], new_tokens: int) -> dict[str, Any]:
    """The common fields of a measurement from the generated-token count of every page."""
    return {
        "pages": pages,
        "seconds": round(seconds, 3),
        "pages_per_s": round(pages / seconds, 4),
        "output_tokens": sum(tokens),
        "output_tokens_per_s": round(sum(tokens) / seconds, 1),
        "output_tokens_per_page": exactness(tokens, new_tokens),
    }


def exactness(tokens: list[int], expected: int) -> dict[str, Any]:
    return {
        "expected": expected,
        "min": min(tokens),
        "max": max(tokens),
        "all_exact": all(t == expected for t in tokens),
    }


# -- inputs ----------------------------------------------------------------------------


def write_checkpoint(bench: Bench) -> None:
    args = bench.args
    if (args.checkpoint / "config.json").exists():
        bench.result["checkpoint_written"] = False
        return
    log(f"writing a {'tiny' if args.tiny else 'full-size'} random checkpoint to {args.checkpoint}")
    started = time.perf_counter()
    if args.tiny:
        make_tiny_checkpoint(args.checkpoint)
    else:
        write_full_size_checkpoint(args.checkpoint, device="cuda" if bench.cuda else "cpu")
    bench.result["checkpoint_written"] = True
    bench.result["checkpoint_write_s"] = round(time.perf_counter() - started, 1)
    bench.free()


def render_pages(pdf_dir: Path) -> tuple[list[Any], list[str]]:
    """Every page of every PDF under ``pdf_dir`` at 144 DPI, in path order."""
    images, names = [], []
    for pdf in sorted(pdf_dir.rglob("*.pdf")):
        with open_source(pdf, dpi=144) as doc:
            for page in doc.iter_pages():
                images.append(page.image)
                names.append(f"{pdf.name}#{page.index + 1}")
    if not images:
        raise SystemExit(f"no PDF pages under {pdf_dir}")
    return images, names


def measure_bandwidth(bench: Bench) -> dict[str, Any]:
    """Device-to-device copy: bytes read + written per second."""
    result = copy_bandwidth(bench.device, int(bench.args.copy_gib * 2**30) if bench.cuda else 256 * 2**20)
    bench.free()
    return result


def copy_bandwidth(device: torch.device, size: int) -> dict[str, Any]:
    """Bytes read + written per second by ``dst.copy_(src)`` of ``size`` bytes on ``device``."""
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    src = torch.empty(size, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    sync()
    iterations = 10
    started = time.perf_counter()
    for _ in range(iterations):
        dst.copy_(src)
    sync()
    seconds = time.perf_counter() - started
    del src, dst
    return {
        "copy_bytes": size,
        "iterations": iterations,
        "seconds": round(seconds, 4),
        "measured_Bps": round(2 * size * iterations / seconds),
        "method": "dst.copy_(src) of a uint8 tensor, counted as bytes read + bytes written",
    }


# -- paths -----------------------------------------------------------------------------


def fixed_length_kwargs(tokenizer: Any, new_tokens: int) -> dict[str, Any]:
    return {
        "max_new_tokens": new_tokens,
        "min_new_tokens": new_tokens,  # blocks EOS until the last token: a fixed output length
        "do_sample": False,
        "num_beams": 1,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def to_device(inputs: Any, bench: Bench, dtype: torch.dtype) -> dict[str, Any]:
    moved = {}
    for key, value in inputs.items():
        if isinstance(value, torch.Tensor):
            value = value.to(bench.device, dtype) if value.is_floating_point() else value.to(bench.device)
        moved[key] = value
    return moved


def generated_counts(sequences: torch.Tensor, prompt_length: int, eos_id: int) -> list[int]:
    """Tokens generated per row: up to and including the first EOS, else all of them."""
    counts = []
    for row in sequences[:, prompt_length:].tolist():
        counts.append(row.index(eos_id) + 1 if eos_id in row else len(row))
    return counts


def run_naive(bench: Bench, holder: TransformersEngine, images: list[Any], prompt: str) -> None:
    """One page per generate call; decode measured at ``--naive-new-tokens`` and extrapolated to N."""
    args = bench.args
    loaded = holder._acquire()
    model, tokenizer = loaded.model, loaded.processor.tokenizer
    n = args.new_tokens
    measured = min(n, args.naive_new_tokens)

    def generate(image: Any, tokens: int) -> tuple[float, list[int]]:
        bench.sync()
        started = time.perf_counter()
        inputs = to_device(holder.encode([image], prompt), bench, holder.dtype)
        with torch.inference_mode():
            sequences = model.generate(**inputs, **fixed_length_kwargs(tokenizer, tokens))
        bench.sync()
        return time.perf_counter() - started, generated_counts(
            sequences, inputs["input_ids"].shape[1], tokenizer.eos_token_id
        )

    def body() -> dict[str, Any]:
        generate(images[0], 2)  # warm-up
        bench.reset_peak()
        pages = images[: args.naive_pages]
        first_token_s, measured_s, counts = [], [], []
        for image in pages:
            if measured < n:
                first_token_s.append(generate(image, 1)[0])
            seconds, tokens = generate(image, measured)
            measured_s.append(seconds)
            counts.extend(tokens)
        if measured < n:
            # t(N) = t(1) + (N - 1) * step, step = (t(M) - t(1)) / (M - 1), per page
            steps = [(tm - t1) / (measured - 1) for t1, tm in zip(first_token_s, measured_s, strict=True)]
            seconds = sum(t1 + (n - 1) * step for t1, step in zip(first_token_s, steps, strict=True))
            extra = {
                "extrapolated": True,
                "measured_new_tokens": measured,
                "measured_seconds": round(sum(measured_s), 3),
                "first_token_s_per_page": round(sum(first_token_s) / len(pages), 4),
                "decode_step_ms": round(1000 * sum(steps) / len(steps), 2),
                "method": (
                    f"each page generated twice (1 and {measured} tokens, EOS blocked); per page "
                    f"t(N) = t(1) + (N-1) * (t({measured}) - t(1)) / ({measured}-1); the context at "
                    f"{measured} tokens is shorter than at N, so this slightly favours naive"
                ),
            }
            tokens_for_rate = [n] * len(pages)
        else:
            seconds = sum(measured_s)
            extra = {"extrapolated": False, "measured_new_tokens": measured}
            tokens_for_rate = counts
        fields = throughput(len(pages), seconds, tokens_for_rate, n)
        fields["output_tokens_per_page"] = exactness(counts, measured)  # what was generated, not extrapolated
        fields["peak_gpu_gib"] = bench.peak_gib()
        bench.observe("naive", 1, seconds, len(pages) * n)
        return fields | extra

    bench.measure("naive", 1, body)


def run_batched_generate(bench: Bench, holder: TransformersEngine, images: list[Any], prompt: str) -> None:
    args = bench.args
    loaded = holder._acquire()
    model, tokenizer = loaded.model, loaded.processor.tokenizer
    n = args.new_tokens

    def one_batch(pages: list[Any], tokens: int) -> dict[str, Any]:
        bench.sync()
        started = time.perf_counter()
        inputs = holder.encode(pages, prompt)
        encoded = time.perf_counter()
        input_ids = inputs["input_ids"].to(bench.device)
        attention_mask = inputs["attention_mask"].to(bench.device)
        with torch.inference_mode():
            embeds = holder._embed(model, inputs, input_ids)
            bench.sync()
            embedded = time.perf_counter()
            sequences = model.generate(
                input_ids=input_ids,
                inputs_embeds=embeds,
                attention_mask=attention_mask,
                **fixed_length_kwargs(tokenizer, tokens),
            )
        bench.sync()
        done = time.perf_counter()
        return {
            "seconds": done - started,
            "encode_s": round(encoded - started, 3),
            "embed_s": round(embedded - encoded, 3),
            "generate_s": round(done - embedded, 3),
            "counts": generated_counts(sequences, input_ids.shape[1], tokenizer.eos_token_id),
            "input_length_padded": int(input_ids.shape[1]),
        }

    warmed = False
    for batch_size in args.batch_sizes:

        def body(batch_size: int = batch_size) -> dict[str, Any]:
            nonlocal warmed
            if not warmed:
                one_batch(images[: min(2, batch_size)], 2)
                warmed = True
            bench.reset_peak()
            run = one_batch(images[:batch_size], n)
            fields = throughput(batch_size, run["seconds"], run["counts"], n)
            fields["peak_gpu_gib"] = bench.peak_gib()
            bench.observe("batched_generate", batch_size, run["seconds"], n)
            return fields | {k: run[k] for k in ("encode_s", "embed_s", "generate_s", "input_length_padded")}

        bench.measure(
            "batched_generate", batch_size, body, bench.predict("batched_generate", batch_size, n, like="naive")
        )


def make_engine(bench: Bench, batch_size: int, new_tokens: int) -> tuple[TransformersEngine, bool]:
    """The engine with ``ignore_eos``/``stop_loops`` when it has them; ``(engine, fallback)``."""
    common: dict[str, Any] = {
        "device": str(bench.device),
        "max_batch_size": batch_size,
        "vision_batch_size": bench.args.vision_batch_size,
        "max_new_tokens": new_tokens,
    }
    try:
        return TransformersEngine(str(bench.args.checkpoint), ignore_eos=True, stop_loops=False, **common), False
    except TypeError:
        return TransformersEngine(str(bench.args.checkpoint), **common), True


def prewarm_decoder(bench: Bench, engine: TransformersEngine, images: list[Any], prompt: str) -> dict[str, Any]:
    """One untimed call of the engine itself over a full batch of pages that stop after a few tokens.

    It builds the decoder the timed call reuses (same budget), compiles the attention kernel and
    captures the CUDA graph of every decode width as the batch fills and drains. A real run pays
    this once per engine, not per page; it is timed and reported, not hidden.
    """
    started = time.perf_counter()
    lengths, engine._page_lengths = engine._page_lengths, lambda image: 40
    try:
        engine.generate([images[i % len(images)] for i in range(engine.batch_size)], prompt)
    finally:
        engine._page_lengths = lengths
    bench.sync()
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "pages": engine.batch_size,
        "included_in_timing": False,
        "method": "engine.generate over max_batch_size pages stopped after 40 tokens, before timing",
    }


def run_engine(bench: Bench, images: list[Any], prompt: str) -> None:
    args = bench.args
    n = args.new_tokens
    for batch_size in args.engine_batch_sizes:
        count = batch_size * math.ceil(args.pages / batch_size)  # full batches only

        def body(batch_size: int = batch_size, count: int = count) -> dict[str, Any]:
            warm, fallback = make_engine(bench, batch_size, min(n, 4))
            engine, _ = make_engine(bench, batch_size, n)
            extra: dict[str, Any] = {"engine_options": "ignore_eos=True, stop_loops=False"}
            model = engine._acquire().model
            saved_min = model.generation_config.min_new_tokens
            try:
                warm.generate(images[: min(args.warmup_pages, count)], prompt)
                warm.close()
                if fallback:
                    # the engine has no ignore_eos yet: block EOS through the model's generation config
                    model.generation_config.min_new_tokens = n
                    extra["engine_options"] = (
                        "fallback: TransformersEngine has no ignore_eos/stop_loops; default constructor, "
                        "EOS blocked via model.generation_config.min_new_tokens = N, n-gram guard and "
                        "loop stopper still active (a looping page can stop early)"
                    )
                extra["decoder_prewarm"] = prewarm_decoder(bench, engine, images, prompt)
                bench.reset_peak()
                bench.sync()
                started = time.perf_counter()
                outputs = engine.generate(images[:count], prompt)
                bench.sync()
                seconds = time.perf_counter() - started
            finally:
                model.generation_config.min_new_tokens = saved_min
                warm.close()
                engine.close()
            fields = throughput(count, seconds, [o.output_tokens for o in outputs], n)
            fields["peak_gpu_gib"] = bench.peak_gib()
            fields["finish_reasons"] = dict(Counter(o.finish_reason for o in outputs))
            fields["batches"] = count // batch_size
            fields["warmup"] = f"separate engine sharing the model, {min(args.warmup_pages, count)} pages, 4 tokens"
            fields["engine_decode"] = getattr(engine, "decode", None)
            fields["engine_cuda_graphs"] = getattr(engine, "cuda_graphs", None)
            stats = getattr(engine, "last_stats", None)
            if stats is not None:
                fields["last_stats"] = stats
            bench.observe("engine", batch_size, seconds, n * (count // batch_size))
            return fields | extra

        bench.measure("engine", batch_size, body, bench.predict("engine", batch_size, n * (count // batch_size)))


def run_vision(bench: Bench, images: list[Any], prompt: str) -> list[dict[str, Any]]:
    """Vision encoding alone (``_embed``) in micro-batches of 2 pages and of ``--vision-batch-size``."""
    results = []
    pages = images[: bench.args.vision_pages]
    for vision_batch in sorted({2, bench.args.vision_batch_size}):
        entry: dict[str, Any] = {"vision_batch_size": vision_batch, "pages": len(pages)}
        reason = bench.skip_reason(None)
        if reason:
            entry["status"] = reason
            results.append(entry)
            continue
        engine = TransformersEngine(
            str(bench.args.checkpoint), device=str(bench.device), vision_batch_size=vision_batch
        )
        try:
            model = engine._acquire().model
            warm = engine.encode(images[:2], prompt)
            started = time.perf_counter()
            inputs = engine.encode(pages, prompt)
            encode_s = time.perf_counter() - started
            input_ids = inputs["input_ids"].to(bench.device)
            with torch.inference_mode():
                engine._embed(model, warm, warm["input_ids"].to(bench.device))
                bench.reset_peak()
                bench.sync()
                started = time.perf_counter()
                engine._embed(model, inputs, input_ids)
                bench.sync()
                seconds = time.perf_counter() - started
            entry.update(
                status="ok",
                seconds=round(seconds, 4),
                ms_per_page=round(1000 * seconds / len(pages), 2),
                processor_ms_per_page=round(1000 * encode_s / len(pages), 2),
                peak_gpu_gib=bench.peak_gib(),
            )
        except (torch.OutOfMemoryError, GPUOutOfMemoryError) as exc:
            entry.update(status="oom", error=str(exc).splitlines()[0][:300])
        finally:
            engine.close()
            bench.free()
        log(f"vision batch {vision_batch}: {entry}")
        results.append(entry)
    return results


# -- the bound -------------------------------------------------------------------------


def model_bytes(model: Any) -> dict[str, Any]:
    """Parameter counts and bytes by role, from parameter names."""
    dense = routed = embed = vision = 0
    dense_bytes = routed_bytes = 0
    moe_layers: set[str] = set()
    names = set()
    for name, param in model.named_parameters():
        names.add(name)
        size = param.numel()
        if ".mlp.experts." in name:
            routed += size
            routed_bytes += size * param.element_size()
            moe_layers.add(name.split(".mlp.experts.")[0])
        elif "embed_tokens" in name:
            embed += size
        elif "language_model" in name or name.startswith("lm_head"):
            dense += size
            dense_bytes += size * param.element_size()
        else:
            vision += size
    if not any(name.startswith("lm_head") for name in names):  # tied: lm_head reads the embedding table
        weight = model.get_output_embeddings().weight
        dense += weight.numel()
        dense_bytes += weight.numel() * weight.element_size()
    return {
        "parameters": dense + routed + embed + vision,
        "dense_decode_params": dense,
        "dense_decode_bytes": dense_bytes,
        "routed_expert_params": routed,
        "routed_expert_bytes": routed_bytes,
        "embedding_params": embed,
        "vision_and_projector_params": vision,
        "moe_layers": len(moe_layers),
    }


def experts_touched(experts: int, top_k: int, batch: int) -> float:
    """Expected routed experts a batch's tokens reach per layer (uniform routing)."""
    return experts if batch >= experts else experts * (1 - (1 - top_k / experts) ** batch)


def kv_terms(model: Any) -> dict[str, int]:
    """The factors of one token's KV-cache bytes; times 2 (keys and values): :func:`kv_bytes_per_token`."""
    text = model.config.text_config
    return {
        "layers": text.num_hidden_layers,
        "kv_heads": text.num_key_value_heads,
        "head_dim": getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads,
        "dtype_bytes": next(model.parameters()).element_size(),
    }


def kv_bytes_per_token(model: Any) -> int:
    """KV-cache bytes of one token, every layer."""
    return 2 * math.prod(kv_terms(model).values())


def bound(
    bench: Bench,
    model: Any,
    mean_input: Callable[[int], float],
    max_input: int,
    vision_ms: float | None,
    batch_sizes: list[int],
    *,
    new_tokens: float | None = None,
    kv_new_tokens: float | None = None,
    full_new_tokens: int | None = None,
) -> dict[str, Any]:
    """The HBM-bandwidth bound of decoding at each batch size; ``mean_input(B)``: mean prompt length there.

    ``new_tokens`` is N, the mean tokens generated per page (default ``--new-tokens``). Pages of varying
    length L (``realistic.py``) keep a slot for L steps, so the cache holds on average half of
    ``kv_new_tokens`` = E[L^2] / E[L] generated tokens (default N), and a static cache holds
    ``full_new_tokens`` (the budget; default N).
    """
    args = bench.args
    n = new_tokens if new_tokens is not None else args.new_tokens
    kv_n = kv_new_tokens if kv_new_tokens is not None else n
    full_n = full_new_tokens if full_new_tokens is not None else n
    text = model.config.text_config
    kv_per_token = kv_bytes_per_token(model)
    counts = model_bytes(model)
    experts = getattr(text, "n_routed_experts", None) or text.num_experts
    top_k = text.num_experts_per_tok
    per_expert = counts["routed_expert_bytes"] / max(counts["moe_layers"] * experts, 1)
    datasheet = args.hbm_gbs * 1e9 if args.hbm_gbs else H100_SXM_HBM_BPS
    measured_bw = bench.result.get("bandwidth", {}).get("measured_Bps")
    rows = []
    for batch in sorted(set(batch_sizes)):
        t_avg = mean_input(batch) + kv_n / 2
        touched = experts_touched(experts, top_k, batch)
        w_step = counts["dense_decode_bytes"] + counts["moe_layers"] * touched * per_expert
        kv = batch * t_avg * kv_per_token
        step = w_step + kv
        full = w_step + batch * (max_input + full_n) * kv_per_token
        row = {
            "batch_size": batch,
            "T_avg": round(t_avg, 1),
            "experts_touched": round(touched, 2),
            "W_step_bytes": round(w_step),
            "kv_bytes": round(kv),
            "bytes_per_step": round(step),
            "tokens_per_s_bound": round(batch * datasheet / step, 1),
            "pages_per_s_bound": round(batch * datasheet / step / n, 3),
            "pages_per_s_bound_full_length_kv": round(batch * datasheet / full / n, 3),
        }
        if vision_ms:
            step_s = step / datasheet
            row["pages_per_s_bound_incl_vision"] = round(batch / (n * step_s + batch * vision_ms / 1000), 3)
        if measured_bw:
            row["pages_per_s_bound_measured_bw"] = round(batch * measured_bw / step / n, 3)
        rows.append(row)
    return {
        "formula": BOUND_FORMULA,
        "notes": BOUND_NOTES,
        "bandwidth_Bps": datasheet,
        "bandwidth_source": f"--hbm-gbs {args.hbm_gbs}" if args.hbm_gbs else "H100 SXM datasheet 3.35 TB/s",
        "measured_copy_Bps": measured_bw,
        "kv_bytes_per_token": kv_per_token,
        "kv_terms": kv_terms(model),
        "routed_experts": experts,
        "experts_per_token": top_k,
        "bytes_per_expert_per_layer": round(per_expert),
        "T_avg_pages": "the first B * ceil(pages / B) pages, those the engine reads at batch B",
        "model": counts,
        "by_batch_size": rows,
    }


def add_fractions(result: dict[str, Any]) -> None:
    if "bound" not in result:
        return
    rows = {row["batch_size"]: row for row in result["bound"]["by_batch_size"]}
    for entry in result["measurements"]:
        row = rows.get(entry["batch_size"])
        if entry.get("status") == "ok" and row:
            entry["pages_per_s_bound"] = row["pages_per_s_bound"]
            entry["fraction_of_bound"] = round(entry["pages_per_s"] / row["pages_per_s_bound"], 4)
            if "pages_per_s_bound_measured_bw" in row:
                entry["fraction_of_bound_measured_bw"] = round(
                    entry["pages_per_s"] / row["pages_per_s_bound_measured_bw"], 4
                )
    best = {}
    for path in ("naive", "batched_generate", "engine"):
        ok = [e for e in result["measurements"] if e["path"] == path and e.get("status") == "ok"]
        if ok:
            top = max(ok, key=lambda e: e["pages_per_s"])
            best[path] = {
                k: top.get(k) for k in ("batch_size", "pages_per_s", "output_tokens_per_s", "fraction_of_bound")
            }
    result["best"] = best


# -- output ----------------------------------------------------------------------------


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{'path':<17}{'batch':>6}{'pages':>7}{'pages/s':>10}{'out tok/s':>11}{'peak GiB':>10}{'of bound':>10}  status"
    ]
    for e in result["measurements"]:
        ok = e.get("status") == "ok"

        def cell(key: str, fmt: str, e: dict[str, Any] = e, ok: bool = ok) -> str:
            value = e.get(key)
            return format(value, fmt) if ok and value is not None else "-"

        fraction = e.get("fraction_of_bound")
        lines.append(
            f"{e['path']:<17}{e['batch_size']:>6}{cell('pages', 'd'):>7}{cell('pages_per_s', '.3f'):>10}"
            f"{cell('output_tokens_per_s', '.1f'):>11}{cell('peak_gpu_gib', '.2f'):>10}"
            f"{(f'{fraction:.1%}' if fraction is not None else '-'):>10}  {e.get('status')}"
            + (" (extrapolated)" if e.get("extrapolated") else "")
        )
    rows = result.get("bound", {}).get("by_batch_size", [])
    if rows:
        lines.append(
            "bound (pages/s at "
            f"{result['bound']['bandwidth_Bps'] / 1e12:.2f} TB/s): "
            + ", ".join(f"B={r['batch_size']}: {r['pages_per_s_bound']}" for r in rows)
        )
    bw = result.get("bandwidth", {})
    if bw.get("measured_Bps"):
        lines.append(f"copy bandwidth measured: {bw['measured_Bps'] / 1e12:.2f} TB/s (read + write)")
    for v in result.get("vision_encode", []):
        if v.get("status") == "ok":
            lines.append(f"vision encode, {v['vision_batch_size']} pages per micro-batch: {v['ms_per_page']} ms/page")
    return "\n".join(lines)


def plot(json_path: Path, png: Path) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        log("matplotlib is not installed: no plot (pip install matplotlib)")
        return
    spec = importlib.util.spec_from_file_location("plot_throughput", HERE / "plot_throughput.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.plot(json.loads(json_path.read_text()), png)
    log(f"plot written to {png}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="folder; written if it has no config.json")
    parser.add_argument("--tiny", action="store_true", help="write the tiny checkpoint instead (CPU smoke test)")
    parser.add_argument("--pdf-dir", type=Path, default=DEFAULT_PDF_DIR)
    parser.add_argument("--prompt", default="markdown", help="preset name or instruction")
    parser.add_argument("--pages", type=int, default=64, help="pages per engine run (rounded up to full batches)")
    parser.add_argument("--new-tokens", type=int, default=1000, help="tokens generated per page, EOS blocked")
    parser.add_argument("--naive-pages", type=int, default=1)
    parser.add_argument("--naive-new-tokens", type=int, default=200, help="naive decode measured at this length")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--engine-batch-sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--vision-batch-size", type=int, default=16, help="the engine's GPU default")
    parser.add_argument("--vision-pages", type=int, help="pages for the vision timing (default 16, at most --pages)")
    parser.add_argument("--warmup-pages", type=int, default=2)
    parser.add_argument("--copy-gib", type=float, default=4.0, help="size of the bandwidth copy on the GPU")
    parser.add_argument("--hbm-gbs", type=float, help="HBM bandwidth in GB/s for the bound (default 3350, H100 SXM)")
    parser.add_argument("--device", help="cuda, cuda:1, cpu; default cuda when available")
    parser.add_argument("--time-budget-s", type=float, default=480.0)
    parser.add_argument(
        "--paths",
        nargs="+",
        choices=["naive", "engine", "batched_generate"],
        default=["naive", "engine", "batched_generate"],
        help="which decoding paths to run (the vision timing and the bound always run)",
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path, help="PNG of pages/s against batch size (needs matplotlib and --json)")
    args = parser.parse_args(argv)
    if args.naive_new_tokens < 2:
        parser.error("--naive-new-tokens must be >= 2")
    if args.plot and not args.json:
        parser.error("--plot needs --json")
    if args.vision_pages is None:
        args.vision_pages = min(16, args.pages)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    bench = Bench(args)
    result = bench.result
    import transformers

    result.update(
        device=torch.cuda.get_device_name(bench.device) if bench.cuda else f"cpu ({platform.processor() or 'unknown'})",
        torch=torch.__version__,
        transformers=transformers.__version__,
        python=platform.python_version(),
        checkpoint=str(args.checkpoint),
    )
    prompt = resolve_prompt(args.prompt)
    write_checkpoint(bench)

    if bench.cuda:
        result["bandwidth"] = measure_bandwidth(bench)
        log(f"copy bandwidth {result['bandwidth']['measured_Bps'] / 1e12:.2f} TB/s")
    else:
        result["bandwidth"] = {"measured_Bps": None, "note": "not measured on CPU"}

    unique, names = render_pages(args.pdf_dir)
    engine_pages = [b * math.ceil(args.pages / b) for b in args.engine_batch_sizes]
    wanted = max([args.pages, args.naive_pages, args.vision_pages, *args.batch_sizes, *engine_pages])
    unique, names = unique[:wanted], names[:wanted]
    images = [unique[i % len(unique)] for i in range(wanted)]

    holder = TransformersEngine(
        str(args.checkpoint), device=str(bench.device), vision_batch_size=args.vision_batch_size
    )
    started = time.perf_counter()
    loaded = holder._acquire()
    result["model_load_s"] = round(time.perf_counter() - started, 1)
    model = loaded.model
    image_token = model.config.image_token_id
    per_page = []
    for image, name in zip(unique, names, strict=True):
        ids = holder.encode([image], prompt)["input_ids"][0]
        per_page.append(
            {
                "page": name,
                "size": list(image.size),
                "vision_tokens": int((ids == image_token).sum()),
                "input_tokens": int(ids.numel()),
            }
        )
    cycled = [per_page[i % len(per_page)] for i in range(wanted)]
    result["config"] = {
        "new_tokens": args.new_tokens,
        "pages": args.pages,
        "prompt": prompt,
        "dpi": 144,
        "pdf_dir": str(args.pdf_dir),
        "unique_pages": len(unique),
        "naive_pages": args.naive_pages,
        "naive_new_tokens": min(args.naive_new_tokens, args.new_tokens),
        "batch_sizes": args.batch_sizes,
        "engine_batch_sizes": args.engine_batch_sizes,
        "vision_batch_size": args.vision_batch_size,
        "paths": args.paths,
        "time_budget_s": args.time_budget_s,
        "dtype": str(holder.dtype),
        "attn_implementation": getattr(model.config.text_config, "_attn_implementation", None),
        "experts_implementation": getattr(model.config.text_config, "_experts_implementation", None),
        "model_note": (
            "one model load shared by every path (TransformersEngine's cache), so naive and batched generate "
            "run with the experts/attention implementation the engine loads the model with"
        ),
        "decoding": "greedy, min_new_tokens = max_new_tokens = N (EOS blocked)",
        "order": "bandwidth, vision encode, naive, engine (given order), batched generate (given order)",
    }
    result["pages"] = {
        "unique": per_page,
        "vision_tokens_mean": round(sum(p["vision_tokens"] for p in cycled[: args.pages]) / args.pages, 1),
        "input_tokens_mean": round(sum(p["input_tokens"] for p in cycled[: args.pages]) / args.pages, 1),
        "note": "pages cycle through the unique pages in order; path X at batch B uses the first B (or more) of them",
    }
    log(f"model loaded in {result['model_load_s']} s; {len(unique)} unique pages, {wanted} page images")
    bench.save()

    result["vision_encode"] = run_vision(bench, images, prompt)
    vision_ms = next(
        (
            v["ms_per_page"]
            for v in result["vision_encode"]
            if v.get("status") == "ok" and v["vision_batch_size"] == args.vision_batch_size
        ),
        None,
    )

    def mean_input(batch: int) -> float:
        used = cycled[: batch * math.ceil(args.pages / batch)]
        return sum(p["input_tokens"] for p in used) / len(used)

    max_input = max(p["input_tokens"] for p in cycled)
    result["bound"] = bound(
        bench, model, mean_input, max_input, vision_ms, [1, *args.batch_sizes, *args.engine_batch_sizes]
    )
    if not bench.cuda:
        result["notes"].append("not on a GPU: the bound assumes HBM bandwidth and means nothing here")
    bench.save()
    if "naive" in args.paths:
        run_naive(bench, holder, images, prompt)
    if "engine" in args.paths:
        run_engine(bench, images, prompt)
    if "batched_generate" in args.paths:
        run_batched_generate(bench, holder, images, prompt)
    holder.close()
    bench.save()
    if args.plot:
        try:
            plot(args.json, args.plot)
        except Exception as exc:  # the numbers matter more than the picture
            log(f"plot failed: {type(exc).__name__}: {exc}")
    sys.stderr.flush()
    print(table(result), flush=True)


if __name__ == "__main__":
    main()
