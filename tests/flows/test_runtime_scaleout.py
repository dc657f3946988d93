"""Only settings change: the Dask fan-out, the Qdrant cluster layout and Secret-block references reach the parts
the runtime builds."""

from __future__ import annotations

import pytest

from errors import ConfigError
from flows.runtime import Runtime
from flows.settings import load_settings


@pytest.fixture
def pipeline_env(tmp_path, monkeypatch):
    (tmp_path / "sources.yaml").write_text("sources: []\n")
    monkeypatch.setenv("KUP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KUP_SOURCES_FILE", str(tmp_path / "sources.yaml"))


@pytest.mark.usefixtures("pipeline_env")
def test_one_setting_sends_large_batches_to_dask(monkeypatch) -> None:
    with Runtime(load_settings()) as runtime:
        assert runtime.indexer.fanout is None  # in-process unless asked
    monkeypatch.setenv("KUP_DASK_ADDRESS", "tcp://dask.internal:8786")
    monkeypatch.setenv("KUP_DASK_UNREACHABLE", "in-process")
    with Runtime(load_settings()) as runtime:
        fanout = runtime.indexer.fanout
        assert fanout is runtime.fanout and fanout.address == "tcp://dask.internal:8786"
        assert fanout.unreachable == "in-process" and fanout.recipe.chunk_tokens == runtime.settings.chunk_tokens
    monkeypatch.delenv("KUP_DASK_ADDRESS")
    monkeypatch.setenv("KUP_DASK_WORKERS", "3")
    with Runtime(load_settings()) as runtime:
        assert runtime.indexer.fanout.workers == 3 and runtime.indexer.fanout.address is None


@pytest.mark.usefixtures("pipeline_env")
def test_cluster_settings_reach_the_qdrant_store(monkeypatch) -> None:
    monkeypatch.setenv("KUP_QDRANT_URL", ":memory:")
    monkeypatch.setenv("KUP_QDRANT_SHARDS", "6")
    monkeypatch.setenv("KUP_QDRANT_REPLICATION_FACTOR", "2")
    with Runtime(load_settings()) as runtime:
        cluster = runtime.store.cluster
        assert (cluster.shard_number, cluster.replication_factor, cluster.write_consistency_factor) == (6, 2, None)
        assert runtime.store.staging().cluster == cluster  # a rebuild's collection is laid out the same way
    monkeypatch.setenv("KUP_QDRANT_WRITE_CONSISTENCY_FACTOR", "3")
    with Runtime(load_settings()) as runtime, pytest.raises(ConfigError, match="^KUP_QDRANT_WRITE_CONSISTENCY"):
        runtime.store  # noqa: B018


@pytest.mark.usefixtures("pipeline_env", "prefect_harness")
def test_the_catalog_url_can_live_in_a_secret_block(monkeypatch, tmp_path) -> None:
    from prefect.blocks.system import Secret

    url = f"sqlite:///{tmp_path / 'secret-catalog.db'}"
    Secret(value=url).save("kup-test-runtime-catalog", overwrite=True)
    monkeypatch.setenv("KUP_CATALOG_URL", "prefect-secret:kup-test-runtime-catalog")
    with Runtime(load_settings()) as runtime:
        assert runtime.catalog.count() == 0
    assert (tmp_path / "secret-catalog.db").exists()
