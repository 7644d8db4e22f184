"""In-process DeepSeek-OCR-2 on a GPU (or CPU) through Hugging Face transformers.

Uses transformers' native ``DeepseekOcr2ForConditionalGeneration`` and
``DeepseekOcr2Processor``: no ``trust_remote_code``. Options are a
:class:`~deepseek_ocr2_loaders.options.TransformersOptions`; the model is shared through
:mod:`._registry`; pages decode through the slot decoder (:mod:`._slots`), run by the
scheduler all engines of the same options share (:mod:`._scheduler`), or through
``model.generate`` call by call (:mod:`._generate`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Hashable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError
from ...model import DEFAULT_MODEL, DEFAULT_NGRAM_SIZE, DEFAULT_NGRAM_WINDOW, MAX_NEW_TOKENS
from ...options import TransformersOptions
from .._base import EngineOutput, OCREngine, gathered
from . import _registry
from ._generate import generate_padded, guard_whitelist
from ._guards import WindowedNoRepeatNGram
from ._loops import TokenLoops
from ._vision import embed_pages, encode, image_features

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from ._scheduler import Scheduler

__all__ = ["DEFAULT_MODEL", "TransformersEngine"]


@contextmanager
def _mapped_generation_errors() -> Iterator[None]:
    """Translate torch's failures during generation into this package's errors."""
    from ._scheduler import generation_error

    try:
        yield
    except (RuntimeError, ValueError, IndexError) as exc:
        raise generation_error(exc) from exc


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


class TransformersEngine(OCREngine):
    """DeepSeek-OCR-2 in this process, pages batched on one device.

    Every argument is a field of :class:`~deepseek_ocr2_loaders.options.TransformersOptions`,
    where each is described once.

    Args:
        model: Hub id or local folder of a DeepSeek-OCR-2 checkpoint.
        device: ``"cuda"``, ``"cuda:1"``, ``"cpu"``...; default CUDA when available.
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
        device: str | None = None,
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
    ) -> None:
        import torch

        options = TransformersOptions(
            model=str(model),
            device=device,
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
        )
        if options.attn_implementation == "flash_attention_2":
            try:
                import flash_attn  # noqa: F401
            except ImportError as exc:
                raise ConfigError(
                    "attn_implementation='flash_attention_2' needs flash-attn: "
                    "pip install 'deepseek-ocr2-loaders[flash]'"
                ) from exc
        self.device = _device(options.device)
        gpu = self.device.type == "cuda"
        self.dtype = getattr(torch, options.dtype) if options.dtype else (torch.bfloat16 if gpu else torch.float32)
        self.options = options
        self.model_id = options.model
        self.batch_size, self.vision_batch_size = options.batch_sizes(gpu=gpu)
        self.streams = options.decode == "slots"  # every call's pages join one running batch
        self.last_stats: dict[str, float] = {}
        self._held: tuple[Hashable, Scheduler] | None = None  # the scheduler of the current options
        self._holding = threading.Lock()
        self._key = (self.model_id, options.revision, str(self.device), str(self.dtype), options.attn_implementation)
        self._loaded: _registry.LoadedModel | None = None
        self._stricter: TransformersEngine | None = None
        self._loops: TokenLoops | None = None

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
        with self._holding:
            held, self._held = self._held, None
        if held is not None:
            from ._scheduler import release

            release(*held)
        if self._loaded is None:
            return
        _registry.release(self._key, self._loaded)
        self._loaded = None
        if self.device.type == "cuda":
            import torch

            torch.cuda.empty_cache()

    # -- inference -----------------------------------------------------------------

    def generate(self, images: list[Image.Image], prompt: str) -> list[EngineOutput]:
        """Read the images with ``prompt``, ``max_batch_size`` pages in flight at a time.

        With ``decode="slots"`` the pages join the model's running decode batch beside
        those of any other call (thread, coroutine, loader) on an engine of the same options.
        """
        if not self.streams:
            with _mapped_generation_errors():
                outputs: list[EngineOutput] = []
                for start in range(0, len(images), self.batch_size):
                    outputs.extend(generate_padded(self, images[start : start + self.batch_size], prompt))
                return outputs
        scheduler = self._shared()
        before, started = dict(scheduler.stats), time.perf_counter()
        futures = scheduler.submit(images, prompt)
        try:
            outputs = [future.result() for future in futures]
        finally:
            for future in futures:  # after a failure, pages not started are dropped
                future.cancel()
        self.last_stats = {key: value - before.get(key, 0.0) for key, value in scheduler.stats.items()}
        self.last_stats.update(total_s=time.perf_counter() - started, slots=scheduler.slots)
        return outputs

    def submit(self, images: list[Image.Image], prompt: str) -> Future[list[EngineOutput]]:
        """Queue the pages into the running decode batch; the future completes when all are read."""
        if not self.streams:
            return super().submit(images, prompt)
        return gathered(self._shared().submit(images, prompt))

    async def agenerate(self, images: list[Image.Image], prompt: str) -> list[EngineOutput]:
        """Async :meth:`generate`: concurrent coroutines share the running decode batch."""
        if not self.streams:
            return await super().agenerate(images, prompt)
        scheduler = self._shared() if self._held is not None else await asyncio.to_thread(self._shared)
        return list(await asyncio.gather(*(asyncio.wrap_future(f) for f in scheduler.submit(images, prompt))))

    def _shared(self) -> Scheduler:
        """The scheduler shared by engines of this model and these decoding options (made on first use).

        Every option is part of the key (device and dtype as resolved), so an engine never
        decodes with another's guard, budget or slot count; ``max_new_tokens`` changed on
        this engine moves it to the scheduler of the new value.
        """
        from ._scheduler import Scheduler, acquire, release

        dtype = str(self.dtype).removeprefix("torch.")
        key = (self._key, replace(self.options, device=str(self.device), dtype=dtype, local_files_only=False))
        with self._holding:
            if self._held is not None and self._held[0] == key:
                return self._held[1]
            self._acquire()  # this engine's hold keeps the model loaded while schedulers change
            scheduler = acquire(key, lambda: Scheduler(TransformersEngine.from_options(self.options)))
            previous, self._held = self._held, (key, scheduler)
        if previous is not None:
            release(*previous)
        return scheduler

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

    def encode(self, images: list[Image.Image], prompt: str, *, pin: bool = False) -> Any:
        """Processor inputs for a batch (see :func:`._vision.encode`); ``pin`` page-locks pixels on CUDA."""
        return encode(self._acquire().processor, images, prompt, pin_on=self.device if pin else None)

    def _to_device(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels on the engine's device in its dtype (a no-op for pixels already there)."""
        return pixels.to(self.device, non_blocking=pixels.is_pinned()).to(self.dtype)

    def image_features(
        self, model: Any, pixel_values: torch.Tensor, pixel_values_local: torch.Tensor | None, crops: list[int]
    ) -> list[torch.Tensor]:
        """Each page's vision features, ``vision_batch_size`` pages at a time."""
        return image_features(
            model, pixel_values, pixel_values_local, crops, batch=self.vision_batch_size, to_device=self._to_device
        )

    def _embed(self, model: Any, inputs: Any, input_ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings of a padded batch with each page's image features scattered in."""
        return embed_pages(model, inputs, input_ids, batch=self.vision_batch_size, to_device=self._to_device)
