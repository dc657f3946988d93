"""Events, their stages (first report and follow-ups that change a fact) and the syndicated articles of each stage.

A stage is one story: a list of paragraphs whose sentences each have several wordings. The outlet that
breaks it uses its own choice of wordings; other outlets copy it verbatim (wire pickups: same text,
other URL), lightly edited (most wordings kept, own house style) or rewritten (few wordings kept,
paragraphs reordered, a different share of the background).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import prose
from .kinds import CLOSURE, ELECTION, LAYOFFS, MATCH, draw_closure, draw_election, draw_layoffs, draw_match
from .more_kinds import (
    APPOINTMENT,
    CONTRACT,
    FESTIVAL,
    FIRE,
    LAUNCH,
    draw_appointment,
    draw_contract,
    draw_festival,
    draw_fire,
    draw_launch,
)
from .outlets import OUTLETS, Outlet, cap, dateline, headline, opener, url
from .world import DAYS, FIRST, LAST, TOWNS, Town, World, date_text, day_date, weekday

# kind: (draw, spec, how many events)
KINDS = {
    "layoffs": (draw_layoffs, LAYOFFS, 14),
    "closure": (draw_closure, CLOSURE, 13),
    "election": (draw_election, ELECTION, 9),
    "match": (draw_match, MATCH, 13),
    "launch": (draw_launch, LAUNCH, 12),
    "appointment": (draw_appointment, APPOINTMENT, 12),
    "festival": (draw_festival, FESTIVAL, 10),
    "contract": (draw_contract, CONTRACT, 12),
    "fire": (draw_fire, FIRE, 11),
}
RELATED = {
    "layoffs": "It follows news that {company} will cut {jobs} jobs at its {site} in {town}.",
    "closure": "Elsewhere in the region, the {name} in {town} is due to close on {start} for {weeks}.",
    "election": "In the neighbouring contest in {town}, {winner} was elected mayor by {margin}.",
    "match": "In the same round, {winner} won {score} when {home} played {away}.",
    "launch": "A rival, {company}, is selling its {product} {device} for {price}.",
    "appointment": "Separately, {appointee} has been named {role} of {inst}.",
    "festival": "The {fest}, headlined by {headliner}, opens on {opening}.",
    "contract": "{contractor} is also building a {facility} in {town}, at a cost of {cost}.",
    "fire": "In a separate fire, {injured} were hurt at {place} in {town}.",
}
GENERAL = [
    "It is the latest in a string of announcements that have kept {town} in the regional headlines this autumn.",
    "The news was the main topic of conversation in cafés and on the market square in {town} on {weekday}.",
    "Regional newspapers and radio stations have followed the story closely.",
    "Questions about the decision were raised at a meeting of the regional assembly in {region}.",
    "Local councillors from all parties said they wanted more information before taking a view.",
    "A spokesperson for the regional assembly said it was monitoring the situation.",
    "Community groups in {town} have set up a page online to share information.",
    "The local member of the regional assembly said she had written to those involved asking for clarity.",
    "Several readers wrote to this newspaper to share their own experiences.",
    "Those involved have promised to publish more details in the coming weeks.",
    "Shopkeepers on the high street said they had talked about little else.",
    "Some residents said they had first heard the news on social media before any official statement.",
]


@dataclass
class Stage:
    day: int
    values: dict[str, str]
    changed: list[str]
    prev: dict[str, str]
    reason: str


@dataclass
class Event:
    id: str
    kind: str
    spec: dict
    ctx: dict
    kinds: dict[str, str]
    stages: list[Stage]

    @property
    def town(self) -> Town:
        return self.ctx["town"]

    def mapping(self, stage: Stage) -> dict:
        m = {k: v for k, v in self.ctx.items() if k != "town"}
        m.update(town=self.town.name, region=self.town.region, **stage.values)
        m.update({f"old_{k}": v for k, v in stage.prev.items()})
        m.update(weekday=weekday(stage.day), reason=stage.reason)
        if self.kind == "match":
            m["loser_now"] = self.ctx["away"] if stage.values["winner"] == self.ctx["home"] else self.ctx["home"]
        return {k: v.format(**m) if isinstance(v, str) and "{" in v else v for k, v in m.items()}


@dataclass
class Story:
    id: str
    event: Event
    stage: Stage
    index: int
    heads: list[str]
    core: list[list[list[str]]]  # lede first, then fact and quote paragraphs every copy keeps
    extra: list[list[list[str]]]  # background paragraphs an outlet may keep or drop
    m: dict = field(default_factory=dict)


def make_events(r: random.Random, w: World) -> list[Event]:
    events = []
    for kind, (draw, spec, count) in KINDS.items():
        used: list[str] = []
        for i in range(count):
            start = r.randint(0, 40)
            d = draw(r, w, start, used)
            stages = [Stage(start, d.values, [], {}, "")]
            for changes, reason in d.changes:
                day = stages[-1].day + r.randint(2, 12)
                prev = stages[-1].values
                changed = [k for k, v in changes.items() if v != prev[k]]
                if day > DAYS - 3 or not changed:
                    break
                stages.append(Stage(day, {**prev, **changes}, changed, prev, reason))
            events.append(Event(f"{kind}-{i + 1:02d}", kind, spec, d.ctx, d.kinds, stages))
    return events


def _variants(templates: list[str], m: dict) -> list[str]:
    return [cap(t.format(**m)) if t else "" for t in templates]


def _quote(r: random.Random, who: tuple[str, str], lines: list[str], m: dict, used: set[str]) -> list[list[str]]:
    """A quote paragraph from lines not yet quoted in this story."""
    free = [line.format(**m) for line in lines if line not in used]
    picked = r.sample(free, 2)
    used.update(line for line in lines if line.format(**m) in picked)
    return prose.quote(r, who[0].format(**m), who[1].format(**m), picked)


def build_story(r: random.Random, ev: Event, index: int, events: list[Event]) -> Story:
    stage, spec = ev.stages[index], ev.spec
    m = ev.mapping(stage)
    if index == 0:
        heads = _variants(spec["headline"], m)
        lede = [_variants(spec["lede"], m)]
    else:
        key = next(k for k in stage.changed if k in spec["change"])
        change = spec["change"][key]
        heads = _variants(change["headline"], m)
        lede = [_variants(change["lede"], m), _variants(change["recap"], m)]
    facts = [_variants(f, m) for f in spec["facts"]]
    quoted: set[str] = set()
    core = [lede, facts[:2], _quote(r, spec["official"], spec["official_lines"], m, quoted), facts[2:]]
    town = ev.town
    used: set[int] = set()
    official = spec["official"][0].format(**m)
    general = r.sample(GENERAL, 6)
    extra = [
        prose.context_paragraph(r, spec["topic"], town, used),
        prose.town_paragraph(r, town),
        _quote(r, spec["critic"], spec["critic_lines"], m, quoted),
        prose.context_paragraph(r, spec["topic"], town, used),
        prose.profile_paragraph(r, official, town, r.choice(TOWNS)[0]),
        prose.resident_paragraph(r, spec["topic"], _person(r), town),
        [prose.vary(r, line.format(**m)) for line in general[:3]],
        prose.stats_paragraph(r, town),
        _quote(r, spec["official"], spec["official_lines"], m, quoted),
        prose.chronicle_paragraph(r, town),
        prose.context_paragraph(r, spec["topic"], town, used),
        prose.common_paragraph(r, _person(r), town),
        _quote(r, spec["critic"], spec["critic_lines"], m, quoted),
        [prose.vary(r, line.format(**m)) for line in general[3:]],
        prose.stats_paragraph(r, town),
        prose.resident_paragraph(r, spec["topic"], _person(r), town),
        prose.chronicle_paragraph(r, town),
        prose.common_paragraph(r, _person(r), town),
        prose.town_paragraph(r, town),
        prose.next_paragraph(r, town),
    ]
    others = [o for o in events if o.kind == ev.kind and o is not ev and o.stages[0].day < stage.day]
    if others:
        other = r.choice(others)
        current = [s for s in other.stages if s.day <= stage.day][-1]
        extra.insert(2, [[RELATED[ev.kind].format(**other.mapping(current))]])
    if index:
        first = [[f"The story was first reported on {date_text(ev.stages[0].day)}."]]
        extra.insert(0, first)
    return Story(f"{ev.id}-s{index + 1}", ev, stage, index, heads, core, extra, m)


def _person(r: random.Random) -> str:
    """A passer-by's name (may repeat across stories, as common names do)."""
    return f"{r.choice(FIRST)} {r.choice(LAST)}"


