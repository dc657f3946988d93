"""The held shard served to other processes: a writer sends its operations to the process that holds the index.

Qdrant Edge locks its WAL, so only one process can have the shard open. Before, a long-lived searcher (``kup api``)
yielded the shard to each writer and took it back afterwards: two loads of the shard (1.5 s each at 100k chunks)
during which searches waited. Now the holder also listens on a local socket, and another process of the same user
(the minute refresh, the listener, ``kup search``) sends it each operation: a batch of upserts, a search, a count. The
holder runs them on the open shard, beside its own searches (the engine takes concurrent reads and writes), so
searches never wait for a hand-over and writers never load the shard.

The socket lives in a directory only its user can enter (``$TMPDIR/kup-<uid>``), and every connection proves it
knows the holder's random key (``multiprocessing.connection``'s HMAC challenge) before anything is read. The key
and the address are in ``<index>.serve``, readable by the owner only: the same trust as the index files. Messages
are JSON (never pickle) in a tagged form that rebuilds only the store's own dataclasses, and a request is bounded in
size. A holder that is gone, busy (it yielded the shard to a rebuild) or unreachable is not an error: the caller
opens the shard itself under the lock, as before. Every operation sent is idempotent (upserts by id, overwrites,
deletes, reads), so running one again after a holder vanished mid-call is safe.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import fields, is_dataclass
from datetime import datetime
from hashlib import sha1
from multiprocessing.connection import (  # type: ignore[attr-defined]
    AuthenticationError,
    Client,
    Connection,
    Listener,
    answer_challenge,
    deliver_challenge,
)
from pathlib import Path
from typing import Any

from errors import StoreError
from indexing.embedding import SparseVector
from indexing.store import Changes, ChunkPoint, Fusion, Hit, StoredPoint, Vectors

logger = logging.getLogger(__name__)

MAX_MESSAGE = 512 * 1024 * 1024  # a batch of 5,000 upserts with 384-dim vectors is ~40 MB of JSON
REPLY_TIMEOUT = 120.0  # seconds a caller waits for the holder's answer (an optimize of a large segment is slow)
_TYPES = {t.__name__: t for t in (Changes, ChunkPoint, Fusion, Hit, StoredPoint, Vectors, SparseVector)}


def encode(value: Any) -> Any:
    """To JSON: every dict on the wire is a tagged wrapper, so a payload can never pass for a dataclass."""
    if is_dataclass(value) and not isinstance(value, type):
        return {"c": type(value).__name__, "f": {f.name: encode(getattr(value, f.name)) for f in fields(value)}}
    if isinstance(value, dict):
        return {"m": {str(k): encode(v) for k, v in value.items()}}
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "m" in value:
        return {k: decode(v) for k, v in value["m"].items()}
    if "t" in value:
        return datetime.fromisoformat(value["t"])
    kind = _TYPES.get(value.get("c"))
    if kind is None:
        raise ValueError(f"unknown type on the wire: {str(value.get('c'))[:40]!r}")
    args = {k: decode(v) for k, v in value["f"].items()}
    if kind is Fusion:
        args["weights"] = tuple(args["weights"])
    if kind is Changes:
        args["payloads"] = [tuple(p) for p in args["payloads"]]
    return kind(**args)


def socket_dir() -> Path | None:
    """``$TMPDIR/kup-<uid>``, private to this user; None where that cannot be had (no uid, someone else's)."""
    if not hasattr(os, "getuid"):
        return None
    folder = Path(tempfile.gettempdir()) / f"kup-{os.getuid()}"
    with suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = folder.lstat()
    if folder.is_symlink() or info.st_uid != os.getuid() or info.st_mode & 0o077:
        logger.warning("not serving the index to other processes: %s is not private to this user", folder)
        return None
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: alive
    return True


Runner = Callable[[str, bool, dict[str, Any]], tuple[bool, Any]]  # (op, create, args) -> (ran, result)


class ShardService:
    """Serves the operations named ``ops``, run by ``run`` on the held shard, to processes that read
    ``<index>.serve``."""

    def __init__(self, index: Path, ops: set[str], run: Runner) -> None:
        self.index, self.ops, self.run = index, ops, run
        self.card = Path(str(index) + ".serve")
        self.key = secrets.token_bytes(32)
        self.stopped = threading.Event()
        self.listener: Listener | None = None
        folder = socket_dir()
        if folder is None:
            return
        name = sha1(str(index.absolute()).encode()).hexdigest()[:16]
        self.address = str(folder / f"{name}-{os.getpid()}.sock")
        for old in folder.glob(f"{name}-*.sock"):  # left by holders that were killed
            pid = old.stem.rsplit("-", 1)[1]
            if pid.isdigit() and (int(pid) == os.getpid() or not _alive(int(pid))):
                with suppress(OSError):
                    old.unlink()
        self.listener = Listener(self.address, family="AF_UNIX")  # authenticated per connection, off this thread
        os.chmod(self.address, 0o600)
        threading.Thread(target=self._accept, name=f"edge-service-{index.name}", daemon=True).start()

    def announce(self) -> None:
        """Name this process in ``<index>.serve``: it holds the shard now."""
        if self.listener is None:
            return
        self.card.parent.mkdir(parents=True, exist_ok=True)
        temp = self.card.with_name(f".{self.card.name}.{os.getpid()}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"address": self.address, "key": self.key.hex(), "pid": os.getpid()}, out)
        os.replace(temp, self.card)

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn = self.listener.accept()
            except OSError:
                return  # closed by stop()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        with conn:
            try:
                deliver_challenge(conn, self.key)
                answer_challenge(conn, self.key)
                while not self.stopped.is_set():
                    conn.send_bytes(self._handle(conn.recv_bytes(MAX_MESSAGE)))
            except (AuthenticationError, EOFError, OSError) as exc:
                logger.debug("index client went away: %s", exc)

    def _handle(self, raw: bytes) -> bytes:
        try:
            request = json.loads(raw)
            op, args, create = request["op"], decode(request["args"]), bool(request.get("create", True))
            if op not in self.ops or not isinstance(args, dict):
                raise KeyError(op)
        except (ValueError, KeyError, TypeError) as exc:
            return json.dumps({"error": f"malformed request to the index holder ({type(exc).__name__})"}).encode()
        try:
            ran, result = self.run(op, create, args)
        except Exception as exc:  # noqa: BLE001 - the caller raises it as a StoreError, in its own process
            return json.dumps({"error": str(exc)[:2000]}).encode()
        return json.dumps({"ok": encode(result)} if ran else {"busy": True}).encode()

    def withdraw(self) -> None:
        """Take this process's name out of ``<index>.serve``: it is letting the shard go."""
        with suppress(OSError, ValueError, KeyError):
            if json.loads(self.card.read_text())["pid"] == os.getpid():
                self.card.unlink()

    def stop(self) -> None:
        self.stopped.set()
        if self.listener is None:
            return
        self.withdraw()
        with suppress(OSError):
            self.listener.close()
        with suppress(OSError):
            os.unlink(self.address)


class ShardClient:
    """Sends one store's operations to the process holding its index, over one connection kept open."""

    def __init__(self, index: Path) -> None:
        self.card = Path(str(index) + ".serve")
        self.lock = threading.Lock()
        self.conn: Connection | None = None
        self.served_by: str | None = None  # the address the connection goes to
        self.sent = 0  # operations the holder ran for this process (for tests and benches)

    def _connect(self) -> Connection | None:
        try:
            card = json.loads(self.card.read_text())
            if card["pid"] == os.getpid():
                return None  # this process holds it (and has yielded it): no call to itself
            if self.conn is not None and self.served_by == card["address"]:
                return self.conn
            self.close()
            self.conn = Client(card["address"], family="AF_UNIX", authkey=bytes.fromhex(card["key"]))
            self.served_by = card["address"]
            return self.conn
        except (OSError, ValueError, KeyError, TypeError, EOFError, AuthenticationError):
            self.close()
            return None

    def reachable(self) -> bool:
        """Whether a process holding the index answers here."""
        with self.lock:
            return self._connect() is not None

    def call(self, op: str, args: dict[str, Any], create: bool) -> tuple[bool, Any]:
        """(True, result) when the holder ran ``op``; (False, None) when there is none to run it (do it yourself)."""
        with self.lock:
            conn = self._connect()
            if conn is None:
                return False, None
            try:
                conn.send_bytes(json.dumps({"op": op, "args": encode(args), "create": create}).encode())
                if not conn.poll(REPLY_TIMEOUT):
                    self.close()
                    raise StoreError(f"the process holding the index {self.card.stem} did not answer "
                                     f"in {REPLY_TIMEOUT:.0f}s; stop it or try again")  # fmt: skip
                reply = json.loads(conn.recv_bytes(MAX_MESSAGE))
            except (OSError, EOFError, ValueError):
                self.close()  # the holder went away mid-call: the caller runs the (idempotent) operation itself
                return False, None
        if "error" in reply:
            raise StoreError(f"{op} failed in the process holding the index: {reply['error']}")
        if reply.get("busy"):
            return False, None
        self.sent += 1
        return True, decode(reply["ok"])

    def close(self) -> None:
        if self.conn is not None:
            with suppress(OSError):
                self.conn.close()
        self.conn, self.served_by = None, None
