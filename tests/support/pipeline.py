"""A pipeline for tests: its own data dir and sources file, pointed at the local feed server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.feedserver import FeedServer, Item, article_html, paragraphs, rss


@dataclass
class Pipeline:
    server: FeedServer
    data_dir: Path
    sources_file: Path

    def env(self) -> dict[str, str]:
        return {"KUP_DATA_DIR": str(self.data_dir), "KUP_SOURCES_FILE": str(self.sources_file)}

    def write_sources(self, feeds: dict[str, str]) -> None:
        lines = ["sources:"]
        for name, path in feeds.items():
            lines += [f"  - name: {name}", f"    url: {self.server.url(path)}", "    allow_private_addresses: true"]
        self.sources_file.write_text("\n".join(lines) + "\n")

    def publish(
        self, path: str, count: int, *, start: int = 0, etag: str | None = '"v1"', age_minutes: int = 5
    ) -> list:
        """Serve a feed at ``path`` with ``count`` articles whose pages live on the same server."""
        items = []
        published = datetime.now(UTC) - timedelta(minutes=age_minutes)
        for i in range(start, start + count):
            page = f"{path}/article/{i}"
            self.server.set(page, article_html(f"Story number {i}", paragraphs(i, count=6)))
            items.append(
                Item(
                    f"Story number {i}",
                    link=self.server.url(page),
                    guid=f"{path}-{i}",
                    published=published,
                    summary=f"Summary of story {i}.",
                )
            )
        self.server.set(path, rss(items), content_type="application/rss+xml", etag=etag)
        return items
