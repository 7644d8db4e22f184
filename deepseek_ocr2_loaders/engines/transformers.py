"""In-process DeepSeek-OCR-2 on a GPU (or CPU) through Hugging Face transformers.

Uses transformers' native ``DeepseekOcr2ForConditionalGeneration`` and
``DeepseekOcr2Processor``: no ``trust_remote_code``. One model per (model id, revision,
device, dtype, attention) is loaded per process and shared by every engine that names
it; it is freed when the last engine holding it is closed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, DeepSeekOCR2Error, EngineError, GPUOutOfMemoryError, ModelLoadError
from ._guards import LoopStopper, WindowedNoRepeatNGram, finish_sequence
from ._loops import TokenLoops
from ._sam_attention import patch_sam_attention
from .base import DEFAULT_MODEL, EngineOutput, OCREngine

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = ["DEFAULT_MODEL", "TransformersEngine", "finish_sequence"]

logger = logging.getLogger(__name__)

TABLE_CELL_TOKENS = ("<td>", "</td>")


@dataclass
class _LoadedModel:
    model: Any
    processor: Any
    users: int = 0


_MODELS: dict[tuple[str, str | None, str, str, str], _LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def _load_help(model: str) -> str:
    return (
        f"could not load the DeepSeek-OCR-2 model {model!r}. If this machine has no network "
        "access, download the checkpoint where you have one "
        f"(`hf download {DEFAULT_MODEL} --local-dir ./DeepSeek-OCR-2`), copy the folder here and "
        "pass its path: TransformersEngine(model='./DeepSeek-OCR-2') or "
        "`deepseek-ocr2 convert --model ./DeepSeek-OCR-2 ...`"
    )


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


class TransformersEngine(OCREngine):
    """DeepSeek-OCR-2 in this process, pages batched on one device.

    Args:
        model: Hub id or local folder of a DeepSeek-OCR-2 checkpoint.
        device: ``"cuda"``, ``"cuda:1"``, ``"cpu"``...; default CUDA when available.
        dtype: ``"bfloat16"``, ``"float16"``, ``"float32"``; default bf16 on CUDA, fp32 on CPU.
        attn_implementation: ``"sdpa"`` (default) or ``"flash_attention_2"`` for the
            language model (needs the ``flash`` extra).
        max_batch_size: Pages decoded together: slots in flight (``decode="slots"``; fewer
            when free GPU memory holds fewer) or one ``model.generate`` batch. Default 128 on
            a GPU with ``decode="slots"`` (7.2 pages/s on an H100; 256 gives 8.2), else 16.
        vision_batch_size: Pages whose views go through the vision towers together, about
            0.4 GiB of GPU memory each. Default 16 on a GPU (35 ms/page on an H100, against
            72 ms at 2), 2 on a CPU.
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
        ModelLoadError: The checkpoint is missing or unreadable; the message says how to
            point at a local copy.
        ConfigError: An option is out of bounds.

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
        max_new_tokens: int = 8192,
        ngram_size: int = 20,
        ngram_window: int = 50,
        revision: str | None = None,
        local_files_only: bool = False,
        decode: str = "slots",
        ignore_eos: bool = False,
        stop_loops: bool = True,
        cuda_graphs: bool = True,
    ) -> None:
        import torch

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        gpu = self.device.type == "cuda"
        if max_batch_size is None:  # model.generate pads and grows its cache: keep its batches small
            max_batch_size = 128 if gpu and decode == "slots" else 16
        if vision_batch_size is None:
            vision_batch_size = 16 if gpu else 2
        for label, value, low in (
            ("max_batch_size", max_batch_size, 1),
            ("vision_batch_size", vision_batch_size, 1),
            ("max_new_tokens", max_new_tokens, 1),
            ("ngram_size", ngram_size, 2),
        ):
            if value < low:
                raise ConfigError(f"{label} must be >= {low}, got {value}")
        if ngram_window < ngram_size:
            raise ConfigError(f"ngram_window ({ngram_window}) must be >= ngram_size ({ngram_size})")
        if attn_implementation not in ("sdpa", "eager", "flash_attention_2"):
            raise ConfigError(f"unknown attn_implementation {attn_implementation!r}")
        if attn_implementation == "flash_attention_2":
            try:
                import flash_attn  # noqa: F401
            except ImportError as exc:
                raise ConfigError(
                    "attn_implementation='flash_attention_2' needs flash-attn: "
                    "pip install 'deepseek-ocr2-loaders[flash]'"
                ) from exc
        self.model_id = str(model)
        default_dtype = torch.bfloat16 if gpu else torch.float32
        try:
            self.dtype = getattr(torch, dtype) if dtype else default_dtype
        except AttributeError as exc:
            raise ConfigError(f"unknown dtype {dtype!r}") from exc
        self.attn_implementation = attn_implementation
        self.batch_size = max_batch_size
        self.vision_batch_size = vision_batch_size
        self.max_new_tokens = max_new_tokens
        self.ngram_size = ngram_size
        self.ngram_window = ngram_window
        self.revision = revision
        self.local_files_only = local_files_only
        if decode not in ("slots", "generate"):
            raise ConfigError(f"decode must be 'slots' or 'generate', got {decode!r}")
        self.decode = decode
        self.ignore_eos = ignore_eos
        self.stop_loops = stop_loops
        self.cuda_graphs = cuda_graphs
        self.last_stats: dict[str, float] = {}
        self._decoder: Any = None
        self._decoder_wanted = 0
        self._key = (self.model_id, revision, str(self.device), str(self.dtype), attn_implementation)
        self._loaded: _LoadedModel | None = None
        self._stricter: TransformersEngine | None = None
        self._loops: TokenLoops | None = None

    @property
    def name(self) -> str:
        """The model id or folder name, as recorded in page metadata."""
        return self.model_id

    @property
    def _graph_ready(self) -> bool:
        """bf16 on CUDA: grouped GEMM experts (static shapes) exist only for bf16."""
        import torch

        return self.device.type == "cuda" and self.dtype == torch.bfloat16

    @property
    def fingerprint(self) -> dict[str, object]:
        """Model, revision, dtype and decoding settings: what changes the text it writes."""
        return {
            "engine": "TransformersEngine",
            "model": self.model_id,
            "revision": self.revision,
            "dtype": str(self.dtype),
            "max_new_tokens": self.max_new_tokens,
            "ngram_size": self.ngram_size,
            "ngram_window": self.ngram_window,
        }

    def stricter(self) -> TransformersEngine:
        """The same model with a stronger n-gram guard: the same n-gram length in twice the window."""
        if self._stricter is None:
            self._stricter = TransformersEngine(
                self.model_id,
                device=str(self.device),
                dtype=str(self.dtype).removeprefix("torch."),
                attn_implementation=self.attn_implementation,
                max_batch_size=self.batch_size,
                vision_batch_size=self.vision_batch_size,
                max_new_tokens=self.max_new_tokens,
                ngram_size=self.ngram_size,
                ngram_window=2 * self.ngram_window,
                revision=self.revision,
                local_files_only=self.local_files_only,
            )
        return self._stricter

    # -- lifecycle -----------------------------------------------------------------

    def _acquire(self) -> _LoadedModel:
        """Load the model on first use; share it with engines of the same key."""
        if self._loaded is not None:
            return self._loaded
        with _MODELS_LOCK:
            loaded = _MODELS.get(self._key)
            if loaded is None:
                loaded = _MODELS[self._key] = self._load()
            loaded.users += 1
        self._loaded = loaded
        return loaded

    def _load(self) -> _LoadedModel:
        from transformers import AutoConfig, AutoProcessor, DeepseekOcr2ForConditionalGeneration

        source = self.model_id
        local = Path(source).expanduser()
        if local.exists():
            source = str(local)
        elif source.startswith((".", "/", "~")):
            raise ModelLoadError(f"model folder not found. {_load_help(self.model_id)}", source=self.model_id)
        options: dict[str, Any] = {"revision": self.revision, "local_files_only": self.local_files_only}
        try:
            config = AutoConfig.from_pretrained(source, **options)
            if config.model_type != "deepseek_ocr2":
                raise ModelLoadError(
                    f"{source!r} is a {config.model_type!r} checkpoint, not DeepSeek-OCR-2 (deepseek_ocr2)",
                    source=self.model_id,
                )
            attn: str | dict[str, str] = self.attn_implementation
            if attn == "flash_attention_2":  # the vision towers support SDPA only
                attn = {"text_config": "flash_attention_2", "vision_config": "sdpa", "": "sdpa"}
            # grouped GEMM experts have static shapes (the decode step can be a CUDA graph) but run
            # in bf16 only; elsewhere the per-expert loop, whatever the transformers default is
            options["experts_implementation"] = "grouped_mm" if self._graph_ready else "eager"
            model = DeepseekOcr2ForConditionalGeneration.from_pretrained(
                source, dtype=self.dtype, attn_implementation=attn, **options
            )
            processor = AutoProcessor.from_pretrained(source, **options)
        except ModelLoadError:
            raise
        except Exception as exc:  # any failure here (OSError, HTTP, socket, parse) is a load failure
            raise ModelLoadError(
                f"{_load_help(self.model_id)} ({type(exc).__name__}: {exc})", source=self.model_id
            ) from exc
        model.to(self.device).eval()  # type: ignore[arg-type]
        patch_sam_attention(model)  # same function, no dense relative-position bias per view or window
        processor.tokenizer.padding_side = "left"
        logger.info("loaded %s on %s as %s", source, self.device, self.dtype)
        return _LoadedModel(model=model, processor=processor)

    def close(self) -> None:
        """Release this engine's hold on the model; the last holder frees the GPU."""
        if self._stricter is not None:
            self._stricter.close()
            self._stricter = None
        self._decoder = None
        if self._loaded is None:
            return
        with _MODELS_LOCK:
            self._loaded.users -= 1
            if self._loaded.users <= 0:
                _MODELS.pop(self._key, None)
                self._loaded.model = None
        self._loaded = None
        if self.device.type == "cuda":
            import torch

            torch.cuda.empty_cache()

    # -- inference -----------------------------------------------------------------

    def generate(self, images: list[Image.Image], prompt: str) -> list[EngineOutput]:
        """Read the images with ``prompt``, ``max_batch_size`` pages in flight at a time."""
        if self.decode == "slots":
            with _mapped_generation_errors():
                return self._generate_slots(images, prompt)
        outputs: list[EngineOutput] = []
        for start in range(0, len(images), self.batch_size):
            outputs.extend(self._generate_batch(images[start : start + self.batch_size], prompt))
        return outputs

    def _generate_batch(self, images: list[Image.Image], prompt: str) -> list[EngineOutput]:
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

        loaded = self._acquire()
        model, tokenizer = loaded.model, loaded.processor.tokenizer
        inputs = self.encode(images, prompt)
        input_ids = inputs["input_ids"].to(self.device)
        attention_mask = inputs["attention_mask"].to(self.device)
        vision_tokens = (inputs["input_ids"] == model.config.image_token_id).sum(1).tolist()
        end_ids = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
        loops = self._loop_check(model, tokenizer)
        stopper = LoopStopper(input_ids.shape[1], end_ids, loops)
        with _mapped_generation_errors(), torch.inference_mode():
            embeds = self._embed(model, inputs, input_ids)
            sequences = model.generate(
                input_ids=input_ids,
                inputs_embeds=embeds,
                attention_mask=attention_mask,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                logits_processor=LogitsProcessorList([self._guard(tokenizer, loops, input_ids.shape[1])]),
                stopping_criteria=StoppingCriteriaList([stopper]),
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        generated = sequences[:, input_ids.shape[1] :].tolist()
        looped = [False] * len(images) if stopper.looped is None else stopper.looped.tolist()
        loop_start = [-1] * len(images) if stopper.loop_start is None else stopper.loop_start.tolist()
        results = []
        for row, tokens in enumerate(generated):
            keep, reason, count = finish_sequence(
                tokens, tokenizer.eos_token_id, tokenizer.pad_token_id, looped[row], loop_start[row]
            )
            results.append(
                EngineOutput(
                    text=tokenizer.decode(tokens[:keep], skip_special_tokens=False),
                    finish_reason=reason,
                    vision_tokens=int(vision_tokens[row]),
                    output_tokens=count,
                )
            )
        return results

    def _generate_slots(self, images: list[Image.Image], prompt: str) -> list[EngineOutput]:
        import torch

        from ._slots import page_prompts

        loaded = self._acquire()
        tokenizer = loaded.processor.tokenizer
        decoder = self._slot_decoder(loaded.model, tokenizer, len(images), prompt)
        outputs: dict[int, EngineOutput] = {}
        started = time.perf_counter()
        with torch.inference_mode():
            pages = page_prompts(self, images, prompt, self.vision_batch_size, decoder.stats)
            for result in decoder.run(pages):
                outputs[result.index] = EngineOutput(
                    text=tokenizer.decode(result.tokens, skip_special_tokens=False),
                    finish_reason=result.finish_reason,
                    vision_tokens=result.vision_tokens,
                    output_tokens=result.output_tokens,
                )
        self.last_stats = {**decoder.stats, "total_s": time.perf_counter() - started, "slots": decoder.slots}
        decoder.stats.clear()
        return [outputs[index] for index in range(len(images))]

    def _slot_decoder(self, model: Any, tokenizer: Any, pages: int, prompt: str) -> Any:
        """The decoder for this many pages: slots in powers of two up to max_batch_size, sized to memory."""
        from ._slots import SlotDecoder, fit_slots

        wanted = min(self.batch_size, 1 << max(pages - 1, 0).bit_length())
        room = 256 + 144 * 6 + 1 + len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) + 8
        current = self._decoder
        if (
            current is not None
            and self._decoder_wanted == wanted
            and current.prompt_room >= room
            and current.max_new_tokens == self.max_new_tokens
        ):
            return current  # (sized before: free memory now excludes its own cache)
        del current
        self._decoder = None  # free the old cache before the new one is allocated
        self._decoder_wanted = wanted
        slots = fit_slots(model, wanted, room + self.max_new_tokens + 1, self.vision_batch_size)
        loops = self._loop_check(model, tokenizer)
        self._decoder = SlotDecoder(
            model=model,
            slots=slots,
            max_new_tokens=self.max_new_tokens,
            prompt_room=room,
            eos_id=tokenizer.eos_token_id,
            pad_id=tokenizer.pad_token_id,
            guard=self._guard(tokenizer, loops),
            ignore_eos=self.ignore_eos,
            loops=loops if self.stop_loops else None,
            use_cuda_graph=self.cuda_graphs and self._graph_ready,
        )
        return self._decoder

    def _loop_check(self, model: Any, tokenizer: Any) -> TokenLoops:
        """The loop detector of this vocabulary, built once per engine."""
        if self._loops is None:
            vocab = model.config.get_text_config().vocab_size
            self._loops = TokenLoops.for_tokenizer(tokenizer, vocab, self.device)
        return self._loops

    def _guard(self, tokenizer: Any, loops: TokenLoops, prompt_length: int = 0) -> WindowedNoRepeatNGram:
        """The n-gram guard over generated tokens; table structure may repeat."""
        whitelist = [i for i in tokenizer.convert_tokens_to_ids(list(TABLE_CELL_TOKENS)) if i != tokenizer.unk_token_id]
        structure = loops.structure.nonzero().flatten().tolist()
        return WindowedNoRepeatNGram(
            self.ngram_size, self.ngram_window, whitelist, structure=structure, prompt_length=prompt_length
        )

    def encode(self, images: list[Image.Image], prompt: str, *, pin: bool = False) -> Any:
        """Processor inputs for a batch: ``BOS + prompt`` per page, ``<image>`` expanded, left-padded.

        Thread-safe and CPU-only, so the slot decoder runs it on worker threads ahead of the
        GPU. ``pin`` page-locks the pixels on CUDA: their copy to the GPU is then faster and
        does not block (worth it for the few pages in flight, not for a large batch).
        """
        processor = self._acquire().processor
        text = f"{processor.tokenizer.bos_token}{prompt}"
        inputs = processor(
            images=images, text=[text] * len(images), padding=True, add_special_tokens=False, return_tensors="pt"
        )
        if pin and self.device.type == "cuda":
            for key in ("pixel_values", "pixel_values_local"):
                if key in inputs:
                    inputs[key] = inputs[key].pin_memory()
        return inputs

    def _to_device(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels on the engine's device in its dtype (a no-op for pixels already there)."""
        return pixels.to(self.device, non_blocking=pixels.is_pinned()).to(self.dtype)

    def image_features(
        self, model: Any, pixel_values: torch.Tensor, pixel_values_local: torch.Tensor | None, crops: list[int]
    ) -> list[torch.Tensor]:
        """Each page's vision features (crops, global view, separator), on the device.

        Pages go through the model's own ``get_image_features`` ``vision_batch_size`` at a
        time, so the vision towers never see more than that many pages at once; pixels
        still on the host are moved a slice at a time.
        """
        features: list[torch.Tensor] = []
        for start in range(0, len(crops), self.vision_batch_size):
            stop = start + self.vision_batch_size
            first, last = sum(crops[:start]), sum(crops[:stop])
            local = None if pixel_values_local is None or first == last else pixel_values_local[first:last]
            out = model.get_image_features(
                pixel_values=self._to_device(pixel_values[start:stop]),
                pixel_values_local=None if local is None else self._to_device(local),
                num_local_patches=crops[start:stop],
                return_dict=True,
            )
            features.extend(out.pooler_output)
        return features

    def _embed(self, model: Any, inputs: Any, input_ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings of a padded batch with each page's image features scattered in."""
        import torch

        embeds = model.get_input_embeddings()(input_ids)
        local = inputs.get("pixel_values_local")
        features = self.image_features(
            model, inputs["pixel_values"], local, [int(n) for n in inputs["num_local_patches"]]
        )
        flat = torch.cat(features, dim=0).to(embeds.dtype)
        mask = (input_ids == model.config.image_token_id).unsqueeze(-1)
        merged: torch.Tensor = embeds.masked_scatter(mask, flat)
        return merged
