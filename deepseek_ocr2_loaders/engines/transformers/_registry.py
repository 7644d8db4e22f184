"""One loaded model per process for each (model, revision, device, dtype, attention), shared by engines.

Every loader that names the same model gets the same weights on the GPU; the last engine
that closes frees them. Loading goes through transformers' native DeepSeek-OCR-2 classes
(no ``trust_remote_code``) and pins the image processor to its PIL backend, which is
bit-for-bit the official preprocessing (the torchvision backend differs on tall pages).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ModelLoadError
from ...model import DEFAULT_MODEL
from ._sam_attention import patch_sam_attention

__all__ = ["IMAGE_BACKEND", "LoadedModel", "acquire", "hub_unreachable", "load_help", "load_model", "release"]

logger = logging.getLogger(__name__)

IMAGE_BACKEND = "pil"
"""The image processor backend: the official preprocessing, whatever else happens to import."""

Key = tuple[str, str | None, str, str, str]


@dataclass
class LoadedModel:
    """A model and its processor, with the number of engines holding it."""

    model: Any
    processor: Any
    users: int = 0


_MODELS: dict[Key, LoadedModel] = {}
_LOCK = threading.Lock()


def acquire(key: Key, load: Callable[[], LoadedModel]) -> LoadedModel:
    """The model of ``key``, loaded by ``load`` on first use; one more user holds it."""
    with _LOCK:
        loaded = _MODELS.get(key)
        if loaded is None:
            loaded = _MODELS[key] = load()
        loaded.users += 1
    return loaded


def release(key: Key, loaded: LoadedModel) -> None:
    """One user fewer; the last one drops the model so its memory can be freed."""
    with _LOCK:
        loaded.users -= 1
        if loaded.users <= 0:
            _MODELS.pop(key, None)
            loaded.model = None


def is_loaded(key: Key) -> bool:
    """Whether a model of ``key`` is held by some engine now."""
    with _LOCK:
        return key in _MODELS


def load_help(model: str) -> str:
    """The advice of every load failure: how to point at a local copy."""
    return (
        f"could not load the DeepSeek-OCR-2 model {model!r}. If this machine has no network "
        "access, download the checkpoint where you have one "
        f"(`hf download {DEFAULT_MODEL} --local-dir ./DeepSeek-OCR-2`), copy the folder here and "
        "pass its path: TransformersEngine(model='./DeepSeek-OCR-2') or "
        "`deepseek-ocr2 convert --model ./DeepSeek-OCR-2 ...`"
    )


@functools.cache
def hub_unreachable() -> OSError | None:
    """Why the Hugging Face hub cannot be reached (``None`` when it can); asked once per process.

    Without this, every file transformers asks for is retried with backoff, so a machine
    without network waits half a minute for the advice. One TCP connection answers in seconds.
    Behind an HTTPS proxy a direct connection proves nothing, so the hub is assumed reachable.
    """
    from huggingface_hub import constants

    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None

    url = constants.ENDPOINT.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = url.partition(":")
    try:
        socket.create_connection((host, int(port or 443)), timeout=3).close()
    except OSError as exc:
        return exc
    return None


def _offline(model_id: str, local_files_only: bool) -> bool:
    """Whether to read ``model_id`` from the local Hugging Face cache only.

    ``HF_HUB_OFFLINE=1`` says so; an unreachable hub does too when the cache holds the model,
    and without a cached copy it fails at once with the advice instead of after the retries.
    """
    from huggingface_hub import constants, try_to_load_from_cache

    if local_files_only or constants.HF_HUB_OFFLINE:
        return True
    problem = hub_unreachable()
    if problem is None:
        return False
    if isinstance(try_to_load_from_cache(model_id, "config.json"), str):
        return True
    raise ModelLoadError(
        f"{load_help(model_id)} (the hub at {constants.ENDPOINT} is unreachable: {problem}; "
        "HF_HUB_OFFLINE=1 reads the local Hugging Face cache only)",
        source=model_id,
    ) from problem


def load_model(
    model_id: str,
    *,
    revision: str | None,
    local_files_only: bool,
    device: Any,
    dtype: Any,
    attn_implementation: str,
    grouped_experts: bool,
) -> LoadedModel:
    """Load checkpoint and processor; any failure is a :class:`ModelLoadError` with :func:`load_help`."""
    from transformers import AutoConfig, AutoProcessor, DeepseekOcr2ForConditionalGeneration

    source = model_id
    local = Path(source).expanduser()
    if local.exists():
        source = str(local)
    elif source.startswith((".", "/", "~")):
        raise ModelLoadError(
            f"model folder not found: check the path, or pass a hub id such as {DEFAULT_MODEL}",
            source=model_id,
        )
    else:
        local_files_only = _offline(model_id, local_files_only)
    options: dict[str, Any] = {"revision": revision, "local_files_only": local_files_only}
    try:
        config = AutoConfig.from_pretrained(source, **options)
        if config.model_type != "deepseek_ocr2":
            raise ModelLoadError(
                f"{source!r} is a {config.model_type!r} checkpoint, not DeepSeek-OCR-2 (deepseek_ocr2)", source=model_id
            )
        attn: str | dict[str, str] = attn_implementation
        if attn == "flash_attention_2":  # the vision towers support SDPA only
            attn = {"text_config": "flash_attention_2", "vision_config": "sdpa", "": "sdpa"}
        # grouped GEMM experts have static shapes (the decode step can be a CUDA graph) but run
        # in bf16 only; elsewhere the per-expert loop, whatever the transformers default is
        experts = "grouped_mm" if grouped_experts else "eager"
        model = DeepseekOcr2ForConditionalGeneration.from_pretrained(
            source, dtype=dtype, attn_implementation=attn, experts_implementation=experts, **options
        )
        processor = AutoProcessor.from_pretrained(source, backend=IMAGE_BACKEND, **options)
    except ModelLoadError:
        raise
    except Exception as exc:  # any failure here (OSError, HTTP, socket, parse) is a load failure
        raise ModelLoadError(f"{load_help(model_id)} ({type(exc).__name__}: {exc})", source=model_id) from exc
    model.to(device).eval()
    patch_sam_attention(model)  # same function, no dense relative-position bias per view or window
    processor.tokenizer.padding_side = "left"
    logger.info("loaded %s on %s as %s", source, device, dtype)
    return LoadedModel(model=model, processor=processor)
