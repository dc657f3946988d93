"""ONNX encoder backends: torch's vectors, a checked cache rebuilt when corrupted, a fallback to torch."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil

import numpy as np
import pytest

from indexing import DENSE_SIZE, DenseEncoder
from indexing.embedding import packaged_model_path
from indexing.encoders import OnnxExport
from tests.indexing.test_embedding import GOLDEN_FIRST, GOLDEN_TEXT


def test_onnx_gives_the_pinned_vector_and_int8_stays_close(tmp_path, dense) -> None:
    fp32 = DenseEncoder(backend="onnx", cache_dir=tmp_path)
    [vector] = fp32.encode([GOLDEN_TEXT])
    assert fp32.backend == "onnx" and vector.shape == (DENSE_SIZE,)
    assert vector[:6].tolist() == pytest.approx(GOLDEN_FIRST, abs=1e-4)

    texts = [GOLDEN_TEXT, "After the storm the port of Veltmark opened again.", "word " * 400]  # one truncated
    int8 = DenseEncoder(backend="onnx-int8", cache_dir=tmp_path)
    ref, quantized = dense.encode(texts), int8.encode(texts)
    assert np.allclose(fp32.encode(texts), ref, atol=1e-4)  # padding, truncation and pooling as torch does them
    assert (ref * quantized).sum(axis=1).min() > 0.97
    assert np.linalg.norm(quantized, axis=1) == pytest.approx([1.0] * 3, abs=1e-5)


def test_the_chunker_tokenizer_matches_the_models(tmp_path, dense) -> None:
    onnx = DenseEncoder(backend="onnx-int8", cache_dir=tmp_path)
    texts = ["Hello, world! Ünïcode here.", "The Veltmark harbour reopened on 14 March after a storm."]
    kwargs = {"add_special_tokens": False, "return_offsets_mapping": True, "verbose": False}
    mine, theirs = onnx.tokenize(texts, **kwargs), dense.tokenize(texts, **kwargs)
    assert mine["input_ids"] == theirs["input_ids"]
    assert [[tuple(o) for o in row] for row in mine["offset_mapping"]] == [
        [tuple(o) for o in row] for row in theirs["offset_mapping"]
    ]


def test_a_corrupted_cached_export_is_detected_and_rebuilt(tmp_path) -> None:
    DenseEncoder(backend="onnx-int8", cache_dir=tmp_path).encode(["warm"])
    export = OnnxExport(packaged_model_path(), tmp_path)
    target = export.path("onnx-int8")
    good = target.read_bytes()
    target.write_bytes(good[: len(good) // 2])  # a torn write: the checksum no longer matches
    [vector] = DenseEncoder(backend="onnx-int8", cache_dir=tmp_path).encode([GOLDEN_TEXT])
    assert target.read_bytes() == good and float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-5)

    # Garbage whose checksum was recorded too: ONNX Runtime refuses it, and it is exported again.
    target.write_bytes(b"not an onnx graph")
    manifest = json.loads(export.manifest.read_text())
    manifest[target.name] = {"size": target.stat().st_size, "sha256": hashlib.sha256(b"not an onnx graph").hexdigest()}
    export.manifest.write_text(json.dumps(manifest))
    encoder = DenseEncoder(backend="onnx-int8", cache_dir=tmp_path)
    assert encoder.encode([GOLDEN_TEXT]).shape == (1, DENSE_SIZE) and encoder.backend == "onnx-int8"
    assert target.read_bytes() == good


def test_a_model_the_backend_cannot_export_falls_back_to_torch(tmp_path, caplog) -> None:
    model = tmp_path / "max-pooled"
    source = packaged_model_path()
    shutil.copytree(source, model, ignore=shutil.ignore_patterns("model.safetensors"))
    (model / "model.safetensors").symlink_to(source / "model.safetensors")
    pooling = model / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_max_tokens=True)
    pooling.write_text(json.dumps(config))
    encoder = DenseEncoder(model, backend="onnx-int8", cache_dir=tmp_path / "cache")
    with caplog.at_level(logging.WARNING, logger="indexing.embedding"):
        [vector] = encoder.encode([GOLDEN_TEXT])
    assert encoder.backend == "torch" and vector.shape == (DENSE_SIZE,)
    assert "encoding with torch instead" in caplog.text and "neither mean nor CLS" in caplog.text
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.onnx"))


def test_an_unknown_backend_names_the_setting() -> None:
    from errors import ConfigError

    with pytest.raises(ConfigError, match="KUP_ENCODER_BACKEND"):
        DenseEncoder(backend="tensorflow")
