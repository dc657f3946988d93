"""Who can join kup's Dask cluster, against a real ``dask scheduler`` and real ``dask worker`` processes.

Gathering a result unpickles what a worker sent, so a worker is code running in the flow-run process. The rogue
worker here is a ``--preload`` module that swaps ``encode_part`` for one whose result, once unpickled, writes this
process's pid to a marker file: the attack issue 28 reported.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path

import numpy as np
import pytest

from errors import ConfigError
from fixtures import paragraphs
from indexing import Chunker
from indexing.fanout import Fanout, WorkerRecipe, client_security

ROOT = Path(__file__).resolve().parents[2]

ROGUE = """
import numpy as np

import indexing.fanout


class _Payload:
    def __init__(self, vectors):
        self.vectors = vectors

    def __reduce__(self):  # what the client runs when it unpickles this result
        code = "(open(marker, 'w').write(str(__import__('os').getpid())), vectors)[1]"
        return eval, (code, {{"marker": {marker!r}, "vectors": self.vectors}})


def encode_part(recipe, texts):
    return _Payload(np.zeros((len(texts), 384), np.float32)), [None] * len(texts), 0.0


indexing.fanout.encode_part = encode_part
"""


def _recipe() -> WorkerRecipe:
    return WorkerRecipe(None, "torch", 64, 200, 32, 50, 3)


def _remote_host() -> str:
    """An address of this machine that is not loopback; without one, its host name (which kup, not resolving
    names, must treat as another machine just the same)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outgoing interface
            host = probe.getsockname()[0]
        except OSError:
            host = "127.0.0.1"
    return host if not ip_address(host).is_loopback else socket.gethostname()


@pytest.fixture
def dask(tmp_path) -> Iterator:
    """Starts ``dask scheduler`` / ``dask worker`` processes that import this checkout; stops them afterwards."""
    started: list[subprocess.Popen] = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

    def start(role: str, name: str, *args: str) -> Path:
        log = tmp_path / f"{name}.log"
        with log.open("w") as out:
            command = [sys.executable, "-m", f"distributed.cli.dask_{role}", *args]
            started.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
        return log

    yield start
    for process in reversed(started):  # workers first, while their scheduler is there to say goodbye to
        process.terminate()
    for process in reversed(started):
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:  # a worker still trying to connect may not stop on SIGTERM
            process.kill()
            process.wait()


def _scheduler(dask, tmp_path: Path, host: str, *tls: str) -> str:
    """A scheduler listening on ``host`` (TLS when given certificate options); its address."""
    file = tmp_path / "scheduler.json"
    dask("scheduler", "scheduler", "--host", host, "--port", "0", "--no-dashboard", "--scheduler-file", str(file), *tls)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            return json.loads(file.read_text())["address"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.2)
    raise AssertionError(f"the scheduler did not start: {(tmp_path / 'scheduler.log').read_text()}")


def _worker(dask, address: str, name: str, *args: str) -> Path:
    return dask("worker", name, address, "--name", name, "--no-nanny", "--nthreads", "1", "--no-dashboard", *args)


def _rogue_preload(tmp_path: Path, marker: Path) -> str:
    module = tmp_path / "rogue.py"
    module.write_text(ROGUE.format(marker=str(marker)))
    return str(module)


def test_a_rogue_worker_on_a_plain_scheduler_elsewhere_is_refused_before_anything_is_sent(tmp_path, dask) -> None:
    marker = tmp_path / "ran-in-kup"
    address = _scheduler(dask, tmp_path, _remote_host())
    _worker(dask, address, "rogue", "--preload", _rogue_preload(tmp_path, marker))
    texts = ["a text to embed", "another one"]

    with pytest.raises(ConfigError) as caught:
        Fanout(_recipe(), address=address, min_texts=1, connect_timeout=60).encode(texts)
    message = str(caught.value)
    assert address in message and "without TLS" in message and "\n" not in message
    assert "KUP_DASK_TLS_CA" in message and "KUP_DASK_ALLOW_PLAINTEXT=true" in message
    assert not marker.exists()

    # The opt-out is a real risk, and the rogue worker a real attack: with it, the worker's answer runs code here.
    fanout = Fanout(_recipe(), address=address, allow_plaintext=True, min_texts=1, connect_timeout=60)
    try:
        fanout.encode(texts)
    finally:
        fanout.close()
    assert marker.read_text() == str(os.getpid())


