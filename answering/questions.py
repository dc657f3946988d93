"""What a question says beyond its words that changes how far an answer can be trusted: the dates it names
and the language it is written in. Each becomes one sentence beside the answer, never a refusal by itself
(an article published before a date can say what was planned for it)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
            ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"),
            ("november", "nov"), ("december", "dec"),
        ]
    )
    for m in names
}  # fmt: skip
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_DAY_MONTH_YEAR = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH})\.?,?\s+(\d{{4}})\b", re.IGNORECASE)
_MONTH_DAY_YEAR = re.compile(rf"\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.IGNORECASE)
_LANGUAGES = {"fr": "French", "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese", "nl": "Dutch"}


def named_dates(question: str) -> list[date]:
    """The calendar days a question names (2026-12-20, 20 December 2026, Dec. 20, 2026), in order."""
    found: list[tuple[int, date]] = []
    for pattern, order in ((_ISO, "ymd"), (_DAY_MONTH_YEAR, "dmy"), (_MONTH_DAY_YEAR, "mdy")):
        for m in pattern.finditer(question):
            parts = dict(zip(order, m.groups(), strict=True))
            month = int(parts["m"]) if parts["m"].isdigit() else _MONTHS[parts["m"].lower()]
            try:
                found.append((m.start(), date(int(parts["y"]), month, int(parts["d"]))))
            except ValueError:
                continue  # 31 February: not a day, so not a date the question names
    return [d for _, d in sorted(found)]


def future_note(question: str, as_of: datetime | None = None) -> str | None:
    """One sentence when the question names a day after the moment it is asked (``as_of``, default now)."""
    today = (as_of or datetime.now(UTC)).date()
    later = [d for d in named_dates(question) if d > today]
    if not later:
        return None
    return (
        f"The question names {later[0]:%d %B %Y}, which is after {today:%d %B %Y}: "
        "the passages can only say what was expected then, not what happened."
    )


_IDENTIFIER = None
_CANDIDATES = ("en", *_LANGUAGES, "sv", "da", "no", "fi", "pl", "cs", "ru", "uk", "tr", "ar", "zh", "ja", "ko", "el")


def language_note(question: str, *, confidence: float = 0.9) -> str | None:
    """One sentence when the question is clearly (``confidence``) not in English (the passages and models are)."""
    global _IDENTIFIER
    if len(re.findall(r"\w+", question)) < 3:
        return None  # too short to tell a language apart
    if _IDENTIFIER is None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        identifier.set_languages(list(_CANDIDATES))  # common languages only: short English reads as rare ones
        _IDENTIFIER = identifier
    language, probability = _IDENTIFIER.classify(question)
    if language == "en" or probability < confidence:
        return None
    name = _LANGUAGES.get(language, f"language '{language}'")
    return f"The question reads as {name}; the passages and the model are English, so ask it in English."
