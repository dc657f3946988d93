"""The encoders: all-MiniLM-L6-v2 from its package (pinned first dimensions), BM25 sparse vectors, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from errors import ConfigError
from indexing import DENSE_SIZE, DenseEncoder

# all-MiniLM-L6-v2's first dimensions for this text (normalised): a changed model, pooling or
# normalisation moves them, and every stored vector would silently stop matching new queries.
GOLDEN_TEXT = "The Veltmark harbour reopened on 14 March after a storm."
GOLDEN_FIRST = [0.01753, 0.02081, 0.08479, 0.00747, 0.03056, -0.01264]


def test_the_packaged_model_gives_the_pinned_vector(dense) -> None:
    [vector] = dense.encode([GOLDEN_TEXT])
    assert vector.shape == (DENSE_SIZE,) and dense.dimension == DENSE_SIZE
    assert vector[:6].tolist() == pytest.approx(GOLDEN_FIRST, abs=1e-4)
    assert float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-5)


def test_queries_and_batches_agree_and_calls_are_counted(dense) -> None:
    before = dense.calls
    batch = dense.encode([GOLDEN_TEXT, "Another sentence entirely."])
    assert dense.calls == before + 2
    assert dense.encode_query(GOLDEN_TEXT) == pytest.approx(batch[0].tolist(), abs=1e-5)
    empty = dense.encode([])
    assert empty.shape == (0, DENSE_SIZE) and dense.calls == before + 3  # nothing to encode costs nothing


def test_similar_texts_are_closer_than_unrelated_ones(dense) -> None:
    harbour, ferry, rover = dense.encode(
        [GOLDEN_TEXT, "After the storm the port of Veltmark opened again.", "The rover sent a panorama from Mars."]
    )
    assert float(harbour @ ferry) > float(harbour @ rover) + 0.2


def test_an_unloadable_model_names_the_setting_to_change(tmp_path) -> None:
    encoder = DenseEncoder(tmp_path / "no-such-model")
    with pytest.raises(ConfigError, match="KUP_EMBEDDING_MODEL"):
        encoder.encode(["anything"])


def test_sparse_vectors_weigh_repeated_terms_and_queries_count_each_once(sparse) -> None:
    [doc] = sparse.encode(["harbour harbour storm"])
    query = sparse.encode_query("harbour harbour storm")
    assert sorted(doc.indices) == sorted(query.indices) and len(doc.indices) == 2
    weights = dict(zip(doc.indices, doc.values, strict=True))
    assert query.values == [1.0, 1.0]  # the index applies IDF; a query term counts once
    assert weights[sparse.encode_query("harbour").indices[0]] > weights[sparse.encode_query("storm").indices[0]]
    assert sparse.encode_query("Harbours").indices == sparse.encode_query("harbour").indices  # stemmed, lowercased
