"""Secret settings from Prefect Secret blocks: ``KUP_CATALOG_URL=prefect-secret:<block>`` and the like."""

from __future__ import annotations

import pytest

from errors import ConfigError
from flows.settings import load_settings


@pytest.mark.usefixtures("prefect_harness")
def test_a_setting_can_name_a_secret_block(monkeypatch, tmp_path) -> None:
    from prefect.blocks.system import Secret

    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    Secret(value=url).save("kup-test-catalog-url", overwrite=True)
    Secret(value="qdrant-key-from-a-block").save("kup-test-qdrant-key", overwrite=True)
    monkeypatch.setenv("KUP_CATALOG_URL", "prefect-secret:kup-test-catalog-url")
    monkeypatch.setenv("KUP_QDRANT_API_KEY", "prefect-secret:kup-test-qdrant-key")
    settings = load_settings()
    assert settings.secret("catalog_url") == url
    assert settings.secret("qdrant_api_key") == "qdrant-key-from-a-block"
    assert "qdrant-key-from-a-block" not in repr(settings)  # the reference is what the settings hold
    assert settings.secret("dask_address") is None


@pytest.mark.usefixtures("prefect_harness")
def test_the_api_key_can_name_a_secret_block_too(monkeypatch) -> None:
    """`kup api` guards with, and `kup search` sends, the block's value, never the reference as the key."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from prefect.blocks.system import Secret

    from cli.api_client import find_api

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps({"ok": True}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    Secret(value="api-k3y-from-a-block").save("kup-test-api-key", overwrite=True)
    monkeypatch.setenv("KUP_API_KEY", "prefect-secret:kup-test-api-key")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("KUP_API_URL", f"http://127.0.0.1:{server.server_address[1]}")
        settings = load_settings()
        assert settings.secret("api_key") == "api-k3y-from-a-block"
        assert find_api(settings).headers == {"X-API-Key": "api-k3y-from-a-block"}  # not "prefect-secret:..."
    finally:
        server.shutdown()


@pytest.mark.usefixtures("prefect_harness")
def test_a_missing_block_is_one_sentence_naming_the_setting(monkeypatch) -> None:
    monkeypatch.setenv("KUP_DASK_ADDRESS", "prefect-secret:no-such-block")
    with pytest.raises(ConfigError) as caught:
        load_settings().secret("dask_address")
    message = str(caught.value)
    assert message.startswith("KUP_DASK_ADDRESS refers to the Prefect Secret block 'no-such-block', which does not")
    assert "\n" not in message


def test_without_a_prefect_server_the_reference_is_explained(monkeypatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("KUP_CATALOG_URL", "prefect-secret:kup-catalog-url")
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}), pytest.raises(ConfigError, match="PREFECT_API_URL"):
        load_settings().secret("catalog_url")
