"""The API against hostile callers, over real HTTP: forged hosts, missing keys, huge bodies, floods, junk input."""

from __future__ import annotations

import json
import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import pytest

from answering import Answerer, LanguageModel
from answering.api import create_app
from answering.api_guards import ApiGuards, check_binding, is_loopback
from errors import ConfigError
from indexing import QdrantStore
from tests.answering.test_api import serving, serving_app

KEY = "k3y-0f-the-api-7f2c"


def raw(url: str, head: str, body: bytes = b"", *, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` (request line and headers, no blank line) and ``body`` as is; the status, headers and body."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed before a response: {data!r}"
            data += chunk
        header_block, _, rest = data.partition(b"\r\n\r\n")
        lines = header_block.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return int(lines[0].split()[1]), headers, rest


@pytest.fixture
def searcher(filled, dense, sparse, tmp_path) -> Answerer:
    return Answerer(filled, dense, sparse, LanguageModel(tmp_path / "data", None))  # /search never generates


def test_a_forged_host_header_is_refused(searcher) -> None:
    with serving(searcher, ApiGuards(allowed_hosts=["kup.internal"])) as url:
        port = urlsplit(url).port
        body = json.dumps({"query": "harbour"}).encode()
        post = f"POST /search HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "KUP.internal"):
            assert raw(url, f"{post}\r\nHost: {host}", body)[0] == 200, host
        for host in ("attacker.example", f"attacker.example:{port}", "kup.internal.attacker.example", "[::2]"):
            status, _, answer = raw(url, f"{post}\r\nHost: {host}", body)
            assert status == 400 and b"KUP_API_ALLOWED_HOSTS" in answer, host
        assert raw(url, "GET /health HTTP/1.0")[0] == 400  # no Host at all


def test_every_endpoint_but_health_needs_the_key(searcher) -> None:
    with serving(searcher, ApiGuards(api_key=KEY)) as url:
        assert httpx.get(f"{url}/health").status_code == 200
        body = {"query": "harbour pier"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": KEY[:-1]}, {"Authorization": KEY}):
            refused = httpx.post(f"{url}/search", json=body, headers=headers)
            assert refused.status_code == 401, headers
            assert refused.headers["www-authenticate"].startswith("Bearer") and KEY not in refused.text
        for path in ("/docs", "/openapi.json", "/ask"):
            assert httpx.get(f"{url}{path}").status_code == 401, path
        assert httpx.post(f"{url}/search", json=body, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert httpx.post(f"{url}/search", json=body, headers={"X-API-Key": KEY}).status_code == 200


def test_listening_beyond_this_machine_needs_a_key() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"):
        assert is_loopback(host)
        check_binding(host, None)
    for host in ("0.0.0.0", "::", "192.168.1.10", "kup.example.com"):
        assert not is_loopback(host)
        with pytest.raises(ConfigError, match="KUP_API_KEY"):
            check_binding(host, None)
        check_binding(host, KEY)


def test_a_large_body_is_refused_before_it_is_read(searcher) -> None:
    with serving(searcher, ApiGuards(max_body_bytes=64 * 1024)) as url:
        host = f"Host: 127.0.0.1:{urlsplit(url).port}\r\nContent-Type: application/json"
        # Announced: 30 MB that never come; the answer does not wait for them.
        started = time.monotonic()
        status, _, answer = raw(url, f"POST /search HTTP/1.1\r\n{host}\r\nContent-Length: {30 * 2**20}")
        assert status == 413 and len(answer) < 200 and time.monotonic() - started < 5
        # Unannounced: a chunked body that outgrows the limit and never ends; it is counted as it arrives.
        chunk = b'{"query": "' + b"A" * 16_000
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(8))  # 128 KB, no final chunk
        status, _, answer = raw(url, f"POST /search HTTP/1.1\r\n{host}\r\nTransfer-Encoding: chunked", chunks)
        assert status == 413 and b"larger than 65536 bytes" in answer and b"AAAA" not in answer
        # Under the limit, a chunked body is served as usual.
        small = b'{"query": "harbour pier"}'
        status, _, answer = raw(
            url,
            f"POST /search HTTP/1.1\r\n{host}\r\nTransfer-Encoding: chunked",
            b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small),
        )
        assert status == 200 and b"Harbour reopens" in answer


def test_validation_errors_name_the_field_but_never_echo_the_input(searcher) -> None:
    with serving(searcher) as url:
        long_query = "Z" * 60_000
        refused = httpx.post(f"{url}/search", json={"query": long_query, "limit": "many"})
        assert refused.status_code == 422 and len(refused.content) < 1000
        assert "ZZZZZZZZZZ" not in refused.text and "many" not in refused.text
        locations = [problem["loc"] for problem in refused.json()["detail"]]
        assert ["body", "query"] in locations and ["body", "limit"] in locations


def test_asks_beyond_the_queue_get_503_with_retry_after_at_once(answerer) -> None:
    app = create_app(answerer, ApiGuards(generate_at_once=1, generate_waiting=1))
    gate = app.state.generation_gate
    release = threading.Event()
    holding = threading.Event()

    def hold_the_only_slot() -> None:
        with gate.admit():
            holding.set()
            release.wait(60)

    waited: list[httpx.Response] = []
    with serving_app(app) as url:
        holder = threading.Thread(target=hold_the_only_slot)
        holder.start()
        assert holding.wait(10)
        waiter = threading.Thread(
            target=lambda: waited.append(httpx.post(f"{url}/ask", json={"question": "Harbour?"}, timeout=120))
        )
        waiter.start()
        deadline = time.monotonic() + 10
        while gate.admitted < 2:
            assert time.monotonic() < deadline, "the second /ask never queued"
            time.sleep(0.02)
        started = time.monotonic()
        busy = httpx.post(f"{url}/ask", json={"question": "Pier?"}, timeout=30)
        assert busy.status_code == 503 and time.monotonic() - started < 3
        assert int(busy.headers["retry-after"]) > 0 and "retry" in busy.json()["detail"]
        assert not waited  # still queued behind the held slot
        release.set()
        holder.join(10)
        waiter.join(120)
        assert waited and waited[0].status_code == 200 and waited[0].json()["question"] == "Harbour?"
        assert gate.admitted == 0


BAD_SEARCHES = [
    {},
    {"query": ""},
    {"query": None},
    {"query": 42},
    {"query": ["a"]},
    {"query": {"$ne": 1}},
    {"query": "x" * 2001},
    {"query": "\ud800 lone surrogate"},
    {"query": "x", "limit": 0},
    {"query": "x", "limit": -1},
    {"query": "x", "limit": 10**30},
    {"query": "x", "limit": 1e308},
    {"query": "x", "limit": "1e6"},
    {"query": "x", "limit": 2.5},
    {"query": "x", "recent_days": 1e6},
    {"query": "x", "recent_days": -0.0},
    {"query": "x", "recent_days": "soon"},
    {"query": "x", "recent_days": [1]},
    {"query": "x", "sources": "news"},
    {"query": "x", "sources": [""]},
    {"query": "x", "sources": [1, 2]},
    {"query": "x", "sources": [None]},
    {"query": "x", "sources": ["s" * 201]},
    {"query": "x", "sources": ["news"] * 101},
    {"query": "x", "sources": ["\udfff"]},
    {"query": "x", "recent": 7},
]
BAD_ASKS = [
    {},
    {"question": ""},
    {"question": True},
    {"question": "x" * 8001},
    {"question": "\udc00"},
    {"question": "x", "mode": "oracle"},
    {"question": "x", "mode": None},
    {"question": "x", "mode": ["prompt"]},
    {"question": "x", "k": 0},
    {"question": "x", "k": 21},
    {"question": "x", "k": -(10**40)},
    {"question": "x", "k": "five"},
    {"question": "x", "recent_days": 1e6},
    {"question": "x", "recent_days": 0},
    {"question": "x", "sources": {"a": 1}},
    {"question": "x", "sources": [[]]},
    {"question": "x", "temperature": 9},
]
RAW_BODIES = [
    b"",
    b"not json",
    b"[]",
    b"null",
    b'"a string"',
    b"123",
    b'{"query": NaN}',
    b'{"query": "x", "recent_days": NaN}',
    b'{"query": "x", "recent_days": Infinity}',
    b'{"question": "x", "recent_days": -Infinity}',
    b'{"query": "x", "limit": 1' + b"0" * 5000 + b"}",
    b"[" * 30_000 + b"]" * 30_000,
    b'{"query": "\xff\xfe"}',
    b'{"query": "x"',
    b'\x00\x01{"query": "x"}',
]


@pytest.mark.parametrize("path", ["/search", "/ask"])
def test_no_input_is_a_server_error(answerer, path) -> None:
    bodies = [json.dumps(b).encode() for b in (BAD_SEARCHES if path == "/search" else BAD_ASKS)] + RAW_BODIES
    with serving(answerer) as url:
        for body in bodies:
            answer = httpx.post(f"{url}{path}", content=body, headers={"Content-Type": "application/json"}, timeout=60)
            assert 400 <= answer.status_code < 500, (body[:80], answer.status_code, answer.text[:200])
            assert len(answer.content) < 3000, body[:80]
        assert httpx.post(f"{url}{path}", content=b"query=x", timeout=30).status_code < 500  # a form, not JSON


def test_qdrant_credentials_never_reach_an_api_response(dense, sparse, tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = QdrantStore(f"http://kup:hunter2-pass@127.0.0.1:{port}", "kup", api_key="qdrant-key-77", timeout=2)
    with serving(Answerer(store, dense, sparse, LanguageModel(tmp_path / "data", None))) as url:
        down = httpx.post(f"{url}/search", json={"query": "harbour"}, timeout=30)
    detail = down.json()["detail"]
    assert down.status_code == 503 and "Qdrant" in detail and f"127.0.0.1:{port}" in detail
    assert "hunter2" not in down.text and "qdrant-key-77" not in down.text


def test_kup_api_refuses_a_public_address_without_a_key(tmp_path) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    env = {"KUP_DATA_DIR": str(tmp_path / "data"), "KUP_API_KEY": ""}
    refused = CliRunner().invoke(app, ["api", "--host", "0.0.0.0", "--port", "1"], env=env, catch_exceptions=False)
    assert refused.exit_code == 2 and "KUP_API_KEY" in refused.output and "Traceback" not in refused.output
    assert len(refused.output.strip().splitlines()) <= 2  # one sentence (the console may wrap it once)


def test_kup_status_masks_the_qdrant_credentials(tmp_path) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        "KUP_DATA_DIR": str(tmp_path / "data"),
        "KUP_SOURCES_FILE": str(tmp_path / "sources.yaml"),
        "KUP_QDRANT_URL": f"http://kup:hunter2-pass@127.0.0.1:{port}",
        "KUP_QDRANT_API_KEY": "qdrant-key-77",
    }
    shown = CliRunner().invoke(app, ["status"], env=env, catch_exceptions=False)
    assert f"127.0.0.1:{port}" in shown.output
    assert "hunter2" not in shown.output and "qdrant-key-77" not in shown.output
