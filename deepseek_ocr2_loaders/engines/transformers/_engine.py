"""In-process DeepSeek-OCR-2 on a GPU (or CPU) through Hugging Face transformers.

Uses transformers' native ``DeepseekOcr2ForConditionalGeneration`` and
``DeepseekOcr2Processor``: no ``trust_remote_code``. Options are a
:class:`~deepseek_ocr2_loaders.options.TransformersOptions`; the model is shared through
:mod:`._registry`; pages decode through the slot decoder (:mod:`._slots`) or
``model.generate`` (:mod:`._generate`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any, cast

from ...errors import ConfigError, DeepSeekOCR2Error, EngineError, GPUOutOfMemoryError
from ...model import DEFAULT_MODEL, DEFAULT_NGRAM_SIZE, DEFAULT_NGRAM_WINDOW, MAX_NEW_TOKENS
from ...options import TransformersOptions
from .._base import EngineOutput, OCREngine
from . import _registry
from ._generate import generate_padded, guard_whitelist
from ._guards import WindowedNoRepeatNGram
from ._loops import TokenLoops
from ._vision import embed_pages, encode, image_features

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = ["DEFAULT_MODEL", "TransformersEngine"]

PROMPT_ROOM = 256 + 144 * 6 + 1 + 8
"""Prompt positions a slot reserves before the instruction: the largest image (6 crops) and BOS."""

BLOCK_SIZE = 64
"""Tokens per KV-cache block: small enough that a page holds little it does not use."""

SYNC_EVERY = 32
"""Decode steps between the host's looks at the slots."""

PROMPT_TEXT_ROOM = 256
"""Instruction tokens a slot holds besides the image (the built-in prompts take about 10)."""

logger = logging.getLogger(__name__)


@contextmanager
def _mapped_generation_errors() -> Iterator[None]:
    """Translate torch's failures during generation into this package's errors."""
    import torch

    try:
        yield
    except DeepSeekOCR2Error:
        raise
    except torch.OutOfMemoryError as exc:
        raise GPUOutOfMemoryError("the GPU ran out of memory; lower max_batch_size or vision_batch_size") from exc
    except (RuntimeError, ValueError, IndexError) as exc:
        raise EngineError(f"generation failed: {exc}") from exc


def _device(name: str | None) -> torch.device:
    """The torch device named, checked: a typo or CUDA on a CPU-only build is a :class:`ConfigError`."""
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"device {name!r} is not a torch device; use cuda, cuda:N or cpu") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r}: this PyTorch build sees no CUDA GPU; use device='cpu'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif device.type != "cpu":
        raise ConfigError(f"device {name!r} is not supported; use cuda, cuda:N or cpu")
    return device


