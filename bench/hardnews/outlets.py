"""Made-up outlets and their house styles: headline, byline, dateline, lede, length, sign-off and URL shape."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import datetime

KICKERS = {
    "economy": "Jobs",
    "transport": "Roads",
    "politics": "Elections",
    "sport": "Football",
    "tech": "Tech",
    "institution": "Appointments",
    "culture": "Festivals",
    "construction": "Building",
    "emergency": "Fire",
}
SECTIONS = {
    "economy": "business",
    "transport": "local",
    "politics": "politics",
    "sport": "sport",
    "tech": "business",
    "institution": "local",
    "culture": "culture",
    "construction": "local",
    "emergency": "local",
}
SMALL = {"a", "an", "the", "of", "in", "on", "at", "to", "for", "by", "and", "as", "v", "with", "from"}

SCENES = {
    "economy": "Outside the gates of the {site} on {weekday} morning, workers gathered in small groups, "
    "phones in hand.",
    "transport": "At rush hour on {weekday}, the queue of cars waiting to cross the river in {town} stretched back "
    "past the petrol station.",
    "politics": "The hall was nearly empty by the time the last ballot boxes were opened in {town}.",
    "sport": "The floodlights came on early at {ground}, where a cold wind blew in from the hills.",
    "tech": "The demonstration room was packed with engineers, retailers and a handful of curious shoppers.",
    "institution": "The announcement came in a short statement read out in a crowded meeting room in {town}.",
    "culture": "In a field on the edge of {town}, the first marquees are already going up.",
    "construction": "For now the site in {town} is little more than a fenced-off patch of gravel and puddles.",
    "emergency": "The smell of smoke still hung over {town} hours after the first alarm was raised.",
}
QUESTIONS = {
    "economy": "What does this mean for a town that has relied on the {site} for decades?",
    "transport": "How will {town} cope without one of its main river crossings?",
    "politics": "Who will run {town} for the next four years?",
    "sport": "Can anyone stop the pace-setters in {cup}?",
    "tech": "Is there room for another {device} in a crowded market?",
    "institution": "Who will steer {inst} through a difficult few years?",
    "culture": "Who will draw the crowds to {town} this year?",
    "construction": "Will {town} finally get the building it was promised?",
    "emergency": "How did a fire on {road} become one of the worst in {town} for years?",
}


@dataclass
class Outlet:
    name: str
    domain: str
    headline: str  # title | sentence | kicker | caps | wire
    dateline: str  # caps | wire | none | place
    lede: str  # straight | scene | question
    byline: bool
    signoff: str
    length: tuple[int, int]  # how many optional paragraphs it keeps
    staff: list[str] = field(default_factory=list)
    editors: list[str] = field(default_factory=list)


OUTLETS = [
    Outlet(
        "Harbour Gazette",
        "harbourgazette.example",
        "title",
        "caps",
        "straight",
        False,
        "Reporting by {reporter} for the Harbour Gazette.",
        (15, 21),
    ),
    Outlet(
        "Northline Courier",
        "northlinecourier.example",
        "kicker",
        "none",
        "scene",
        True,
        "Have a story? Write to the newsdesk at news@northlinecourier.example.",
        (16, 21),
    ),
    Outlet(
        "Valley Ledger Wire",
        "valleyledger.example",
        "wire",
        "wire",
        "straight",
        False,
        "(Reporting by {reporter}; editing by {editor})",
        (9, 15),
    ),
    Outlet(
        "Meridian Daily Post",
        "meridianpost.example",
        "sentence",
        "place",
        "question",
        True,
        "{reporter} covers {region} for the Meridian Daily Post.",
        (14, 21),
    ),
    Outlet(
        "The Evening Lantern",
        "eveninglantern.example",
        "caps",
        "none",
        "straight",
        False,
        "Copyright The Evening Lantern. All rights reserved.",
        (5, 10),
    ),
    Outlet(
        "Coastline Business Review",
        "coastlinereview.example",
        "sentence",
        "caps",
        "scene",
        True,
        "Additional reporting by {editor}.",
        (12, 19),
    ),
]


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:70].strip("-")


def cap(text: str) -> str:
    """First letter upper-cased, and "Stores's" written "Stores'"."""
    return re.sub(r"(\w)s's\b", r"\1s'", text[:1].upper() + text[1:])


def headline(outlet: Outlet, text: str, topic: str, followup: bool) -> str:
    text = cap(text)
    if outlet.headline == "title":
        words = text.split()
        return " ".join(w if (i and w.lower() in SMALL) or not w[:1].isalpha() else cap(w) for i, w in enumerate(words))
    if outlet.headline == "kicker":
        return f"{KICKERS[topic]}: {text}"
    if outlet.headline == "caps":
        return f"{KICKERS[topic].upper()} | {text}"
    if outlet.headline == "wire":
        return f"UPDATE 1-{text}" if followup else text
    return text


def dateline(outlet: Outlet, town: str, when: datetime) -> str:
    if outlet.dateline == "caps":
        return f"{town.upper()} — "
    if outlet.dateline == "wire":
        return f"{town.upper()}, {when:%b} {when.day} (VLW) - "
    if outlet.dateline == "place":
        return f"{town}, {when.day} {when:%B}: "
    return ""


def opener(outlet: Outlet, topic: str, m: dict) -> str:
    """The house lede: an anecdotal scene or a question placed before the news, or nothing."""
    if outlet.lede == "scene":
        return SCENES[topic].format(**m) + " "
    if outlet.lede == "question":
        return QUESTIONS[topic].format(**m) + " "
    return ""


def url(r: random.Random, outlet: Outlet, title: str, topic: str, when: datetime) -> str:
    s, sec = slug(title), SECTIONS[topic]
    base = f"https://{outlet.domain}"
    if outlet.domain.startswith("harbour"):
        return f"{base}/news/{when:%Y/%m/%d}/{s}"
    if outlet.domain.startswith("northline"):
        return f"{base}/{sec}/{s}-{r.randrange(100000, 999999)}"
    if outlet.domain.startswith("valley"):
        return f"{base}/wire/{when:%Y%m%d}-{r.getrandbits(32):08x}"
    if outlet.domain.startswith("meridian"):
        return f"{base}/{sec}/{when:%Y/%m}/{s}.html"
    if outlet.domain.startswith("evening"):
        return f"{base}/news/{r.randrange(10000, 99999)}/{s}"
    return f"{base}/articles/{s}"
