"""A third kind of source, packaged the way another project would ship one: a folder of Markdown files.

Nothing in kup names it. It is registered through the ``kup.sources`` entry point group (the test that uses it
writes the installed distribution's metadata), and implements ``indexing.source_kind.SourceKind`` with kup's
public parts only: the catalog's documents and cursor, ``SourceReport``, ``PullContext``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from connectors import Document, FetchPolicy, SourceConfig
from connectors.language import detect_language
from indexing import SourceReport
from indexing.source_kind import PullContext


class FolderSource(SourceConfig):
    """``type: folder``: every ``pattern`` file under ``path`` is a document; its first line is the title."""

    type: Literal["folder"]
    path: Path
    pattern: str = "*.md"
    base_url: str | None = None  # documents' URL: this + the file's relative path

    def document_needs(self) -> tuple[bool, bool]:
        return bool(self.base_url), True


class FolderKind:
    type = "folder"
    config = FolderSource

    def _files(self, source: FolderSource) -> dict[str, float]:
        if not source.path.is_dir():
            raise FileNotFoundError(2, "no such folder")
        return {str(p.relative_to(source.path)): p.stat().st_mtime for p in sorted(source.path.rglob(source.pattern))}

    def _documents(self, source: FolderSource, names: list[str]) -> list[Document]:
        docs = []
        for name in names:
            text = (source.path / name).read_text(encoding="utf-8")
            title = text.splitlines()[0].lstrip("# ").strip() if text.strip() else name
            mtime = datetime.fromtimestamp((source.path / name).stat().st_mtime, UTC)
            url = f"{source.base_url.rstrip('/')}/{name}" if source.base_url else None
            language = detect_language(text)
            docs.append(Document(source.name, name, text, title=title, url=url, published_at=mtime, language=language))
        return docs

    def pull(self, source: FolderSource, context: PullContext) -> SourceReport:
        started = time.perf_counter()
        report = SourceReport(source=source.name, kind=self.type)
        seen = (context.catalog.source_cursor(source.name) or {}).get("mtimes", {})
        try:
            files = self._files(source)
            changed = [name for name, mtime in files.items() if seen.get(name) != mtime]
            outcomes = context.catalog.upsert_documents(self._documents(source, changed), context.now)
        except OSError as exc:
            report.error = f"folder {source.path} cannot be read: {exc.strerror or exc}"
            context.catalog.record_source_failure(source.name, self.type, report.error, context.now)
            return report
        report.count(outcomes.values())
        context.catalog.record_source_success(source.name, self.type, {"mtimes": files}, context.now)
        report.seconds = time.perf_counter() - started
        return report

    def backfill(self, source: FolderSource, context: PullContext, since, until) -> SourceReport:
        report = SourceReport(source=source.name, kind=self.type)
        inside = [
            name
            for name, mtime in self._files(source).items()
            if since.timestamp() <= mtime and (until is None or mtime < until.timestamp())
        ]
        outcomes = context.catalog.upsert_documents(self._documents(source, inside), context.now)
        report.count(outcomes.values())
        context.catalog.requeue([doc_id for doc_id, outcome in outcomes.items() if outcome == "unchanged"])
        return report

    def probe(self, source: FolderSource, context: PullContext) -> str | None:
        return None if source.path.is_dir() else f"folder {source.path} is not there"

    def pull_timeout(self, source: FolderSource, policy: FetchPolicy, article_workers: int) -> float:
        return 60.0

    def describe(self, source: FolderSource) -> str:
        return f"folder {source.path} ({source.pattern})"
