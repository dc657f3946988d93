"""The shipped hard news set: its size, its answers found in its sources, updates answered by the latest story."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from bench.hardnews.articles import KINDS

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "bench" / "data" / "hardnews"
# Other benchmarks' published figures rest on the articles and the first 172 questions: they never change.
FIRST_QUESTIONS = 172
FIRST_QUESTIONS_SHA256 = "cd951f1fbdba78a738b4e0a65647afacce642e4a774c4d9b4744fade0e596b4f"
ARTICLES_SHA256 = "30effbee101ef99cd3dddaf2f022b91b173a8d7f9d92c3802be374d5d3ebbd94"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def articles() -> dict[str, dict]:
    return {a["id"]: a for a in _rows(DATA / "articles.jsonl")}


@pytest.fixture(scope="module")
def questions() -> list[dict]:
    return _rows(DATA / "questions.jsonl")


def test_counts_meet_the_minimums(articles, questions):
    days = sorted(datetime.fromisoformat(a["published"].replace("Z", "+00:00")) for a in articles.values())
    weeks = {d.isocalendar()[:2] for d in days}
    stories = {a["story_id"] for a in articles.values()}
    words = [len(a["text"].split()) for a in articles.values()]
    assert len(articles) >= 300
    assert len({a["outlet"] for a in articles.values()}) >= 5
    assert len(weeks) >= 6
    assert len(stories) < len(articles)  # syndicated copies share a story
    assert sum(w >= 600 for w in words) >= 100
    assert len(questions) >= 150
    first = questions[:FIRST_QUESTIONS]
    assert sum(q["updated"] for q in first) * 3 >= len(first)
    # The extra questions ask every plain fact as well: updates are a smaller share of the whole set.
    assert sum(q["updated"] for q in questions) * 5 >= len(questions)
    assert len({a["url"] for a in articles.values()}) == len(articles)


def test_syndication_ground_truth(articles):
    by_story: dict[str, list[dict]] = {}
    for a in articles.values():
        by_story.setdefault(a["story_id"], []).append(a)
    assert all(len({a["event_id"] for a in group}) == 1 for group in by_story.values())
    assert sum(len({a["outlet"] for a in group}) >= 2 for group in by_story.values()) >= 50
    texts: dict[str, list[dict]] = {}
    for a in articles.values():
        texts.setdefault(a["text"], []).append(a)
    verbatim = [group for group in texts.values() if len(group) > 1]
    assert verbatim, "some copies repeat the text under another URL"
    assert all(len({a["story_id"] for a in group}) == 1 for group in verbatim)
    events = {a["event_id"]: set() for a in articles.values()}
    for a in articles.values():
        events[a["event_id"]].add(a["story_id"])
    assert sum(len(s) > 1 for s in events.values()) >= 30  # follow-ups are stories of their own


def test_questions_are_answered_by_their_sources(articles, questions):
    for q in questions:
        assert len(q["choices"]) == 4
        assert len({c.lower() for c in q["choices"]}) == 4, q["id"]
        assert q["choices"][q["answer"]] == q["answer_text"]
        assert q["source_ids"], q["id"]
        for sid in q["source_ids"]:
            assert articles[sid]["event_id"] == q["event_id"]
            assert q["answer_text"] in articles[sid]["text"], (q["id"], sid)


def test_updated_questions_take_the_latest_value(articles, questions):
    updated = [q for q in questions if q["updated"]]
    for q in updated:
        event = sorted((a for a in articles.values() if a["event_id"] == q["event_id"]), key=lambda a: a["published"])
        latest = event[-1]
        assert q["answer_text"] in latest["text"], q["id"]
        assert all(articles[s]["story_id"] == latest["story_id"] for s in q["source_ids"]), q["id"]
        first_of_latest = min(a["published"] for a in event if a["story_id"] == latest["story_id"])
        earlier = [a for a in event if a["published"] < first_of_latest]
        assert q["stale_answers"] and q["answer_text"] not in q["stale_answers"]
        for stale in q["stale_answers"]:
            assert any(stale in a["text"] for a in earlier), (q["id"], stale)
    assert sum(bool(set(q["stale_answers"]) & set(q["choices"])) for q in updated) == len(updated)


def test_generation_is_deterministic(tmp_path):
    for run in ("a", "b"):
        out = tmp_path / run
        done = subprocess.run(
            [sys.executable, "-m", "bench.hardnews", "--out", str(out)], capture_output=True, text=True, check=True
        )
        figures = json.loads(done.stdout)
        assert figures["articles"] >= 300
        for name in ("articles.jsonl", "questions.jsonl", "README.md"):
            assert (out / name).read_bytes() == (DATA / name).read_bytes(), name


def test_first_questions_and_articles_stay_as_published(questions):
    lines = (DATA / "questions.jsonl").read_bytes().splitlines(keepends=True)
    assert hashlib.sha256(b"".join(lines[:FIRST_QUESTIONS])).hexdigest() == FIRST_QUESTIONS_SHA256
    assert hashlib.sha256((DATA / "articles.jsonl").read_bytes()).hexdigest() == ARTICLES_SHA256
    assert [q["id"] for q in questions] == [f"hq-{n:03d}" for n in range(1, len(questions) + 1)]
    assert not any("extra" in q for q in questions[:FIRST_QUESTIONS])
    assert all(q["extra"] is True for q in questions[FIRST_QUESTIONS:])
    assert len(questions) >= 2.5 * FIRST_QUESTIONS


def test_extra_questions_cover_every_fact_in_new_words(articles, questions):
    assert len({q["question"] for q in questions}) == len(questions)
    asked: dict[tuple[str, str], list[dict]] = {}
    for q in questions:
        asked.setdefault((q["event_id"], q["fact"]), []).append(q)
    for event in {a["event_id"] for a in articles.values()}:
        spec = KINDS[event.rsplit("-", 1)[0]][1]
        assert {f for e, f in asked if e == event} == set(spec["questions"]), event
    assert all(len(group) <= 2 and not any(q.get("extra") for q in group[:-1]) for group in asked.values())
    # A second wording asks the same fact: the same right answer and the same sources.
    for first, *second in asked.values():
        for q in second:
            assert (q["answer_text"], q["source_ids"]) == (first["answer_text"], first["source_ids"]), q["id"]


def test_extra_questions_name_their_event(articles, questions):
    """Each name in an extra question (a town, a firm, a bridge, a team) is in one of its source articles."""
    for q in questions[FIRST_QUESTIONS:]:
        texts = [articles[s]["text"] for s in q["source_ids"]]
        names = [n.removesuffix("'s").rstrip("'") for n in re.findall(r"\b[A-Z][\w'-]*", q["question"])[1:]]
        assert names, q["id"]
        for name in names:
            assert any(name in t for t in texts), (q["id"], name)
