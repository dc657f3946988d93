"""ONNX Runtime encoders: a sentence-transformers model exported once (fp32 or int8) to a cache, run without torch.

The export keeps the model's own pooling and normalisation inside the graph, so the runtime only
tokenizes (the ``tokenizers`` library) and calls ONNX Runtime. The cache is keyed by a hash of the
model's files: a changed model is exported again; a cached file whose checksum no longer matches,
or that ONNX Runtime cannot load, is rebuilt.

One concept, ~350 lines: the export, its cache and the runtime that reads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
from filelock import FileLock

logger = logging.getLogger(__name__)

ONNX_BACKENDS = ("onnx", "onnx-int8")
_EXPORT_VERSION = "1"  # bump when the export recipe changes, so caches are rebuilt
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"
_TRANSFORMER = "sentence_transformers.models.Transformer"


class ExportError(Exception):
    """The model cannot be exported to ONNX (unsupported layout or a failed export)."""


def model_fingerprint(model_dir: Path, memo_file: Path | None = None) -> str:
    """sha256 over the model's files (names and contents); each file's hash is remembered per path, size and
    mtime, in this process and in ``memo_file`` (so a fresh ``kup search`` does not read 90 MB to start)."""
    files = sorted(p for p in model_dir.rglob("*") if p.is_file() and ".git" not in p.parts)
    if not files:
        raise ExportError(f"{model_dir} holds no model files")
    on_disk = _read_memo(memo_file) if memo_file is not None else {}
    _hash_memo.update(on_disk)
    digest = hashlib.sha256(_EXPORT_VERSION.encode())
    keys = []
    for path in files:
        keys.append(_file_key(path))
        digest.update(str(path.relative_to(model_dir)).encode())
        digest.update(_file_hash(path).encode())
    if memo_file is not None and any(k not in on_disk for k in keys):
        _write_memo(memo_file, {**on_disk, **{k: _hash_memo[k] for k in keys}})
    return digest.hexdigest()[:16]


_hash_memo: dict[str, str] = {}  # "path|size|mtime_ns" -> sha256


def _file_key(path: Path) -> str:
    st = path.stat()
    return f"{path}|{st.st_size}|{st.st_mtime_ns}"


def _file_hash(path: Path) -> str:
    key = _file_key(path)
    if key not in _hash_memo:
        _hash_memo[key] = _sha256(path)
    return _hash_memo[key]


def _read_memo(memo_file: Path) -> dict[str, str]:
    with contextlib.suppress(OSError, ValueError):  # absent or unreadable: hash again
        memo = json.loads(memo_file.read_text())
        if isinstance(memo, dict):
            return {str(k): str(v) for k, v in memo.items()}
    return {}


def _write_memo(memo_file: Path, memo: dict[str, str]) -> None:
    try:
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        part = memo_file.with_name(f"{memo_file.name}.{os.getpid()}.part")
        part.write_text(json.dumps(memo))
        os.replace(part, memo_file)
    except OSError as exc:  # only a cache
        logger.info("could not remember model file hashes in %s: %s", memo_file, exc)


def _layout(model_dir: Path) -> tuple[str, int]:
    """The pooling mode and the maximum sequence length, if this is a model the export understands."""
    modules_file = model_dir / "modules.json"
    if not modules_file.exists():
        raise ExportError(f"{model_dir} is not a sentence-transformers directory (no modules.json)")
    modules = json.loads(modules_file.read_text())
    kinds = [m.get("type") for m in modules]
    if kinds[:2] != [_TRANSFORMER, _POOLING] or any(k != _NORMALIZE for k in kinds[2:]):
        raise ExportError(f"only Transformer + Pooling (+ Normalize) models can be exported, not {kinds}")
    pooling = json.loads((model_dir / modules[1]["path"] / "config.json").read_text())
    mode = "mean" if pooling.get("pooling_mode_mean_tokens") else "cls" if pooling.get("pooling_mode_cls_token") else ""
    if not mode:
        raise ExportError(f"pooling {pooling} is neither mean nor CLS")
    bert = model_dir / "sentence_bert_config.json"
    max_len = json.loads(bert.read_text()).get("max_seq_length", 256) if bert.exists() else 256
    return mode, int(max_len)


def _export_fp32(model_dir: Path, target: Path, pooling: str) -> None:
    """Trace the transformer with pooling and L2 normalisation into one ONNX graph (torch's exporter)."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager")
    model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            if pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    ids = torch.ones(2, 16, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about shapes; the graph is checked against torch in tests
        torch.onnx.export(
            Pooled(model),
            (ids, ids, torch.zeros_like(ids)),
            str(target),
            input_names=names,
            output_names=["embedding"],
            dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def _quantize(source: Path, target: Path) -> None:
    """Dynamic int8: weights per channel (per-tensor strays further from fp32 on MiniLM), activations at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"], per_channel=True
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


SHARED_CACHE = Path.home() / ".cache" / "kup" / "onnx"


def _recorded_valid(directory: Path, name: str) -> bool:
    """``directory/name`` exists with the size and sha256 its manifest recorded when it was written.

    A file still carrying the size and modification time recorded with its checksum was not rewritten
    since (a torn or partial write, a copy over it, a truncation all change them), so it is not read
    again to start; any other file is hashed in full.
    """
    target, manifest = directory / name, directory / "manifest.json"
    if not (target.exists() and manifest.exists()):
        return False
    try:
        recorded = json.loads(manifest.read_text()).get(name, {})
    except ValueError:
        return False
    st = target.stat()
    if recorded.get("size") != st.st_size:
        return False
    if recorded.get("mtime_ns") == st.st_mtime_ns and recorded.get("sha256"):
        return True
    return recorded.get("sha256") == _sha256(target)


class OnnxExport:
    """The exported files of one model in the cache: ``<cache>/<fingerprint>/{model,model-int8}.onnx`` + manifest.

    Each export is also kept in a per-user cache (``SHARED_CACHE``), so a new data directory (or a
    test's) copies a checked file instead of exporting the same model again.
    """

    def __init__(self, model_dir: Path, cache_dir: Path, shared_dir: Path | None = SHARED_CACHE) -> None:
        self.model_dir = model_dir
        fingerprint = model_fingerprint(model_dir, cache_dir / "file-hashes.json")
        self.dir = cache_dir / fingerprint
        self.shared = shared_dir / fingerprint if shared_dir is not None else None
        self.manifest = self.dir / "manifest.json"

    def path(self, backend: str) -> Path:
        return self.dir / ("model-int8.onnx" if backend == "onnx-int8" else "model.onnx")

    def _valid(self, backend: str) -> bool:
        return _recorded_valid(self.dir, self.path(backend).name)

    def _from_shared(self, backend: str) -> bool:
        name = self.path(backend).name
        if self.shared is None or self.shared == self.dir or not _recorded_valid(self.shared, name):
            return False
        self._atomic(self.path(backend), lambda tmp: shutil.copyfile(self.shared / name, tmp))
        return self._valid(backend)

    def _to_shared(self, backend: str) -> None:
        if self.shared is None or self.shared == self.dir:
            return
        try:
            self.shared.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.shared) + ".lock", timeout=60):
                OnnxExport(self.model_dir, self.shared.parent, None)._atomic(
                    self.shared / self.path(backend).name, lambda tmp: shutil.copyfile(self.path(backend), tmp)
                )
        except (OSError, TimeoutError, ExportError) as exc:  # only a cache: the export itself is done
            logger.info("could not keep the ONNX export in %s: %s", self.shared, exc)

    def ensure(self, backend: str) -> tuple[Path, dict]:
        """The ONNX file for ``backend`` (exported now if missing or corrupt) and the model's layout facts."""
        pooling, max_len = _layout(self.model_dir)
        facts = {"pooling": pooling, "max_seq_length": max_len}
        if self._valid(backend):
            return self.path(backend), facts
        self.dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.dir) + ".lock", timeout=900):
            if self._valid(backend) or self._from_shared(backend):  # exported meanwhile, or for another data dir
                return self.path(backend), facts
            self.rebuild(backend, pooling)
            self._to_shared(backend)
        return self.path(backend), facts

    def rebuild(self, backend: str, pooling: str | None = None) -> None:
        """Export (and quantize) again, writing each file atomically and recording its checksum."""
        pooling = pooling or _layout(self.model_dir)[0]
        logger.info("exporting %s to ONNX (%s) into %s", self.model_dir, backend, self.dir)
        fp32 = self.path("onnx")
        if backend == "onnx" or not self._valid("onnx"):
            self._atomic(fp32, lambda tmp: _export_fp32(self.model_dir, tmp, pooling))
        if backend == "onnx-int8":
            self._atomic(self.path("onnx-int8"), lambda tmp: _quantize(fp32, tmp))

    def _atomic(self, target: Path, make) -> None:
        fd, name = tempfile.mkstemp(prefix=target.stem + "-", suffix=".onnx.part", dir=self.dir)
        os.close(fd)
        tmp = Path(name)
        try:
            make(tmp)
            tmp.chmod(0o644)  # mkstemp makes it private; the cache is read by every kup process
            os.replace(tmp, target)
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(f"exporting {self.model_dir.name} to ONNX failed: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        manifest = json.loads(self.manifest.read_text()) if self.manifest.exists() else {}
        st = target.stat()
        manifest[target.name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": _sha256(target)}
        part = self.manifest.with_suffix(".part")
        part.write_text(json.dumps(manifest, indent=1))
        os.replace(part, self.manifest)


class WordPieceTokenizer:
    """The model's fast tokenizer (``tokenizer.json``) without transformers: the same ids and offsets."""

    def __init__(self, model_dir: Path) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tok.no_truncation()
        self._tok.no_padding()

    def __call__(self, texts: list[str], *, add_special_tokens: bool = True, **_: object) -> dict:
        encoded = self._tok.encode_batch(texts, add_special_tokens=add_special_tokens)
        return {"input_ids": [e.ids for e in encoded], "offset_mapping": [e.offsets for e in encoded]}

    def batch(self, texts: list[str], max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """Padded ids and attention mask, truncated to ``max_len`` tokens as sentence-transformers does."""
        encoded = self._tok.encode_batch(texts)
        rows = []
        for e in encoded:
            ids = e.ids
            if len(ids) > max_len:  # keep [CLS] ... [SEP]
                ids = ids[: max_len - 1] + ids[-1:]
            rows.append(ids)
        width = max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        return ids, mask


class OnnxEncoder:
    """Sentence embeddings from an exported graph (already pooled and normalised)."""

    def __init__(self, model_file: Path, model_dir: Path, max_seq_length: int, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads sleep instead of spinning: kup shares its cores with the Prefect server, the API
        # and the catalog, and a spinning pool takes their time (encoding on a loaded machine was
        # faster without spinning, in alternating runs); an idle machine pays a wake-up per operator.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self.tokenizer = WordPieceTokenizer(model_dir)
        self.max_seq_length = max_seq_length
        self.dimension = int(self.session.get_outputs()[0].shape[-1])

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        # Longest first, so each batch pads to texts of similar length (as sentence-transformers sorts).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            picked = order[start : start + batch_size]
            ids, mask = self.tokenizer.batch([texts[i] for i in picked], self.max_seq_length)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            out[picked] = self.session.run(None, feeds)[0]
        return out


def load_onnx_encoder(model_dir: Path, cache_dir: Path, backend: str) -> OnnxEncoder:
    """Export on first use (or after the model changed), rebuild a cache file that fails its checksum or
    does not load, and return a ready encoder. Raises ``ExportError`` when the model cannot be exported."""
    export = OnnxExport(model_dir, cache_dir)
    path, facts = export.ensure(backend)
    try:
        return OnnxEncoder(path, model_dir, facts["max_seq_length"])
    except Exception as exc:  # ONNX Runtime raises its own Fail/InvalidProtobuf types
        logger.warning("cached ONNX model %s does not load (%s); exporting it again", path, exc)
        path.unlink(missing_ok=True)
        path, facts = export.ensure(backend)
    try:
        return OnnxEncoder(path, model_dir, facts["max_seq_length"])
    except Exception as exc:
        raise ExportError(f"the ONNX export of {model_dir.name} does not load: {exc}") from exc