def _devices(spec: str | tuple[str, ...] | None) -> list[torch.device]:
    """The devices named: one, every GPU (``"auto"``, ``"cuda:all"``), or a list (``"cuda:0,cuda:1"``)."""
    import torch

    if spec in ("auto", "cuda:all"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 and spec == "cuda:all":
            raise ConfigError("device='cuda:all': this PyTorch build sees no CUDA GPU; use device='cpu'")
        return [torch.device("cuda", index) for index in range(count)] or [torch.device("cpu")]
    names = spec.split(",") if isinstance(spec, str) and "," in spec else spec
    if isinstance(names, (list, tuple)):
        if not names:
            raise ConfigError("device: an empty list of devices")
        return [_device(name.strip()) for name in names]
    return [_device(names)]


def _summed(replicas: list[Any]) -> dict[str, float]:
    """The replicas' counters added up (their peaks: the largest)."""
    total: dict[str, float] = {}
    for replica in replicas:
        for key, value in list(replica.stats.items()):
            total[key] = max(total.get(key, 0.0), value) if key.endswith("_max") else total.get(key, 0.0) + value
    return total


def _alive(replicas: list[Any]) -> int:
    return sum(replica.alive for replica in replicas)


class TransformersEngine(OCREngine):
    """DeepSeek-OCR-2 in this process, pages batched on one device.

    Every argument is a field of :class:`~deepseek_ocr2_loaders.options.TransformersOptions`,
    where each is described once.

    Args:
        model: Hub id or local folder of a DeepSeek-OCR-2 checkpoint.
        device: ``"cuda"``, ``"cuda:1"``, ``"cpu"``...; default CUDA when available. ``"auto"``
            or ``"cuda:all"`` (every GPU) or a list (``["cuda:0", "cuda:1"]``, ``"cuda:0,cuda:1"``):
            one model replica per device, all fed from one page queue.
        dtype: ``"bfloat16"``, ``"float16"``, ``"float32"``; default bf16 on CUDA, fp32 on CPU.
        attn_implementation: ``"sdpa"`` (default) or ``"eager"``; ``"flash_attention_2"``
            with ``decode="generate"`` and the ``flash`` extra.
        max_batch_size: Pages decoded together: slots in flight (``decode="slots"``; fewer
            when free GPU memory holds fewer) or one ``model.generate`` batch. Default 128 on
            a GPU with ``decode="slots"``, else 16.
        vision_batch_size: Pages whose views go through the vision towers together, about
            0.4 GiB of GPU memory each. Default 16 on a GPU, 2 on a CPU.
        max_new_tokens: Token budget per page (the model card uses 8192).
        ngram_size: Length of the n-grams that may not repeat...
        ngram_window: ...inside this many recent generated tokens (``<td>``/``</td>`` and
            n-grams of table structure only exempt). 50 is the official PDF script's.
        revision: Hub revision (branch, tag or commit) to load.
        local_files_only: Never touch the network; load from the local cache or folder.
        decode: ``"slots"`` (default: continuous batching over a static per-slot KV cache,
            CUDA graphs on GPU, finished pages' slots refilled at once) or ``"generate"``
            (transformers' ``model.generate`` on left-padded batches).
        ignore_eos: Never stop at EOS: every page gets ``max_new_tokens`` (benchmarks only).
        stop_loops: Stop a page early when its newest tokens loop.
        cuda_graphs: Capture the slot decode step in a CUDA graph (GPU only).
        compile_decode: Run the slot decode step through ``torch.compile`` (bf16 on a GPU,
            where the experts are grouped GEMMs): fewer, fused kernels per step, after a
            compile of some seconds once per process; the plain step where compiling fails.

    Raises:
        ModelLoadError: The checkpoint is missing or unreadable (on first use); the message
            says how to point at a local copy.
        ConfigError: An option is unknown, out of bounds, or names a device that is not here.

    Examples:
        >>> with TransformersEngine("./DeepSeek-OCR-2") as engine:  # doctest: +SKIP
        ...     outputs = engine.generate([page_image], "<image>\\nFree OCR.")
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str | list[str] | tuple[str, ...] | None = None,
        dtype: str | None = None,
        attn_implementation: str = "sdpa",
        max_batch_size: int | None = None,
        vision_batch_size: int | None = None,
        max_new_tokens: int = MAX_NEW_TOKENS,
        ngram_size: int = DEFAULT_NGRAM_SIZE,
        ngram_window: int = DEFAULT_NGRAM_WINDOW,
        revision: str | None = None,
        local_files_only: bool = False,
        decode: str = "slots",
        ignore_eos: bool = False,
        stop_loops: bool = True,
        cuda_graphs: bool = True,
        compile_decode: bool = False,
    ) -> None:
        import torch

        options = TransformersOptions(
            model=str(model),
            device=tuple(device) if isinstance(device, list) else device,
            dtype=dtype,
            attn_implementation=attn_implementation,
            max_batch_size=max_batch_size,
            vision_batch_size=vision_batch_size,
            max_new_tokens=max_new_tokens,
            ngram_size=ngram_size,
            ngram_window=ngram_window,
            revision=revision,
            local_files_only=local_files_only,
            decode=decode,
            ignore_eos=ignore_eos,
            stop_loops=stop_loops,
            cuda_graphs=cuda_graphs,
            compile_decode=compile_decode,
        )
        if options.attn_implementation == "flash_attention_2":
            try:
                import flash_attn  # noqa: F401
            except ImportError as exc:
                raise ConfigError(
                    "attn_implementation='flash_attention_2' needs flash-attn: "
                    "pip install 'deepseek-ocr2-loaders[flash]'"
                ) from exc
        self.devices = _devices(options.device)
        if len(self.devices) > 1 and options.decode != "slots":
            raise ConfigError("several devices need decode='slots' (one page queue feeds their decoders)")
        self.device = self.devices[0]
        gpu = self.device.type == "cuda"
        self.dtype = getattr(torch, options.dtype) if options.dtype else (torch.bfloat16 if gpu else torch.float32)
        self.options = options
        self.model_id = options.model
        self.batch_size, self.vision_batch_size = options.batch_sizes(gpu=gpu)
        self.last_stats: dict[str, float] = {}
        self._decoder: Any = None
        self._slot_cap = self.batch_size
        self._queue: Any = None
        self._replicas: list[Any] = []
        self._scheduler_lock = threading.Lock()
        self._key = (self.model_id, options.revision, str(self.device), str(self.dtype), options.attn_implementation)
        self._loaded: _registry.LoadedModel | None = None
        self._stricter: TransformersEngine | None = None
        self._loops: TokenLoops | None = None
        # benchmarks only (with ignore_eos): each page stops after this many tokens, at most the budget
        self._page_lengths: Callable[[Image.Image], int] | None = None

    @classmethod
    def from_options(cls, options: TransformersOptions) -> TransformersEngine:
        """The engine these options describe (the model loads on first use)."""
        values = asdict(options)
        return cls(values.pop("model"), **values)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle to the options, not the loaded model: a worker process loads its own on first use."""
        return (TransformersEngine.from_options, (self.options,))

    @property
    def name(self) -> str:
        """The model id or folder name, as recorded in page metadata."""
        return self.model_id

    @property
    def max_new_tokens(self) -> int:
        """Token budget per page; the server lowers it for requests that ask for fewer tokens."""
        return self.options.max_new_tokens

    @max_new_tokens.setter
    def max_new_tokens(self, value: int) -> None:
        self.options = replace(self.options, max_new_tokens=value)
        if self._stricter is not None:
            self._stricter.max_new_tokens = value

    @property
    def concurrent_calls(self) -> int:  # type: ignore[override]
        """2 with the slot decoder: calls share its batch (1 for ``model.generate``)."""
        return 2 if self.options.decode == "slots" else 1

    @property
    def _graph_ready(self) -> bool:
        """bf16 on CUDA: grouped GEMM experts (static shapes) exist only for bf16."""
        import torch

        return self.device.type == "cuda" and self.dtype == torch.bfloat16

    @property
    def fingerprint(self) -> dict[str, object]:
        """Every option that changes the text it writes (the dtype as resolved for the device)."""
        return {**self.options.fingerprint(), "dtype": str(self.dtype)}

    def stricter(self) -> TransformersEngine:
        """The same engine, every option kept, with a stronger n-gram guard (same loaded model)."""
        if self._stricter is None:
            self._stricter = TransformersEngine.from_options(self.options.stricter())
        return self._stricter

    # -- lifecycle -----------------------------------------------------------------

    def _acquire(self) -> _registry.LoadedModel:
        """Load the model on first use; share it with engines of the same key."""
        if self._loaded is None:
            self._loaded = _registry.acquire(self._key, self._load)
        return self._loaded

    def _load(self) -> _registry.LoadedModel:
        return _registry.load_model(
            self.model_id,
            revision=self.options.revision,
            local_files_only=self.options.local_files_only,
            device=self.device,
            dtype=self.dtype,
            attn_implementation=self.options.attn_implementation,
            grouped_experts=self._graph_ready,
        )

    def close(self) -> None:
        """Release this engine's hold on the model; the last holder frees the GPU."""
        if self._stricter is not None:
            self._stricter.close()
            self._stricter = None
        with self._scheduler_lock:
            queue, replicas, self._queue, self._replicas = self._queue, self._replicas, None, []
        if queue is not None:
            queue.close()
        for replica in replicas:
            replica.close()
            if replica.engine is not self:
                replica.engine.close()
        self._decoder = None
        if self._loaded is None:
            return
        _registry.release(self._key, self._loaded)
        self._loaded = None
        if self.device.type == "cuda":
            import torch

            torch.cuda.empty_cache()

    # -- inference -----------------------------------------------------------------

    def generate(self, images: list[Image.Image], prompt: str) -> list[EngineOutput]:
        """Read the images with ``prompt``, ``max_batch_size`` pages in flight at a time."""
        with _mapped_generation_errors():
            if self.options.decode == "slots":
                return self._generate_slots(images, prompt)
            outputs: list[EngineOutput] = []
            for start in range(0, len(images), self.batch_size):
                outputs.extend(generate_padded(self, images[start : start + self.batch_size], prompt))
            return outputs

    async def agenerate(self, images: list[Image.Image], prompt: str) -> list[EngineOutput]:
        """Async :meth:`generate`: the pages join the shared queue and the caller holds no thread while they decode.

        (A thread per waiting call would cap the pages in flight at the event loop's default
        executor, about 20 workers, however many files ``asyncio.gather`` starts.)
        """
        if self.options.decode != "slots":
            return await super().agenerate(images, prompt)
        with _mapped_generation_errors():
            pending, finish = await asyncio.to_thread(self._submit_slots, images, prompt)  # may load the model
            return finish(await asyncio.wrap_future(pending))

    def _generate_slots(self, images: list[Image.Image], prompt: str) -> list[EngineOutput]:
        pending, finish = self._submit_slots(images, prompt)
        return finish(pending.result())

    def _submit_slots(
        self, images: list[Image.Image], prompt: str
    ) -> tuple[Future[list[EngineOutput]], Callable[[list[EngineOutput]], list[EngineOutput]]]:
        """Queue the pages; and what the caller runs on their outputs (``last_stats``: the replicas' work meanwhile)."""
        queue, replicas = self._page_queue()
        tokenizer = replicas[0].engine._acquire().processor.tokenizer
        if len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) > PROMPT_TEXT_ROOM:
            raise ConfigError(f"the prompt is longer than the {PROMPT_TEXT_ROOM} tokens a slot holds besides the image")
        before, started = _summed(replicas), time.perf_counter()

        def finish(outputs: list[EngineOutput]) -> list[EngineOutput]:
            after = _summed(replicas)
            self.last_stats = {
                **{key: value - before.get(key, 0.0) for key, value in after.items()},
                **{key: after.get(key, 0.0) for key in ("blocks_used_max", "pages_at_once_max")},
                "total_s": time.perf_counter() - started,
                "slots": sum(getattr(r.engine._decoder, "slots", 0) for r in replicas),  # (one read: it may be rebuilt)
            }
            return outputs

        return queue.submit(images, prompt, self.options.max_new_tokens), finish

    def _page_queue(self) -> tuple[Any, list[Any]]:
        """This engine's page queue and its replicas (one per device), started on first use."""
        from ._scheduler import PageQueue, Replica

        with self._scheduler_lock:
            if self._queue is None:
                devices = self.devices
                engines = [self] if len(devices) == 1 else [self._on(device) for device in devices]
                queue, replicas = PageQueue(), cast(list[Replica], [])
                try:
                    for engine in engines:
                        replica = Replica(engine, queue, _mapped_generation_errors, lambda: _alive(replicas) <= 1, self)
                        replica.start()
                        replicas.append(replica)
                except BaseException:  # a device that cannot load: stop the ones started
                    queue.close()
                    for started in replicas:
                        started.close()
                        if started.engine is not self:
                            started.engine.close()
                    raise
                self._queue, self._replicas = queue, replicas
            return self._queue, self._replicas

    def _on(self, device: torch.device) -> TransformersEngine:
        """This engine's options on one of its devices: a replica's engine."""
        return TransformersEngine.from_options(replace(self.options, device=str(device)))

    def _output(self, tokenizer: Any, result: Any) -> EngineOutput:
        """A finished slot's page as the engine returns it."""
        return EngineOutput(
            text=tokenizer.decode(result.tokens, skip_special_tokens=False),
            finish_reason=result.finish_reason,
            vision_tokens=result.vision_tokens,
            output_tokens=result.output_tokens,
        )

    def _scheduled_decoder(self, model: Any, tokenizer: Any, stats: dict[str, float], budget: int = 0) -> Any:
        """The scheduler's decoder: ``max_batch_size`` slots (fewer when memory holds fewer), reused.

        The KV pool takes what free memory holds, up to every slot at full length; the slot count
        is then what the pool holds at a typical page length (the prompt and 1,024 tokens), so a
        small card decodes fewer pages at once instead of running out.
        """
        from ._kv_cache import blocks_for, fit_blocks
        from ._slots import SlotDecoder

        options = replace(self.options, max_new_tokens=max(self.options.max_new_tokens, budget))
        current = self._decoder
        if current is not None and current.max_new_tokens >= options.max_new_tokens:
            return current
        del current
        self._decoder = None  # free the old pool before the new one is allocated
        wanted = self._slot_cap
        room = PROMPT_ROOM + PROMPT_TEXT_ROOM
        full = blocks_for(room + options.max_new_tokens + SYNC_EVERY + 1, BLOCK_SIZE)  # the decoder's table width
        blocks, self.vision_batch_size = fit_blocks(model, wanted * full + 1, BLOCK_SIZE, self.vision_batch_size)
        typical = blocks_for(room + min(options.max_new_tokens, 1024), BLOCK_SIZE)
        slots = max(1, min(wanted, (blocks - 1) // typical))
        if slots < wanted:
            logger.warning("GPU memory holds KV blocks for about %d pages at once, not the %d asked for", slots, wanted)
        loops = self._loop_check(model, tokenizer)
        self._decoder = SlotDecoder(
            model=model,
            slots=slots,
            max_new_tokens=options.max_new_tokens,
            prompt_room=room,
            eos_id=tokenizer.eos_token_id,
            pad_id=tokenizer.pad_token_id,
            guard=self._guard(tokenizer, loops),
            blocks=blocks,
            block_size=BLOCK_SIZE,
            ignore_eos=options.ignore_eos,
            loops=loops if options.stop_loops else None,
            sync_every=SYNC_EVERY,
            use_cuda_graph=options.cuda_graphs and self._graph_ready,
            compile_step=options.compile_decode and self._graph_ready,  # the per-expert loop breaks the graph
            stats=stats,
        )
        return self._decoder

    def _shrink_slots(self) -> bool:
        """Halve the decoder's slots after running out of memory; False when one slot already failed.

        The caller returns the freed memory to the device (under the device's lock).
        """
        if self._slot_cap <= 1:
            return False
        self._slot_cap = max(1, (self._decoder.slots if self._decoder is not None else self._slot_cap) // 2)
        self._decoder = None
        return True

    def _loop_check(self, model: Any, tokenizer: Any) -> TokenLoops:
        """The loop detector of this vocabulary, built once per engine."""
        if self._loops is None:
            vocab = model.config.get_text_config().vocab_size
            self._loops = TokenLoops.for_tokenizer(tokenizer, vocab, self.device)
        return self._loops

    def _guard(self, tokenizer: Any, loops: TokenLoops, prompt_length: int = 0) -> WindowedNoRepeatNGram:
        """The n-gram guard over generated tokens; table structure may repeat."""
        structure = loops.structure.nonzero().flatten().tolist()
        return WindowedNoRepeatNGram(
            self.options.ngram_size,
            self.options.ngram_window,
            guard_whitelist(tokenizer),
            structure=structure,
            prompt_length=prompt_length,
        )

    # -- vision (used by the slot decoder's page encoder and the benchmarks) ---------

    def encode(self, images: list[Image.Image], prompt: str) -> Any:
        """Processor inputs for a batch (see :func:`._vision.encode`)."""
        return encode(self._acquire().processor, images, prompt)

    def _to_device(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels on the engine's device in its dtype (a no-op for pixels already there)."""
        return pixels.to(self.device).to(self.dtype)

    def image_features(
        self, model: Any, pixel_values: torch.Tensor, pixel_values_local: torch.Tensor | None, crops: list[int]
    ) -> list[torch.Tensor]:
        """Each page's vision features, ``vision_batch_size`` pages at a time."""
        return image_features(
            model,
            pixel_values,
            pixel_values_local,
            crops,
            batch=self.vision_batch_size,
            to_device=self._to_device,
            shrink=self._shrink_vision,
        )

    def _embed(self, model: Any, inputs: Any, input_ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings of a padded batch with each page's image features scattered in."""
        batch = self.vision_batch_size
        return embed_pages(model, inputs, input_ids, batch=batch, to_device=self._to_device, shrink=self._shrink_vision)

    def _shrink_vision(self, batch: int) -> None:
        """The vision towers ran out of memory at a larger batch: ``batch`` pages at a time from now on."""
        self.vision_batch_size = min(self.vision_batch_size, batch)
