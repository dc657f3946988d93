"""Index pending documents: chunk, embed only what changed, write points, then mark them indexed.

The store is the truth about what is indexed: for each document we read its current points,
keep those whose text and payload are already right, move vectors of chunks that only
changed position, embed the rest, and delete the points a shorter version no longer has.
Re-running on the same input therefore writes nothing, and a run killed half-way is finished
by the next one with exactly the points a clean run would have written.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from errors import KupError
from indexing.catalog import Catalog, DocRow, lease_owner, now_utc
from indexing.chunking import Chunker
from indexing.embedding import DenseEncoder, SparseEncoder
from indexing.reports import IndexReport
from indexing.store import Changes, ChunkPoint, StoredPoint, Vectors, VectorStore, point_id, rfc3339
from indexing.validation import CheckSummary, DocumentChecks, Requirements

if TYPE_CHECKING:
    from indexing.chunking import Chunk
    from indexing.fanout import Fanout

logger = logging.getLogger(__name__)


def embed_text(title: str, chunk_text: str) -> str:
    """What the encoders see: the title gives every chunk its document's context."""
    return f"{title}\n{chunk_text}" if title else chunk_text


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class _Plan:
    doc: DocRow
    points: list[tuple[str, str, dict]]  # (point id, embed text, payload)