def _issue(name: str, issuer: tuple | None = None) -> tuple:
    """A certificate for ``name`` signed by ``issuer`` (a CA's (cert, key)), or a self-signed CA when None."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
        .sign(issuer[1] if issuer else key, hashes.SHA256())
    )
    return cert, key


def _write(tmp_path: Path, name: str, pair: tuple) -> tuple[str, str]:
    """``pair`` as PEM files: (cert path, key path)."""
    from cryptography.hazmat.primitives import serialization

    cert, key = pair
    cert_file, key_file = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_file), str(key_file)


@pytest.mark.slow
def test_over_tls_only_workers_holding_the_clusters_certificates_join(tmp_path, dask, dense, sparse) -> None:
    ca = _issue("kup-test-ca")
    ca_file, _ = _write(tmp_path, "ca", ca)
    scheduler_cert, scheduler_key = _write(tmp_path, "scheduler", _issue("scheduler", ca))
    worker_cert, worker_key = _write(tmp_path, "worker", _issue("worker", ca))
    client_cert, client_key = _write(tmp_path, "client", _issue("kup", ca))
    rogue_cert, rogue_key = _write(tmp_path, "rogue", _issue("rogue", _issue("another-ca")))
    marker = tmp_path / "ran-in-kup"
    preload = _rogue_preload(tmp_path, marker)

    tls = ("--protocol", "tls", "--tls-ca-file", ca_file)
    address = _scheduler(dask, tmp_path, _remote_host(), *tls, "--tls-cert", scheduler_cert, "--tls-key", scheduler_key)
    assert address.startswith("tls://")
    _worker(dask, address, "genuine", *tls[2:], "--tls-cert", worker_cert, "--tls-key", worker_key)
    # Two rogues: one with a certificate from another CA (it trusts the cluster's CA, which is no secret), one with
    # none, speaking plain tcp to the TLS port. The scheduler turns each away at the handshake.
    _worker(dask, address, "rogue", *tls[2:], "--tls-cert", rogue_cert, "--tls-key", rogue_key, "--preload", preload)
    _worker(dask, address.replace("tls://", "tcp://", 1), "rogue-plain", "--preload", preload)
    refusals = ("CERTIFICATE_VERIFY_FAILED", "WRONG_VERSION_NUMBER")
    deadline = time.monotonic() + 60
    while not all(r in (tmp_path / "scheduler.log").read_text() for r in refusals) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(r in (tmp_path / "scheduler.log").read_text() for r in refusals)

    texts = paragraphs(7, count=5)
    chunker = Chunker(dense.tokenize, chunk_tokens=64, overlap_tokens=8)
    security = client_security(ca_file, client_cert, client_key)
    fanout = Fanout(
        WorkerRecipe.of(chunker, dense), address=address, security=security, min_texts=1, connect_timeout=60
    )
    try:
        spread_dense, spread_sparse = fanout.encode(texts)
        workers = fanout._client.scheduler_info(n_workers=-1)["workers"].values()
        assert sorted(w["name"] for w in workers) == ["genuine"]
    finally:
        fanout.close()
    assert not marker.exists()
    assert np.allclose(spread_dense, dense.encode(texts), atol=1e-5)
    assert spread_sparse == sparse.encode(texts)


@pytest.mark.slow
def test_the_local_cluster_speaks_tls_on_loopback_and_turns_other_clients_away() -> None:
    from distributed import Client
    from distributed.security import Security

    fanout = Fanout(_recipe(), workers=1, processes=True)
    try:
        assert fanout.worker_count == 1
        scheduler = fanout._cluster.scheduler_address
        workers = list(fanout._client.scheduler_info(n_workers=-1)["workers"])
        assert scheduler.startswith("tls://127.0.0.1:") and all(w.startswith("tls://127.0.0.1:") for w in workers)
        assert fanout._client.submit(len, "four", pure=False).result(timeout=30) == 4
        for address, security in [
            (scheduler.replace("tls://", "tcp://", 1), None),  # no TLS at all
            (scheduler, Security.temporary()),  # TLS with a certificate of its own
        ]:
            with pytest.raises(OSError, match="(?i)timed out|connection|certificate"):
                Client(address, security=security, timeout=3, set_as_default=False)
    finally:
        fanout.close()


def test_threads_in_this_process_need_no_listener_at_all() -> None:
    fanout = Fanout(_recipe(), workers=1, processes=False)
    try:
        assert fanout.worker_count == 1
        assert fanout._cluster.scheduler_address.startswith("inproc://")
    finally:
        fanout.close()


@pytest.mark.parametrize(
    ("address", "options", "needs"),
    [
        ("tcp://192.0.2.7:8786", {}, "KUP_DASK_ALLOW_PLAINTEXT=true"),
        ("dask.internal:8786", {}, "KUP_DASK_ALLOW_PLAINTEXT=true"),  # tcp by default; a name may be anywhere
        ("tls://dask.internal:8786", {}, "KUP_DASK_TLS_CA, KUP_DASK_TLS_CERT and KUP_DASK_TLS_KEY"),
        ("tcp://127.0.0.1:8786", {"security": "tls"}, "write it as tls://"),
    ],
)
def test_an_address_anyone_could_join_is_one_sentence_naming_the_setting(address, options, needs) -> None:
    from distributed.security import Security

    if options.get("security") == "tls":
        options = {"security": Security.temporary()}
    with pytest.raises(ConfigError) as caught:
        Fanout(_recipe(), address=address, **options)
    message = str(caught.value)
    assert needs in message and address in message and "\n" not in message


@pytest.mark.parametrize(
    "address", ["tcp://127.0.0.1:8786", "localhost:8786", "tcp://[::1]:8786", "inproc://10.0.0.1/1/1"]
)
def test_this_machine_or_an_opt_out_may_stay_plain(address) -> None:
    assert Fanout(_recipe(), address=address).address == address
    assert Fanout(_recipe(), address="tcp://192.0.2.7:8786", allow_plaintext=True).allow_plaintext


def test_tls_settings_go_together_and_must_load(tmp_path) -> None:
    with pytest.raises(ConfigError, match="^TLS to the Dask scheduler needs .* set KUP_DASK_TLS_KEY too$"):
        client_security("ca.pem", "cert.pem", None)
    assert client_security(None, None, None) is None
    ca_file, _ = _write(tmp_path, "ca", ca := _issue("ca"))
    cert_file, _ = _write(tmp_path, "kup", _issue("kup", ca))
    _, other_key = _write(tmp_path, "other", _issue("other", ca))
    with pytest.raises(ConfigError, match="^the Dask TLS files cannot be loaded .*; correct KUP_DASK_TLS_CA"):
        client_security(ca_file, cert_file, other_key)  # a key that is not the certificate's
    with pytest.raises(ConfigError, match="cannot be loaded"):
        client_security(str(tmp_path / "missing.pem"), cert_file, other_key)
