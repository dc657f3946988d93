"""A quick CLI: `kup search` and `kup status` as shell commands load no heavy library, and ask a running `kup api`.

Each command runs as a user runs it (``python -m cli.main`` in a fresh process) under ``-X importtime``,
whose report lists every module the process imported. No wall-clock bound is asserted: what makes the
command slow on a cold start is what it imports and loads, and that is what these tests pin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from cli import api_client
from connectors import Document
from fixtures.kup_up import free_port
from flows.settings import load_settings
from indexing import Catalog, Chunker, DenseEncoder, EdgeStore, Indexer

ROOT = Path(__file__).resolve().parents[2]
HEAVY = {"prefect", "torch", "great_expectations", "transformers", "sentence_transformers", "trafilatura"}
ARTICLES = [
    ("Harbour reopens", "The Veltmark harbour reopened on 14 March after a storm destroyed its northern pier."),
    ("Brask elected", "Mayor Odile Brask won the Veltmark election with 61 percent of the vote."),
    ("Cable car opens", "A cable car replaced the Ryne ferry and crosses the estuary in four minutes."),
]


@pytest.fixture
def data_dir(tmp_path, sparse) -> Path:
    """A data dir with three indexed articles, its ONNX export made (a user's first search would make it)."""
    data = tmp_path / "data"
    dense = DenseEncoder(backend="onnx-int8", cache_dir=data / "models" / "onnx")
    catalog = Catalog(f"sqlite:///{data / 'catalog.db'}")
    catalog.upsert_documents(
        Document(
            source="news",
            external_id=f"a{i}",
            text=f"{text} {text}",
            title=title,
            url=f"https://news.example.com/{i}",
            published_at=datetime(2026, 11, 1 + i, tzinfo=UTC),
            language="en",
        )
        for i, (title, text) in enumerate(ARTICLES)
    )
    Indexer(catalog, EdgeStore(data / "index" / "kup"), Chunker(dense.tokenize), dense, sparse).run()
    catalog.close()
    (tmp_path / "sources.yaml").write_text("sources:\n  - name: news\n    url: https://news.example.com/feed\n")
    return data


def environment(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUP_", "PREFECT_"))}
    env |= {"KUP_DATA_DIR": str(data), "KUP_SOURCES_FILE": str(data.parent / "sources.yaml")}
    env |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "KUP_API_URL": "off", **extra}
    return env


def kup(data: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """``kup ARGS`` in a fresh process, and the top-level packages it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cli.main", *args],
        cwd=ROOT,
        env=environment(data, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return done, imported


def test_search_and_status_load_no_heavy_library(data_dir) -> None:
    done, imported = kup(data_dir, "search", "When did the harbour reopen?", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    hits = json.loads(done.stdout)["hits"]
    assert hits[0]["title"] == "Harbour reopens"
    assert "onnxruntime" in imported and imported & HEAVY == set()  # the query was embedded here, without torch

    done, imported = kup(data_dir, "status", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    [news] = json.loads(done.stdout)["sources"]
    assert news["by_status"] == {"indexed": 3}
    assert imported & (HEAVY | {"onnxruntime", "feedparser"}) == set()


@pytest.fixture
def api_server(data_dir, tiny_model_dir):
    """A real `kup api` process on a free port, answering with the tiny model."""
    port = free_port()
    env = environment(data_dir, KUP_BASE_MODEL=str(tiny_model_dir), KUP_MAX_NEW_TOKENS="8")
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "api", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("kup api did not answer within 120 s")
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.mark.slow
def test_search_and_ask_use_a_running_api_and_fall_back_when_it_stops(data_dir, api_server, monkeypatch) -> None:
    local, _ = kup(data_dir, "search", "harbour reopened", "--json")
    via_api, imported = kup(data_dir, "search", "harbour reopened", "--json", KUP_API_URL=api_server)
    assert via_api.returncode == 0, via_api.stderr[-2000:]
    assert "onnxruntime" not in imported and imported & HEAVY == set()  # no model loaded: the server answered
    keys = ("title", "url", "text", "source", "chunk_index")
    assert [{k: h[k] for k in keys} for h in json.loads(via_api.stdout)["hits"]] == [
        {k: h[k] for k in keys} for h in json.loads(local.stdout)["hits"]
    ]

    asked, imported = kup(data_dir, "ask", "When did the harbour reopen?", "--json", KUP_API_URL=api_server)
    assert asked.returncode == 0, asked.stderr[-2000:]
    answer = json.loads(asked.stdout)
    assert answer["question"] == "When did the harbour reopen?" and answer["mode"] == "prompt"
    assert "timings" in answer and "torch" not in imported and "transformers" not in imported

    # Without KUP_API_URL, the default address is used only when it serves this same index.
    monkeypatch.setattr(api_client, "DEFAULT_URL", api_server)
    mine = load_settings(data_dir=data_dir, api_url=None)
    assert api_client.find_api(mine) is not None  # it proved it holds this data directory's identity
    assert api_client.find_api(load_settings(data_dir=data_dir.parent / "other", api_url=None)) is None
    assert (data_dir / api_client.IDENTITY_FILE).stat().st_mode & 0o077 == 0  # owner-only

    # Anyone may listen on the default port and repeat this index's pipeline id (/health shows it to all): such a
    # server cannot prove the identity, so it gets neither the key nor a question.
    seen: list[tuple[str, dict]] = []

    class Impostor(BaseHTTPRequestHandler):
        def _answer(self, body: dict) -> None:
            seen.append((self.path, dict(self.headers)))
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            self._answer({"ok": True, "pipeline": api_client.pipeline_id(mine), "proof": "0" * 64})

        def do_POST(self) -> None:  # noqa: N802
            self._answer({"query": "x", "hits": [], "search_ms": 1})

        def log_message(self, *args) -> None:
            pass

    impostor = ThreadingHTTPServer(("127.0.0.1", 0), Impostor)
    threading.Thread(target=impostor.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(api_client, "DEFAULT_URL", f"http://127.0.0.1:{impostor.server_address[1]}")
        keyed = load_settings(data_dir=data_dir, api_url=None, api_key="k3y-for-the-real-server")
        assert api_client.find_api(keyed) is None
    finally:
        impostor.shutdown()
    assert seen and all(path.startswith("/health") for path, _ in seen)  # only asked to prove itself
    assert not any("k3y-for-the-real-server" in str(headers) for _, headers in seen)

    stopped = api_server.rsplit(":", 1)[0] + f":{free_port()}"  # nothing listens there
    fallback, imported = kup(data_dir, "search", "harbour reopened", "--json", KUP_API_URL=stopped)
    assert fallback.returncode == 0 and json.loads(fallback.stdout)["hits"][0]["title"] == "Harbour reopens"
    assert "onnxruntime" in imported and f"no kup api answers at {stopped}" in fallback.stderr