class Indexer:
    def __init__(
        self,
        catalog: Catalog,
        store: VectorStore,
        chunker: Chunker,
        dense: DenseEncoder,
        sparse: SparseEncoder,
        *,
        batch_size: int = 128,
        checks: DocumentChecks | None = None,
        requirements: Mapping[str, Requirements] | None = None,
        fanout: Fanout | None = None,
    ) -> None:
        self.fanout = fanout  # chunk and embed large batches on a Dask cluster; the writes stay here
        self.timings = {"chunk": 0.0, "embed": 0.0, "write": 0.0}  # seconds per stage, summed over batches
        self.checks = checks
        self.requirements = requirements or {}
        self.catalog = catalog
        self.store = store
        self.chunker = chunker
        self.dense = dense
        self.sparse = sparse
        self.batch_size = batch_size

    def _plan(self, doc: DocRow, chunks: list[Chunk] | None = None) -> _Plan:
        points = []
        published = rfc3339(doc.published_at)
        if doc.deleted:  # no chunks wanted: the diff deletes every stored point
            return _Plan(doc, points)
        members = doc.story or ((doc.source, doc.url),)
        story = {
            "story_id": doc.story_id or doc.id,  # syndicated copies share it (indexing.story_fingerprints)
            "story_urls": [url for _, url in members if url],  # every outlet's URL, so a citation can name all
            "story_sources": list(dict.fromkeys(source for source, _ in members)),
        }
        for chunk in self.chunker.chunk(doc.text) if chunks is None else chunks:
            text = embed_text(doc.title, chunk.text)
            payload = {
                **story,
                "doc_id": doc.id,
                "source": doc.source,
                "url": doc.url,
                "title": doc.title,
                "published": published,
                "language": doc.language,
                "chunk_index": chunk.index,
                "text": chunk.text,
                "chunk_hash": text_hash(text),
            }
            points.append((point_id(doc.id, chunk.index), text, payload))
        return _Plan(doc, points)

    def _diff(
        self, plans: list[_Plan], existing: dict[str, list[StoredPoint]], report: IndexReport
    ) -> tuple[Changes, list[tuple[str, str, dict]], dict[str, str]]:
        """Decide per point: keep, rewrite payload, reuse vectors, or embed. Returns the changes so far,
        the points to embed, and a map from point to the stored point whose vectors it reuses."""
        changes = Changes()
        to_embed: list[tuple[str, str, dict]] = []
        reuse: dict[str, str] = {}
        for plan in plans:
            stored = {p.id: p for p in existing.get(plan.doc.id, [])}
            by_hash = {p.payload.get("chunk_hash"): p.id for p in stored.values()}
            wanted = set()
            for pid, text, payload in plan.points:
                wanted.add(pid)
                old = stored.get(pid)
                if old is not None and old.payload == payload:
                    report.unchanged += 1
                elif old is not None and old.payload.get("chunk_hash") == payload["chunk_hash"]:
                    changes.payloads.append((pid, payload))
                    report.unchanged += 1
                elif payload["chunk_hash"] in by_hash:
                    reuse[pid] = by_hash[payload["chunk_hash"]]
                    to_embed.append((pid, text, payload))
                else:
                    to_embed.append((pid, text, payload))
            changes.deletes.extend(pid for pid in stored if pid not in wanted)
        return changes, to_embed, reuse

    def _checked(self, docs: list[DocRow], owner: str, report: IndexReport, summary: CheckSummary) -> list[DocRow]:
        """The documents that pass the data checks; the others are quarantined with their reasons."""
        if self.checks is None:
            return docs
        failed, batch_summary = self.checks.check(docs, self.requirements)
        summary.add(batch_summary)
        if failed:
            self.catalog.quarantine_claimed(owner, failed)
            report.quarantined += len(failed)
            for d in docs:
                if d.id in failed:
                    report.quarantined_by_source[d.source] = report.quarantined_by_source.get(d.source, 0) + 1
        return [d for d in docs if d.id not in failed]

    def write(self, docs: list[DocRow], store: VectorStore, report: IndexReport) -> list[_Plan]:
        """Bring ``store`` in line with ``docs``: embed only what changed, then write it in one go."""
        started = time.perf_counter()
        live = [d for d in docs if not d.deleted]
        chunked = self.fanout.chunk([d.text for d in live]) if self.fanout is not None else None
        by_doc = dict(zip([d.id for d in live], chunked, strict=True)) if chunked is not None else {}
        plans = [self._plan(d, by_doc.get(d.id)) for d in docs]
        self.timings["chunk"] += time.perf_counter() - started
        started = time.perf_counter()
        with store.session():
            existing = store.points_of([d.id for d in docs])
            changes, to_embed, reuse = self._diff(plans, existing, report)
            reused_vectors = store.vectors(sorted(set(reuse.values())))
        self.timings["write"] += time.perf_counter() - started
        fresh = [(pid, text, payload) for pid, text, payload in to_embed if reuse.get(pid) not in reused_vectors]
        started = time.perf_counter()
        dense, sparse = self._encode([text for _, text, _ in fresh])
        self.timings["embed"] += time.perf_counter() - started
        for (pid, _, payload), d, s in zip(fresh, dense, sparse, strict=True):
            changes.upserts.append(ChunkPoint(pid, Vectors(d.tolist(), s), payload))
        for pid, _, payload in to_embed:
            source = reuse.get(pid)
            if source in reused_vectors:
                changes.upserts.append(ChunkPoint(pid, reused_vectors[source], payload))
        started = time.perf_counter()
        store.apply(changes)
        self.timings["write"] += time.perf_counter() - started
        report.embedded += len(fresh)
        report.reused += len(to_embed) - len(fresh)
        report.deleted += len(changes.deletes)
        report.chunks += sum(len(p.points) for p in plans)
        return plans

    def _encode(self, texts: list[str]):
        """Dense and sparse vectors: on the Dask cluster for a large batch, here otherwise."""
        encoded = self.fanout.encode(texts) if self.fanout is not None else None
        return encoded if encoded is not None else (self.dense.encode(texts), self.sparse.encode(texts))

    def _index_batch(self, docs: list[DocRow], owner: str, report: IndexReport) -> None:
        plans = self.write(docs, self.store, report)
        now = now_utc()
        report.documents += self.catalog.mark_indexed(
            owner, [(p.doc.id, p.doc.version, len(p.points)) for p in plans], now
        )
        for d in docs:
            if d.published_at is not None and not d.published_estimated and not d.deleted:
                report.lags.setdefault(d.source, []).append(max(0.0, (now - d.published_at).total_seconds()))

    def run(
        self,
        *,
        max_documents: int | None = None,
        on_progress: Callable[[int], None] | None = None,
        now: datetime | None = None,
    ) -> IndexReport:
        """Index pending (and due failed) documents until none are left or the store fails."""
        started = time.perf_counter()
        owner = lease_owner()
        report = IndexReport()
        summary = CheckSummary()
        seen = 0
        while max_documents is None or seen < max_documents:
            limit = self.batch_size if max_documents is None else min(self.batch_size, max_documents - seen)
            docs = self.catalog.claim_pending(owner, limit, now)
            if not docs:
                break
            seen += len(docs)
            try:
                docs = self._checked(docs, owner, report, summary)
                if docs:
                    self._index_batch(docs, owner, report)
            except (KupError, OSError, RuntimeError, ValueError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                logger.warning("indexing %d document(s) failed; they will be retried: %s", len(docs), reason)
                self.catalog.mark_failed(owner, [d.id for d in docs], reason)
                report.failed += len(docs)
                report.errors.append(reason)
                break  # the store is likely down: leave the rest pending for the next run
            if on_progress:
                on_progress(report.documents)
        if report.embedded or report.reused or report.deleted:
            t0 = time.perf_counter()
            try:
                self.store.optimize()
            except KupError as exc:  # the points are written; indexing them can wait for the next run
                report.errors.append(f"optimize: {exc}")
            report.optimize_seconds = time.perf_counter() - t0
        report.checks = summary.as_dict()
        report.seconds = time.perf_counter() - started
        return report
