"""The language of a text, for the data checks: py3langid on its first 2,000 characters (light: no HTML parser)."""

from __future__ import annotations

import py3langid


def detect_language(text: str) -> str | None:
    """An ISO 639-1 code, or None for a text too short to tell."""
    if len(text.strip()) < 20:
        return None
    language, _score = py3langid.classify(text[:2000])
    return language
