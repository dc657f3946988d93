"""Multiple-choice questions about the events: user wording, four choices, latest value right, stale values kept."""

from __future__ import annotations

import random
import re

from .articles import Event
from .outlets import cap
from .world import MONTHS_DAYS, date_text

# Same-kind values named in an event's own articles: the closest distractors there are.
SIBLINGS = {
    "election": {"candidate": ["third"]},
    "appointment": {"person": ["shortlisted"]},
    "match": {"team": ["home", "away"]},
}


def history(ev: Event) -> dict[str, list[str]]:
    """Each fact's distinct values in the order the stories gave them; the last one is current."""
    out: dict[str, list[str]] = {}
    for stage in ev.stages:
        for k, v in stage.values.items():
            if v not in out.setdefault(k, []):
                out[k].append(v)
    return out


def _nearby(r: random.Random, value: str) -> str:
    """A plausible made-up neighbour of a value: another date, or the number in it scaled."""
    m = re.fullmatch(r"(\w+) (\d+)", value)
    if m and m.group(1) in MONTHS_DAYS:
        return date_text(MONTHS_DAYS[m.group(1)] + int(m.group(2)) + r.choice([-1, 1]) * r.randint(3, 20))
    n = re.search(r"\d[\d,]*(\.\d)?", value)
    if not n:
        return value
    digits = n.group(0)
    if "." in digits:
        whole = float(digits.replace(",", "")) * r.uniform(0.6, 1.5)
        new = f"{max(0.1, whole):.1f}"
    else:
        num = int(digits.replace(",", ""))
        new = f"{max(1, round(num * r.uniform(0.5, 1.6))):,}" if num > 30 else str(max(1, num + r.randint(-4, 6)))
    return value[: n.start()] + new + value[n.end() :]


def _distractors(r: random.Random, answer: str, stale: list[str], near: list[str], pool: list[str]) -> list[str]:
    seen = {answer.lower()}
    out: list[str] = []
    others = [v for v in pool if v.lower() not in seen]
    r.shuffle(others)
    for v in stale + near + others[:12]:
        if v.lower() not in seen and len(out) < 3:
            seen.add(v.lower())
            out.append(v)
    while len(out) < 3:
        v = _nearby(r, answer if r.random() < 0.5 or not out else out[0])
        if v.lower() not in seen:
            seen.add(v.lower())
            out.append(v)
    return out


def _pools(events: list[Event]) -> dict[str, list[str]]:
    """Each kind of fact's values over all events, in first-seen order: the far distractors."""
    pools: dict[str, list[str]] = {}
    for ev in events:
        for k, values in history(ev).items():
            for v in values:
                if v not in pools.setdefault(ev.kinds[k], []):
                    pools[ev.kinds[k]].append(v)
    return pools


def _by_event(articles: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for a in articles:
        out.setdefault(a["event_id"], []).append(a)
    return out


def _ask(r: random.Random, ev: Event, key: str, text: str, pools: dict, by_event: dict) -> dict:
    """One question record: the latest value right, stale values and close neighbours as distractors."""
    hist = history(ev)
    answer, stale = hist[key][-1], hist[key][:-1][::-1]
    kind = ev.kinds[key]
    m0 = ev.mapping(ev.stages[0])
    near = [m0[c] for c in SIBLINGS.get(ev.kind, {}).get(kind, [])]
    pool = pools[kind]
    if kind == "date":
        pool = sorted(pool, key=lambda v: abs(MONTHS_DAYS[v.split()[0]] + int(v.split()[1]) - _day(answer)))[:10]
    choices = [answer, *_distractors(r, answer, stale, near, pool)]
    r.shuffle(choices)
    sources = [a["id"] for a in by_event[ev.id] if ev.stages[a["_stage"]].values[key] == answer and answer in a["text"]]
    return {
        "question": text,
        "choices": choices,
        "answer": choices.index(answer),
        "answer_text": answer,
        "source_ids": sources,
        "event_id": ev.id,
        "fact": key,
        "updated": bool(stale),
        "stale_answers": stale,
    }


def make_questions(r: random.Random, events: list[Event], articles: list[dict]) -> list[dict]:
    """The set's first questions: one per updated fact and a sample of the plain ones. Frozen: published
    figures rest on them, so this draws exactly as it always did."""
    pools, by_event = _pools(events), _by_event(articles)
    asked: set[str] = set()
    out = []
    for ev in events:
        hist = history(ev)
        updated = [k for k in ev.spec["questions"] if len(hist[k]) > 1]
        plain = [k for k in ev.spec["questions"] if len(hist[k]) == 1]
        # Events without updates get one or two questions, updated ones mostly one more: a third or more is updates.
        keys = updated + r.sample(plain, min(len(plain), int(r.random() < 0.6) if updated else r.randint(1, 2)))
        m0 = ev.mapping(ev.stages[0])
        for key in keys:
            templates = [cap(t.format(**m0)) for t in ev.spec["questions"][key]]
            free = [t for t in templates if t not in asked]
            if not free:
                continue
            text = r.choice(free)
            asked.add(text)
            out.append(_ask(r, ev, key, text, pools, by_event))
    return out


def more_questions(r: random.Random, events: list[Event], articles: list[dict], earlier: list[dict]) -> list[dict]:
    """More held-out questions from their own random stream, so the earlier ones stay as they are: each fact
    not asked yet, and a second wording of each fact already asked (from the fact's templates and its
    ``more_questions`` wordings). Kept only where a source article holds the answer verbatim; no text twice."""
    pools, by_event = _pools(events), _by_event(articles)
    asked = {q["question"] for q in earlier}
    out = []
    for ev in events:
        m0 = ev.mapping(ev.stages[0])
        wordings = ev.spec.get("more_questions", {})
        for key, templates in ev.spec["questions"].items():
            texts = [cap(t.format(**m0)) for t in templates + wordings.get(key, [])]
            free = [t for t in dict.fromkeys(texts) if t not in asked]
            if not free:
                continue
            q = _ask(r, ev, key, r.choice(free), pools, by_event)
            if q["source_ids"]:
                asked.add(q["question"])
                out.append({**q, "extra": True})
    return out


def _day(value: str) -> int:
    month, day = value.split()
    return MONTHS_DAYS[month] + int(day)
