"""Half-sent requests against the real server: connections that drip their headers are closed, a keyed client is served.

Each test opens real sockets to kup's app under uvicorn as `kup api` configures it (``answering.http_server``):
in this process for the deadline and the bounds, and as a `kup api` process with a low open-file limit for the
attack that used to leave it unable to accept anyone.
"""

from __future__ import annotations

import os
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from answering import Answerer, LanguageModel
from answering.api import create_app
from answering.api_guards import ApiGuards
from answering.http_server import ServerLimits, server_config
from fixtures.kup_up import free_port
from indexing import DenseEncoder, EdgeStore, SparseEncoder
from tests.answering.test_api import serving_app

ROOT = Path(__file__).resolve().parents[2]
KEY = "k3y-0f-the-api-5l0w"
KEYED = {"X-API-Key": KEY}
HALF_REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4000  # never ends


@dataclass
class Dripper:
    sock: socket.socket
    opened: float  # when it began to wait for its request's headers
    sent: int = 0
    closed: float | None = None  # when the server closed it


@dataclass
class Drippers:
    """``count`` connections, each sending one more byte of a request every ``every`` seconds until the server closes
    it; ``kept`` more send a whole request first and drip the next one on the kept-alive connection. With
    ``reopen``, a closed one is replaced ``every`` seconds later, as an attacker would."""

    port: int
    count: int
    every: float = 0.5
    kept: int = 0
    spacing: float = 0.0  # seconds between opening one and the next
    reopen: bool = False
    opened: list[Dripper] = field(default_factory=list, repr=False)
    live: list[Dripper] = field(default_factory=list, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _reopen: deque[float] = field(default_factory=deque, repr=False)  # when to replace those closed

    def __enter__(self) -> Drippers:
        self._selector = selectors.DefaultSelector()
        for _ in range(self.kept):
            self._open(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for _ in range(self.count):
            if not self._open() and self.reopen:
                self._reopen.append(time.monotonic())
            time.sleep(self.spacing)
        self._thread = threading.Thread(target=self._drip, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for d in self.live:
            d.sock.close()
        self._selector.close()

    def _open(self, head: bytes = b"", timeout: float = 1) -> bool:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        except OSError:
            return False  # the accept queue is full: the next turn tries again
        sock.setblocking(False)
        dripper = Dripper(sock, time.monotonic(), sent=-1 if head else 0)  # -1: its response is still to come
        if head:
            sock.sendall(head)
        self.opened.append(dripper)
        self.live.append(dripper)
        self._selector.register(sock, selectors.EVENT_READ, dripper)
        return True

    def _drip(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.02):
                d = key.data
                try:
                    if d.sock.recv(65536):
                        d.opened, d.sent = time.monotonic(), 0  # answered: the next request's wait begins
                        continue
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                self._closed(d)
            now = time.monotonic()
            for d in list(self.live):
                if d.sent >= 0 and now >= d.opened + d.sent * self.every:
                    try:
                        d.sock.send(HALF_REQUEST[d.sent : d.sent + 1])
                        d.sent += 1
                    except OSError:
                        self._closed(d)
            while self._reopen and self._reopen[0] <= now and self._open(timeout=0.05):
                self._reopen.popleft()  # (a full accept queue refuses it: tried again next turn)

    def _closed(self, dripper: Dripper) -> None:
        dripper.closed = time.monotonic()
        self._selector.unregister(dripper.sock)
        dripper.sock.close()
        self.live.remove(dripper)
        if self.reopen:
            self._reopen.append(dripper.closed + self.every)


@pytest.fixture
def app(tmp_path):
    """kup's app with a key; the encoders load on first use, which /health and /openapi.json never make."""
    store = EdgeStore(tmp_path / "index" / "kup")
    answerer = Answerer(store, DenseEncoder(), SparseEncoder(), LanguageModel(tmp_path / "data", None))
    return create_app(answerer, ApiGuards(api_key=KEY))


@contextmanager
def serving(app, limits: ServerLimits) -> Iterator[int]:
    """uvicorn configured as `kup api` configures it, on a free port; the port."""
    with serving_app(app, lambda port: server_config(app, "127.0.0.1", port, limits)) as url:
        yield int(url.rsplit(":", 1)[1])


def wait_until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_connections_that_drip_their_headers_are_closed_at_the_deadline(app) -> None:
    timeout, slack = 2.0, 2.0
    limits = ServerLimits(header_timeout=timeout, max_connections=2048)  # 1,024 may wait: the deadline closes them
    with serving(app, limits) as port, Drippers(port, 300, kept=5) as attack:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=KEYED, timeout=5) as client:
            assert client.get("/openapi.json").status_code == 200  # served while they drip
        wait_until(lambda: not attack.live, timeout + slack + 1)
        waited = [d.closed - d.opened for d in attack.opened if d.closed is not None]

    assert len(attack.opened) == 305 and len(waited) == 305, f"{305 - len(waited)} still open after {timeout} s"
    assert max(waited) < timeout + slack and min(waited) > timeout - 1.0  # closed by the deadline, not before it
    assert min(d.sent for d in attack.opened) >= 3  # each kept dripping: a wait between bytes never ran out


def test_the_connection_waiting_longest_makes_room_and_a_keyed_client_is_served(app) -> None:
    limits = ServerLimits(header_timeout=60, max_connections=40)  # 20 may wait for their headers
    with serving(app, limits) as port, Drippers(port, 30, spacing=0.01) as attack:
        wait_until(lambda: len(attack.live) <= 20, 5)
        assert [d.closed is None for d in attack.opened] == [False] * 10 + [True] * 20  # the oldest went
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=KEYED, timeout=5) as client:
            started = time.monotonic()
            assert client.get("/openapi.json").status_code == 200
            assert client.get("/health").status_code == 200
            assert time.monotonic() - started < 2
        wait_until(lambda: len(attack.live) <= 19, 5)
        assert [d.closed is None for d in attack.opened] == [False] * 11 + [True] * 19


def test_a_client_between_two_requests_on_its_connection_is_not_pushed_out_by_new_ones(app) -> None:
    limits = ServerLimits(header_timeout=60, max_connections=40)  # 20 may wait for their headers
    request = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {KEY}\r\n\r\n".encode()
    with serving(app, limits) as port, socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(request)
        assert whole_response(client).startswith(b"HTTP/1.1 200 ")  # served, and kept alive for the next request
        with Drippers(port, 30, spacing=0.01) as attack:  # more new connections than may wait
            wait_until(lambda: len(attack.live) <= 19, 5)
            assert [d.closed is None for d in attack.opened] == [False] * 11 + [True] * 19  # the new ones made room
            client.sendall(request)  # the same connection, after all of them arrived
            assert whole_response(client).startswith(b"HTTP/1.1 200 ")


def whole_response(sock: socket.socket) -> bytes:
    """One HTTP response read to its last byte (headers and a Content-Length body may arrive in separate segments,
    and a body left unread would be taken for the next response)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"closed before the headers ended: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    while len(body) < int(lengths[0]):
        chunk = sock.recv(4096)
        assert chunk, "closed before the body ended"
        body += chunk
    return head + b"\r\n\r\n" + body


def test_beyond_the_connection_limit_a_new_connection_gets_503_at_once(app) -> None:
    limits = ServerLimits(header_timeout=60, max_connections=16)
    post = f"POST /search HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {KEY}\r\nContent-Length: 100\r\n\r\n"
    with serving(app, limits) as port:
        busy = []
        try:
            for _ in range(16):  # headers in, the body never comes: each holds a request open
                busy.append(socket.create_connection(("127.0.0.1", port), timeout=5))
                busy[-1].sendall(post.encode())
                time.sleep(0.02)
            time.sleep(0.5)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as extra:
                started = time.monotonic()
                answer = whole_response(extra)
                assert answer.startswith(b"HTTP/1.1 503 ") and time.monotonic() - started < 2
                assert extra.recv(4096) == b""  # and closed
        finally:
            for sock in busy:
                sock.close()


@contextmanager
def kup_api(tmp_path: Path, open_files: tuple[int, int], **env: str) -> Iterator[tuple[int, subprocess.Popen]]:
    """A real `kup api` process with a key, an empty data dir and this open-file limit (soft, hard)."""
    port = free_port()
    log = (tmp_path / "kup-api.log").open("w")
    (tmp_path / "sources.yaml").write_text("sources:\n  - name: news\n    url: https://news.example.com/feed\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KUP_", "PREFECT_"))}
    environ |= {"KUP_DATA_DIR": str(tmp_path / "data"), "KUP_SOURCES_FILE": str(tmp_path / "sources.yaml")}
    environ |= {"KUP_API_URL": "off", "KUP_API_KEY": KEY, "HF_HUB_OFFLINE": "1", **env}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "api", "--port", str(port)],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=log,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, open_files),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "kup-api.log").read_text()
            assert time.monotonic() < deadline, "kup api did not answer within 60 s"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield port, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the server's open files from /proc")
def test_a_keyed_client_is_served_while_hundreds_drip_at_a_low_open_file_limit(tmp_path) -> None:
    # A hard limit of 256 too, so the server cannot raise its way out: the connection cap has to hold.
    with kup_api(tmp_path, (256, 256)) as (port, process):
        with Drippers(port, 320, reopen=True) as attack:
            wait_until(lambda: len(attack.opened) >= 400, 10)  # the server keeps closing them; they come back
            slowest, served = 0.0, 0
            until = time.monotonic() + 8
            while time.monotonic() < until:
                started = time.monotonic()
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=KEYED, timeout=5) as client:
                    assert client.get("/health").status_code == 200
                    assert client.get("/metrics").status_code == 200  # a keyed route
                slowest, served = max(slowest, time.monotonic() - started), served + 1
                time.sleep(0.3)
            assert len(attack.live) > 50 and len(attack.opened) > 400  # as many as the server lets wait, coming back
        assert process.poll() is None
        assert served >= 10 and slowest < 2.0, f"slowest of {served}: {slowest:.1f} s"
    told = (tmp_path / "kup-api.log").read_text()
    assert "leaves room for" in told and "KUP_API_MAX_CONNECTIONS" in told  # the file limit lowered the cap


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the server's limits from /proc")
def test_kup_api_raises_a_low_soft_open_file_limit(tmp_path) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 1024:
        pytest.skip(f"the hard open-file limit here is {hard}")
    with kup_api(tmp_path, (256, hard), KUP_API_MAX_CONNECTIONS="600") as (_, process):
        limits = Path(f"/proc/{process.pid}/limits").read_text()
        soft = int(next(line for line in limits.splitlines() if line.startswith("Max open files")).split()[3])
        assert soft >= 600 + 128
