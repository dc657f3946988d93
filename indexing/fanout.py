"""Fan-out of chunking and embedding to a Dask cluster: the stateless, CPU-bound half of indexing runs on workers,
while the catalog and the single store writer stay in the calling process.

Work is cut so that a worker's result is the one the caller would have computed: documents are chunked whole,
and texts are sorted by length and cut at the encoder's own batch boundaries before being spread, so every
encoder batch holds the same texts (and pads the same way) as it would in-process. Each worker builds its
chunker and encoders once, from a small ``WorkerRecipe``, and keeps them for later tasks.

``distributed`` is used directly rather than through ``prefect-dask``: this layer knows nothing of Prefect, and
the fan-out happens inside one task (the writer must stay single), not as Prefect tasks.

Gathering a result unpickles what a worker sent, so whoever can join the cluster as a worker can run code in this
process. A scheduler is therefore reached over TLS with a client certificate (the cluster admits only holders of
certificates from its own CA), a plain ``tcp://`` one only on this machine or where the operator says so, and the
local cluster listens on 127.0.0.1 with a throw-away certificate (or in-process, without a listener at all).

One concept, ~360 lines: the worker side and the caller side of one fan-out must agree on how work is cut.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import numpy as np

from errors import ConfigError, KupError
from indexing.chunking import Chunk, Chunker
from indexing.embedding import DenseEncoder, SparseEncoder, SparseVector, packaged_model_path

if TYPE_CHECKING:
    from distributed.security import Security

logger = logging.getLogger(__name__)

_TLS_SETTINGS = "KUP_DASK_TLS_CA, KUP_DASK_TLS_CERT and KUP_DASK_TLS_KEY"


@dataclass(frozen=True)
class WorkerRecipe:
    """What a worker needs to build the caller's chunker and encoders (``model`` None: the packaged model).

    A worker keeps its ONNX export in its own per-user cache (``~/.cache/kup/onnx``): the caller's data dir
    need not exist on the worker's machine.
    """

    model: str | None
    backend: str
    embed_batch_size: int
    chunk_tokens: int
    overlap_tokens: int
    min_tokens: int
    boundary_modulus: int

    @classmethod
    def of(cls, chunker: Chunker, dense: DenseEncoder) -> WorkerRecipe:
        packaged = dense.model_ref == str(packaged_model_path())  # its path differs between machines
        return cls(
            model=None if packaged else dense.model_ref,
            backend=dense.backend,
            embed_batch_size=dense.batch_size,
            chunk_tokens=chunker.chunk_tokens,
            overlap_tokens=chunker.overlap_tokens,
            min_tokens=chunker.min_tokens,
            boundary_modulus=chunker.boundary_modulus,
        )


# -- on the workers -------------------------------------------------------------------------------

_built: dict[WorkerRecipe, tuple[Chunker, DenseEncoder, SparseEncoder]] = {}
_building = threading.Lock()


def _parts(recipe: WorkerRecipe) -> tuple[Chunker, DenseEncoder, SparseEncoder]:
    """This worker's chunker and encoders for ``recipe``, built on first use (models load once per worker)."""
    with _building:
        if recipe not in _built:
            dense = DenseEncoder(recipe.model, batch_size=recipe.embed_batch_size, backend=recipe.backend)
            chunker = Chunker(
                dense.tokenize,
                chunk_tokens=recipe.chunk_tokens,
                overlap_tokens=recipe.overlap_tokens,
                min_tokens=recipe.min_tokens,
                boundary_modulus=recipe.boundary_modulus,
            )
            _built[recipe] = (chunker, dense, SparseEncoder())
        return _built[recipe]


def chunk_part(recipe: WorkerRecipe, texts: list[str]) -> tuple[list[list[Chunk]], float]:
    """Chunks of each text, and the seconds it took on the worker."""
    chunker = _parts(recipe)[0]
    started = time.perf_counter()
    return [chunker.chunk(t) for t in texts], time.perf_counter() - started


def encode_part(recipe: WorkerRecipe, texts: list[str]) -> tuple[np.ndarray, list[SparseVector], float]:
    """Dense and sparse vectors of ``texts`` (already in encoder order), and the seconds it took on the worker."""
    _, dense, sparse = _parts(recipe)
    started = time.perf_counter()
    vectors = dense.encode(texts), sparse.encode(texts)
    return *vectors, time.perf_counter() - started


# -- in the caller --------------------------------------------------------------------------------


def client_security(ca: str | None, cert: str | None, key: str | None) -> Security | None:
    """Dask's client-side TLS from the cluster's CA certificate, kup's certificate and its key (each a file path or
    the PEM text itself); None when none is given. Loaded now, so a wrong file stops the run with one sentence."""
    if not (ca or cert or key):
        return None
    missing = [name for name, value in (("CA", ca), ("CERT", cert), ("KEY", key)) if not value]
    if missing:
        unset = " and ".join(f"KUP_DASK_TLS_{name}" for name in missing)
        raise ConfigError(f"TLS to the Dask scheduler needs {_TLS_SETTINGS} together; set {unset} too")
    from distributed.security import Security

    # Dask reads a value holding a line break as the PEM text itself (kept in memory), anything else as a path.
    security = Security(require_encryption=True, tls_ca_file=ca, tls_client_cert=cert, tls_client_key=key)
    try:
        security.get_connection_args("client")
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: a missing file, a key that is not the cert's
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(f"the Dask TLS files cannot be loaded ({reason}); correct {_TLS_SETTINGS}") from None
    return security


