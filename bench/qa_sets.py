"""The question-answering sets bench/qa.py scores: where each lives and how its rows become documents.

``hard``: the generated hard news set (bench/data/hardnews: syndicated copies, updated facts, distractors).
``simple``: the old 12-article set. ``realnews``: 24 weeks of RealTimeQA (2025), real articles and real
multiple-choice questions, read in place from the shared folder (``KUP_REALNEWS_DIR``, default
``../shared/realnews`` beside the checkout); its text is research data and is never copied into the repository.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from bench._common import ROOT

from connectors import Document

DATA = ROOT / "bench" / "data"


def realnews_dir() -> Path:
    return Path(os.environ.get("KUP_REALNEWS_DIR") or ROOT.parent / "shared" / "realnews")


@dataclass(frozen=True)
class QASet:
    name: str
    corpus: Path
    questions: Path
    dated: bool  # questions carry the date they were asked: retrieval answers as of that date


def qa_set(name: str) -> QASet:
    if name == "realnews":
        folder = realnews_dir()
        return QASet(name, folder / "articles.jsonl", folder / "questions.jsonl", dated=True)
    if name == "simple":
        return QASet(name, DATA / "qa_corpus.jsonl", DATA / "qa_questions.jsonl", dated=False)
    return QASet("hard", DATA / "hardnews" / "articles.jsonl", DATA / "hardnews" / "questions.jsonl", dated=False)


SET_NAMES = ("hard", "realnews", "simple")


def load_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        raise SystemExit(f"{path} does not exist; point KUP_REALNEWS_DIR (or --corpus/--questions) at the set")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def outlet(article: dict) -> str:
    """The article's outlet as a source name: the set's own, or the URL's host (``www.`` dropped)."""
    if article.get("outlet"):
        return article["outlet"]
    host = urlsplit(article.get("url") or "").hostname or "unknown"
    return re.sub(r"[^a-z0-9]+", "-", host.removeprefix("www.").lower()).strip("-") or "unknown"


def parse_when(value: str | None, *, end_of_day: bool = False) -> datetime | None:
    """A timestamp or a bare date (``2025-07-18``, ``2025/07/18``) as an aware UTC datetime; None if empty."""
    if not value:
        return None
    text = str(value).strip().replace("/", "-").replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    if len(text) <= 10:  # a bare date: noon when published, the end of the day when a question was asked
        parsed += timedelta(hours=24, microseconds=-1) if end_of_day else timedelta(hours=12)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def as_document(article: dict) -> Document:
    return Document(
        source=outlet(article),
        external_id=article["url"],
        text=article["text"],
        title=article.get("title") or "",
        url=article["url"],
        published_at=parse_when(article.get("published")),
        language="en",
    )


def asked_at(question: dict) -> datetime | None:
    """When a question was asked (the end of its day), for sets whose questions are dated."""
    return parse_when(question.get("date"), end_of_day=True)


def answer_text(question: dict) -> str:
    return question.get("answer_text") or question["choices"][question["answer"]]
