"""Builds the whole set from one seed: events, stories, syndicated articles and questions, in a fixed order."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from .articles import build_story, make_events, publish
from .outlets import OUTLETS
from .questions import make_questions, more_questions
from .world import DAYS, FIRST, LAST, World, day_date


def build(seed: int) -> tuple[list[dict], list[dict]]:
    """(articles, questions) as the JSON records written to disk."""
    r = random.Random(seed)
    w = World(r)
    for outlet in OUTLETS:
        outlet.staff = [f"{r.choice(FIRST)} {r.choice(LAST)}" for _ in range(4)]
        outlet.editors = [f"{r.choice(FIRST)} {r.choice(LAST)}" for _ in range(2)]
    events = make_events(r, w)
    end = datetime.combine(day_date(DAYS - 1), datetime.min.time()) + timedelta(hours=23, minutes=30)
    records = []
    seen_urls: set[str] = set()
    for ev in events:
        for i in range(len(ev.stages)):
            story = build_story(r, ev, i, events)
            for c in publish(r, story, end):
                u = c.url
                while u in seen_urls:
                    u = f"{c.url}-{r.randrange(10, 99)}"
                seen_urls.add(u)
                records.append(
                    {
                        "outlet": c.outlet.name,
                        "url": u,
                        "title": c.title,
                        "published": c.published.strftime("%Y-%m-%dT%H:%M:00Z"),
                        "text": c.text,
                        "story_id": story.id,
                        "event_id": ev.id,
                        "_stage": i,
                    }
                )
    records.sort(key=lambda a: (a["published"], a["url"]))
    for n, a in enumerate(records, 1):
        a["id"] = f"hn-{n:04d}"
    questions = make_questions(r, events, records)
    # The later questions draw from a stream of their own: the first ones (and everything above) stay as they were.
    questions += more_questions(random.Random(f"{seed}:more"), events, records, questions)
    for n, q in enumerate(questions, 1):
        q["id"] = f"hq-{n:03d}"
    articles = [
        {k: a[k] for k in ("id", "outlet", "url", "title", "published", "text", "story_id", "event_id")}
        for a in records
    ]
    qs = [
        {
            k: q[k]
            for k in (
                "id",
                "question",
                "choices",
                "answer",
                "answer_text",
                "source_ids",
                "event_id",
                "fact",
                "updated",
                "stale_answers",
                "extra",
            )
            if k in q
        }
        for q in questions
    ]
    return articles, qs
