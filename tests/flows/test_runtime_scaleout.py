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
    # Plain tcp to another machine: whoever joins that cluster runs code here, so it takes the operator's word.
    with Runtime(load_settings()) as runtime, pytest.raises(ConfigError, match="KUP_DASK_ALLOW_PLAINTEXT=true"):
        runtime.fanout  # noqa: B018
    monkeypatch.setenv("KUP_DASK_ALLOW_PLAINTEXT", "true")
    with Runtime(load_settings()) as runtime:
        fanout = runtime.indexer.fanout
        assert fanout is runtime.fanout and fanout.address == "tcp://dask.internal:8786"
        assert fanout.unreachable == "in-process" and fanout.recipe.chunk_tokens == runtime.settings.chunk_tokens
    monkeypatch.delenv("KUP_DASK_ADDRESS")
    monkeypatch.setenv("KUP_DASK_WORKERS", "3")
    with Runtime(load_settings()) as runtime:
        assert runtime.indexer.fanout.workers == 3 and runtime.indexer.fanout.address is None


def _self_signed() -> tuple[str, str]:
    """A certificate (its own CA) and its key, as PEM text."""
    from distributed.security import Security

    made = Security.temporary()
    return made.tls_client_cert, made.tls_client_key


@pytest.mark.usefixtures("pipeline_env")
def test_a_tls_scheduler_takes_kups_certificate_from_files(monkeypatch, tmp_path) -> None:
    cert, key = _self_signed()
    files = {"CA": tmp_path / "ca.pem", "CERT": tmp_path / "kup.pem", "KEY": tmp_path / "kup.key"}
    for name, text in (("CA", cert), ("CERT", cert), ("KEY", key)):
        files[name].write_text(text)
    monkeypatch.setenv("KUP_DASK_ADDRESS", "tls://dask.internal:8786")
    with Runtime(load_settings()) as runtime, pytest.raises(ConfigError) as caught:
        runtime.fanout  # noqa: B018
    assert str(caught.value) == (
        "KUP_DASK_ADDRESS tls://dask.internal:8786 uses TLS, so set KUP_DASK_TLS_CA, KUP_DASK_TLS_CERT and "
        "KUP_DASK_TLS_KEY to kup's certificate"
    )
    monkeypatch.setenv("KUP_DASK_TLS_CA", str(files["CA"]))
    monkeypatch.setenv("KUP_DASK_TLS_CERT", str(files["CERT"]))
    with Runtime(load_settings()) as runtime, pytest.raises(ConfigError, match="set KUP_DASK_TLS_KEY too$"):
        runtime.fanout  # noqa: B018
    monkeypatch.setenv("KUP_DASK_TLS_KEY", str(files["KEY"]))
    with Runtime(load_settings()) as runtime:
        security = runtime.fanout.security
        assert security.require_encryption
        assert (security.tls_ca_file, security.tls_client_cert, security.tls_client_key) == tuple(
            str(files[name]) for name in ("CA", "CERT", "KEY")
        )


@pytest.mark.usefixtures("pipeline_env", "prefect_harness")
def test_the_tls_certificate_and_key_can_live_in_secret_blocks(monkeypatch) -> None:
    """The blocks hold the PEM text; it stays in memory, unprinted, and opens a real TLS cluster."""
    from distributed import LocalCluster
    from distributed.security import Security
    from prefect.blocks.system import Secret

    cluster_security = Security.temporary()  # one self-signed certificate, its own CA, for every role
    cert, key = cluster_security.tls_client_cert, cluster_security.tls_client_key
    for block, text in (("kup-test-dask-ca", cert), ("kup-test-dask-cert", cert), ("kup-test-dask-key", key)):
        Secret(value=text).save(block, overwrite=True)
        monkeypatch.setenv(f"KUP_DASK_TLS_{block.rsplit('-', 1)[1].upper()}", f"prefect-secret:{block}")
    with LocalCluster(
        n_workers=1, processes=False, host="127.0.0.1", security=cluster_security, dashboard_address=None
    ) as cluster:
        monkeypatch.setenv("KUP_DASK_ADDRESS", cluster.scheduler_address)
        with Runtime(load_settings()) as runtime:
            security = runtime.fanout.security
            assert (security.tls_ca_file, security.tls_client_cert, security.tls_client_key) == (cert, cert, key)
            assert key not in repr(security)
            assert runtime.fanout.worker_count == 1  # the TLS handshake with the blocks' certificate went through


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
