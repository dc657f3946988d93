"""Qdrant cluster settings: validated up front, applied when a collection is created (the live one and every
rebuild's), and a server's refusal told as one sentence naming the setting.

Without ``KUP_TEST_QDRANT_URL`` the creation requests go to a small HTTP server speaking the part of Qdrant's REST
API that collection creation uses (local mode has no cluster and ignores the settings): it records what kup sends
and refuses a collection the way a server does, with a 400 and its reason.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from errors import ConfigError
from flows.settings import load_settings
from indexing.qdrant_store import Cluster, QdrantStore
from tests.indexing.conftest import QDRANT_URL


class QdrantStandIn(ThreadingHTTPServer):
    """Collection creation as a Qdrant server answers it: exists, create, payload index, aliases."""

    def __init__(self, refuse: str | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.refuse = refuse
        self.created: dict[str, dict] = {}
        self.aliases: dict[str, str] = {}
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self.shutdown()
        super().__exit__(*exc)


class _Handler(BaseHTTPRequestHandler):
    server: QdrantStandIn

    def log_message(self, *args) -> None:
        pass

    def _reply(self, result, status: int = 200) -> None:
        body = json.dumps(
            {"result": result, "status": "ok", "time": 0.0}
            if status == 200
            else {"status": {"error": result}, "time": 0.0}
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")

    def do_GET(self) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts == [""]:
            self._reply({"title": "qdrant - vector search engine", "version": "1.15.0"})
        elif parts[0] == "collections" and parts[-1] == "exists":
            self._reply({"exists": parts[1] in self.server.created or parts[1] in self.server.aliases})
        elif parts == ["aliases"]:
            aliases = [{"alias_name": a, "collection_name": c} for a, c in self.server.aliases.items()]
            self._reply({"aliases": aliases})
        else:
            self._reply(f"Not found: {self.path}", 404)

    def do_PUT(self) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        body = self._body()
        if len(parts) == 2 and parts[0] == "collections":
            if self.server.refuse:
                self._reply(self.server.refuse, 400)
                return
            self.server.created[parts[1]] = body
            self._reply(True)
        elif parts[-1] == "index":
            self._reply({"operation_id": 1, "status": "completed"})
        else:
            self._reply(f"Not found: {self.path}", 404)

    def do_POST(self) -> None:
        if self.path.split("?")[0] == "/collections/aliases":
            for action in self._body()["actions"]:
                if "create_alias" in action:
                    self.server.aliases[action["create_alias"]["alias_name"]] = action["create_alias"][
                        "collection_name"
                    ]
                elif "delete_alias" in action:
                    self.server.aliases.pop(action["delete_alias"]["alias_name"], None)
            self._reply(True)
        else:
            self._reply(f"Not found: {self.path}", 404)


def test_cluster_settings_are_checked_with_one_sentence_naming_the_setting(monkeypatch) -> None:
    with pytest.raises(ConfigError) as caught:
        Cluster(replication_factor=2, write_consistency_factor=3)
    assert str(caught.value).startswith("KUP_QDRANT_WRITE_CONSISTENCY_FACTOR (3) must not exceed")
    with pytest.raises(ConfigError, match="KUP_QDRANT_WRITE_CONSISTENCY_FACTOR"):
        Cluster(write_consistency_factor=2)  # one copy unless a replication factor says more
    with pytest.raises(ConfigError, match="^KUP_QDRANT_SHARDS must be a whole number"):
        Cluster(shard_number=0)
    monkeypatch.setenv("KUP_QDRANT_REPLICATION_FACTOR", "0")
    with pytest.raises(ConfigError, match="KUP_QDRANT_REPLICATION_FACTOR"):
        load_settings()
    monkeypatch.setenv("KUP_QDRANT_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("KUP_QDRANT_SHARDS", "4")
    settings = load_settings()
    assert (settings.qdrant_shards, settings.qdrant_replication_factor) == (4, 3)


def test_settings_are_applied_to_the_live_collection_and_every_rebuild() -> None:
    cluster = Cluster(shard_number=4, replication_factor=3, write_consistency_factor=2)
    with QdrantStandIn() as server:
        store = QdrantStore(server.url, "kup", cluster=cluster, timeout=5)
        with store.session():
            pass
        staging = store.staging()
        store.close()
    assert len(server.created) == 2 and server.aliases["kup"].startswith("kup-")
    for name, body in server.created.items():
        assert name.startswith("kup-")
        assert (body["shard_number"], body["replication_factor"], body["write_consistency_factor"]) == (4, 3, 2)
    assert staging.cluster == cluster


def test_a_server_refusing_a_setting_is_one_sentence_naming_it() -> None:
    reason = "Bad request: Replication factor 3 is greater than the number of peers (2) in the cluster"
    with QdrantStandIn(refuse=reason) as server:
        store = QdrantStore(server.url, "kup", cluster=Cluster(shard_number=2, replication_factor=3), timeout=5)
        with pytest.raises(ConfigError) as caught:
            store.count()
        store.close()
    message = str(caught.value)
    assert "KUP_QDRANT_REPLICATION_FACTOR=3" in message and "number of peers (2)" in message
    assert "KUP_QDRANT_SHARDS" not in message and "\n" not in message
    assert message.endswith("change KUP_QDRANT_REPLICATION_FACTOR")


def test_a_refusal_that_names_no_setting_blames_the_ones_set() -> None:
    with QdrantStandIn(refuse="Bad request: Shard count exceeds the limit of this cluster") as server:
        store = QdrantStore(server.url, "kup", cluster=Cluster(shard_number=900), timeout=5)
        with pytest.raises(ConfigError, match="KUP_QDRANT_SHARDS=900"):
            store.count()
        store.close()


@pytest.mark.skipif(not QDRANT_URL, reason="needs a Qdrant server: set KUP_TEST_QDRANT_URL")
def test_a_real_server_keeps_the_settings(qdrant_store) -> None:
    store = qdrant_store(cluster=Cluster(shard_number=2, replication_factor=1, write_consistency_factor=1))
    assert store.count() == 0
    params = store.client.get_collection(store.collection).config.params
    assert (params.shard_number, params.replication_factor, params.write_consistency_factor) == (2, 1, 1)