def _check_address(address: str, security: Security | None, allow_plaintext: bool) -> None:
    """Refuse, before connecting, an address whose cluster anyone on the network could join as a worker."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")  # Dask's default protocol is tcp
    if parts.scheme in ("tls", "wss"):
        if security is None:
            raise ConfigError(f"KUP_DASK_ADDRESS {address} uses TLS, so set {_TLS_SETTINGS} to kup's certificate")
        return
    if security is not None:
        raise ConfigError(f"{_TLS_SETTINGS} are set but KUP_DASK_ADDRESS {address} is not TLS; write it as tls://")
    if parts.scheme == "inproc" or allow_plaintext or _loopback(parts.hostname):
        return
    raise ConfigError(
        f"the Dask scheduler {address} is reached without TLS, so any machine that can reach it could join as a "
        f"worker and run code in this process; use a tls:// KUP_DASK_ADDRESS with {_TLS_SETTINGS}, or set "
        "KUP_DASK_ALLOW_PLAINTEXT=true to accept that risk"
    )


def _loopback(host: str | None) -> bool:
    """Whether ``host`` is this machine for certain: localhost or a loopback IP (a name is not resolved)."""
    if host in ("localhost", "localhost."):
        return True
    try:
        return ip_address(host or "").is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


@dataclass
class FanoutStats:
    """Seconds spent, summed over workers (busy) and as the caller waited (wall), per stage."""

    busy: dict[str, float] = field(default_factory=lambda: {"chunk": 0.0, "embed": 0.0})
    wall: dict[str, float] = field(default_factory=lambda: {"chunk": 0.0, "embed": 0.0})
    texts: int = 0
    documents: int = 0


class Fanout:
    """Chunk and embed large batches on a Dask cluster: a scheduler at ``address``, or a local cluster of
    ``workers`` workers started on first use. Batches under ``min_texts`` texts (``min_documents`` for chunking)
    stay in-process, where sending them would cost more than it saves.

    A scheduler that does not answer stops the run with one sentence (``unreachable="fail"``), or is
    skipped with one warning, the work then done in-process (``unreachable="in-process"``).

    A ``tls://`` scheduler is reached with ``security`` (see ``client_security``); a plain one not on this machine
    is refused unless ``allow_plaintext``: whoever joins it as a worker could run code here. The local cluster
    talks TLS on 127.0.0.1 (worker processes) or stays inside this process (``processes=False``).
    """

    def __init__(
        self,
        recipe: WorkerRecipe,
        *,
        address: str | None = None,
        workers: int = 0,
        processes: bool = True,
        unreachable: str = "fail",
        min_texts: int = 128,
        min_documents: int = 64,
        connect_timeout: float = 10.0,
        security: Security | None = None,
        allow_plaintext: bool = False,
    ) -> None:
        if not address and workers < 1:
            raise ConfigError("a Dask fan-out needs KUP_DASK_ADDRESS or KUP_DASK_WORKERS of at least 1")
        if unreachable not in ("fail", "in-process"):
            raise ConfigError(f"KUP_DASK_UNREACHABLE must be 'fail' or 'in-process', not {unreachable!r}")
        if address:
            _check_address(address, security, allow_plaintext)
        self.recipe = recipe
        self.address = address
        self.security = security
        self.allow_plaintext = allow_plaintext
        self.workers = workers
        self.processes = processes
        self.unreachable = unreachable
        self.min_texts = min_texts
        self.min_documents = min_documents
        self.connect_timeout = connect_timeout
        self.stats = FanoutStats()
        self._client = None
        self._cluster = None
        self._skipped = False  # the scheduler did not answer and we went on in-process
        self._lock = threading.Lock()

    def __str__(self) -> str:
        return f"Dask scheduler {self.address}" if self.address else f"local Dask cluster of {self.workers} worker(s)"

    def _connect(self):
        """The Dask client, or None when the scheduler does not answer and in-process work was chosen."""
        with self._lock:
            if self._client is not None or self._skipped:
                return self._client
            from distributed import Client, LocalCluster

            try:
                if self.address:
                    self._client = Client(
                        self.address, timeout=self.connect_timeout, security=self.security, set_as_default=False
                    )
                    try:  # a scheduler without workers would hold every batch forever
                        self._client.wait_for_workers(1, timeout=self.connect_timeout)
                    except TimeoutError:
                        self._unreachable(f"no workers joined within {self.connect_timeout:.0f} s", "has no workers")
                        return None
                else:
                    self._cluster = LocalCluster(
                        n_workers=self.workers,
                        threads_per_worker=1,
                        processes=self.processes,
                        dashboard_address=None,
                        silence_logs=logging.WARNING,
                        **self._local_listener(),
                    )
                    self._client = Client(self._cluster, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                self._unreachable(" ".join(str(exc).split()) or type(exc).__name__)
            return self._client

    def _local_listener(self) -> dict:
        """Where the local cluster listens: TLS on 127.0.0.1 with a certificate made for it alone (no one else holds
        its key, so no one else joins), or nowhere when its workers are threads in this process."""
        if not self.processes:
            return {"protocol": "inproc://"}
        from distributed.security import Security

        return {"protocol": "tls://", "host": "127.0.0.1", "security": Security.temporary()}

    def _unreachable(self, reason: str, what: str = "does not answer") -> None:
        if self.unreachable == "fail":
            self.close()
            raise ConfigError(
                f"the {self} {what} ({reason}); start it, correct "
                "KUP_DASK_ADDRESS, or set KUP_DASK_UNREACHABLE=in-process to embed here meanwhile"
            ) from None
        logger.warning("the %s %s (%s); chunking and embedding here", self, what, reason)
        self._skipped = True
        self.close()

    @property
    def worker_count(self) -> int:
        client = self._connect()
        return max(1, len(client.scheduler_info(n_workers=-1)["workers"])) if client is not None else 0

    def _run(self, stage: str, function, parts: list[list[str]]) -> list | None:
        """``function(recipe, part)`` for each part on the cluster, in order; None to do the work in-process."""
        client = self._connect()
        if client is None:
            return None
        started = time.perf_counter()
        try:
            futures = [client.submit(function, self.recipe, part, pure=False) for part in parts]
            results = client.gather(futures)
        except KupError:
            raise
        except (OSError, TimeoutError) as exc:  # the scheduler went away mid-batch
            if self.unreachable == "fail":
                raise KupError(f"the Dask cluster ({self}) was lost while {stage}ing a batch: {exc}") from None
            logger.warning("the Dask cluster (%s) was lost (%s); %sing in-process", self, exc, stage)
            self._skipped = True
            self.close()
            return None
        except Exception as exc:  # noqa: BLE001 - KilledWorker and friends: the batch is retried by the next run
            raise KupError(f"{stage}ing on {self} failed ({type(exc).__name__}: {exc})") from None
        self.stats.wall[stage] += time.perf_counter() - started
        self.stats.busy[stage] += sum(r[-1] for r in results)
        return results

    def _spread(self, count: int, unit: int = 1) -> list[tuple[int, int]]:
        """[start, stop) ranges covering ``count`` items, cut at multiples of ``unit``, about two per worker."""
        units = -(-count // unit)
        pieces = min(units, max(2 * self.worker_count, 1))
        per = -(-units // pieces) * unit
        return [(start, min(start + per, count)) for start in range(0, count, per)]

    def chunk(self, texts: Sequence[str]) -> list[list[Chunk]] | None:
        """Chunks of every text, or None when the batch is small (or the cluster gone): chunk in-process."""
        if len(texts) < self.min_documents:
            return None
        ranges = self._spread(len(texts)) if self._connect() is not None else []
        results = self._run("chunk", chunk_part, [list(texts[a:b]) for a, b in ranges]) if ranges else None
        if results is None:
            return None
        self.stats.documents += len(texts)
        return [chunks for part, _ in results for chunks in part]

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, list[SparseVector]] | None:
        """Dense and sparse vectors in the order of ``texts``, or None when the batch is small: encode in-process."""
        if len(texts) < self.min_texts:
            return None
        # The encoder sorts by length (longest first) and pads per batch: spreading whole batches of that order
        # keeps every batch, and so every vector, what it would be in-process.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        ranges = self._spread(len(order), self.recipe.embed_batch_size) if self._connect() is not None else []
        results = self._run("embed", encode_part, [[texts[i] for i in order[a:b]] for a, b in ranges])
        if results is None:
            return None
        dense = np.zeros((len(texts), results[0][0].shape[1]), dtype=np.float32)
        sparse: list[SparseVector | None] = [None] * len(texts)
        for (a, b), (part_dense, part_sparse, _) in zip(ranges, results, strict=True):
            for offset, index in enumerate(order[a:b]):
                dense[index] = part_dense[offset]
                sparse[index] = part_sparse[offset]
        self.stats.texts += len(texts)
        return dense, sparse

    def close(self) -> None:
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        for part in (client, cluster):
            if part is not None:
                try:
                    part.close()
                except Exception as exc:  # noqa: BLE001 - closing a cluster that is already gone
                    logger.debug("closing %s: %s", part, exc)


def stage_summary(timings: dict[str, float], fanout: Fanout | None) -> tuple[dict[str, float | str], str]:
    """An indexer's per-stage seconds, and where it chunked and embedded: as figures and as one line."""
    spread = fanout is not None and (fanout.stats.texts or fanout.stats.documents)
    where = str(fanout) if spread else "in-process"
    figures: dict[str, float | str] = {f"{stage}_seconds": round(s, 2) for stage, s in timings.items()}
    figures["chunked_and_embedded"] = where
    line = ", ".join(f"{stage} {s:.1f} s" for stage, s in timings.items())
    return figures, f"{line} (chunking and embedding: {where})"