@dataclass
class Copy:
    outlet: Outlet
    published: datetime
    title: str
    text: str
    url: str = ""


def render(
    r: random.Random, story: Story, outlet: Outlet, when: datetime, keep: float, base: dict, shuffle: bool
) -> Copy:
    """One outlet's version of a story: wordings kept with probability keep (else another wording)."""

    def pick(key: tuple, variants: list[str]) -> str:
        if key not in base:
            base[key] = r.randrange(len(variants))
        i = base[key]
        if r.random() >= keep and len(variants) > 1:
            i = r.choice([j for j in range(len(variants)) if j != i])
        return variants[i]

    def para(tag: str, pi: int, sentences: list[list[str]]) -> str:
        return " ".join(s for si, v in enumerate(sentences) if (s := pick((tag, pi, si), v)))

    core = [para("core", i, p) for i, p in enumerate(story.core)]
    if shuffle and r.random() < 0.5:
        core[1], core[3] = core[3], core[1]
    order = list(range(len(story.extra)))
    lo, hi = outlet.length
    n = min(len(order), r.randint(lo, hi))
    if shuffle:
        r.shuffle(order)
        order = sorted(order[:n])
        r.shuffle(order)
    else:
        order = order[:n]
    extra = [para("extra", i, story.extra[i]) for i in order]
    core[0] = (
        dateline(outlet, story.event.town.name, when) + opener(outlet, story.event.spec["topic"], story.m) + core[0]
    )
    paragraphs = core[:2] + extra[:2] + core[2:] + extra[2:]
    reporter = r.choice(outlet.staff)
    if outlet.byline:
        paragraphs.insert(0, f"By {reporter}")
    paragraphs.append(
        outlet.signoff.format(reporter=reporter, editor=r.choice(outlet.editors), region=story.event.town.region)
    )
    title = headline(outlet, pick(("head",), story.heads), story.event.spec["topic"], story.index > 0)
    return Copy(outlet, when, title, "\n\n".join(p for p in paragraphs if p))


