"""Syndicated-story detection on the hard news set: pairwise precision, recall and F1 of "same story".

Every article is committed to a temporary SQLite catalog (or the catalog URL given) as a
Document whose source is its outlet, one at a time in publication order, as a refresh would
bring them in; the catalog assigns stories as it commits. Pairs of articles put in one story
are compared with the set's ``story_id`` ground truth. Target: F1 >= 0.9. Re-assigning every
article afterwards must change no story id (``idempotent``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench._common import ROOT, emit
from bench.qa import pairwise

from connectors import Document
from indexing import Catalog

DATA = ROOT / "bench" / "data" / "hardnews" / "articles.jsonl"


def load(path: Path) -> list[dict]:
    articles = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted(articles, key=lambda a: (a["published"], a["id"]))


def as_document(article: dict) -> Document:
    return Document(
        source=article["outlet"],
        external_id=article["url"],
        text=article["text"],
        title=article["title"],
        url=article["url"],
        published_at=datetime.fromisoformat(article["published"].replace("Z", "+00:00")),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--catalog-url", help="catalog to use (default: a temporary SQLite file)")
    args = parser.parse_args()
    articles = load(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(args.catalog_url or f"sqlite:///{tmp}/catalog.db")
        docs = [as_document(a) for a in articles]
        started = time.perf_counter()
        for doc in docs:
            catalog.upsert_documents([doc])
        seconds = time.perf_counter() - started
        stories = {a["id"]: catalog.document(d.id)["story_id"] for a, d in zip(articles, docs, strict=True)}
        catalog.assign_stories([d.id for d in docs])
        again = {a["id"]: catalog.document(d.id)["story_id"] for a, d in zip(articles, docs, strict=True)}
        catalog.close()
    truth = {a["id"]: a["story_id"] for a in articles}
    emit(
        "stories",
        {
            "articles": len(articles),
            "stories_true": len(set(truth.values())),
            "stories_found": len(set(stories.values())),
            **pairwise(stories, truth, digits=4),
            "ms_per_document": round(seconds / len(articles) * 1000, 2),
            "idempotent": stories == again,
        },
    )


if __name__ == "__main__":
    main()
