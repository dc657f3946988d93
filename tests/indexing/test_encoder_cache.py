"""The ONNX cache starts a process without rereading the model: remembered file hashes, trusted manifest stats."""

from __future__ import annotations

import json

import numpy as np
import pytest

from indexing import DenseEncoder
from indexing.embedding import packaged_model_path
from indexing.encoders import OnnxExport, model_fingerprint
from tests.indexing.test_embedding import GOLDEN_TEXT


def test_a_same_size_overwrite_is_detected_and_rebuilt(tmp_path) -> None:
    DenseEncoder(backend="onnx-int8", cache_dir=tmp_path).encode(["warm"])
    export = OnnxExport(packaged_model_path(), tmp_path)
    target = export.path("onnx-int8")
    good = target.read_bytes()
    recorded = json.loads(export.manifest.read_text())[target.name]
    assert recorded["mtime_ns"] == target.stat().st_mtime_ns and recorded["size"] == len(good)

    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0xFF  # same size, one weight changed: only the checksum can tell
    target.write_bytes(bytes(flipped))
    [vector] = DenseEncoder(backend="onnx-int8", cache_dir=tmp_path).encode([GOLDEN_TEXT])
    assert target.read_bytes() == good and float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-5)


def test_model_file_hashes_are_remembered_on_disk(tmp_path) -> None:
    memo = tmp_path / "file-hashes.json"
    first = model_fingerprint(packaged_model_path(), memo)
    remembered = json.loads(memo.read_text())
    weights = packaged_model_path() / "model.safetensors"
    [key] = [k for k in remembered if k.startswith(f"{weights}|")]
    assert key.split("|")[1] == str(weights.stat().st_size) and len(remembered[key]) == 64
    assert model_fingerprint(packaged_model_path(), memo) == first