def publish(r: random.Random, story: Story, end: datetime) -> list[Copy]:
    """The breaking outlet's article and its syndicated copies, with times and URLs."""
    first = datetime.combine(day_date(story.stage.day), datetime.min.time()) + timedelta(
        hours=r.randint(6, 20), minutes=r.randrange(60)
    )
    origin = r.choice(OUTLETS)
    base: dict = {}
    copies = [render(r, story, origin, first, 1.0, base, False)]
    n = (
        r.choices([0, 1, 2, 3, 4], [12, 30, 30, 20, 8])[0]
        if story.index == 0
        else r.choices([0, 1, 2, 3], [30, 35, 25, 10])[0]
    )
    for outlet in r.sample([o for o in OUTLETS if o is not origin], n):
        when = min(end, first + timedelta(hours=r.randint(1, 30), minutes=r.randrange(60)))
        pickup = origin.dateline == "wire" and outlet.name in ("Meridian Daily Post", "The Evening Lantern")
        if (pickup and r.random() < 0.6) or r.random() < 0.08:
            same = copies[0]
            title = (
                same.title
                if r.random() < 0.5
                else headline(outlet, r.choice(story.heads), story.event.spec["topic"], story.index > 0)
            )
            copies.append(Copy(outlet, when, title, same.text))
        elif r.random() < 0.55:
            copies.append(render(r, story, outlet, when, 0.7, base, False))
        else:
            copies.append(render(r, story, outlet, when, 0.2, base, True))
    for c in copies:
        c.url = url(r, c.outlet, c.title, story.event.spec["topic"], c.published)
    return copies
