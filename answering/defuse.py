"""Making outside text inert in a prompt: it can never become a special token or a passage delimiter.

Passage text, titles and questions come from feeds, databases and callers. Connectors already break
``<|`` in documents, but a store written before that, an SQL row or a question reaches prompts by
other roads, so answering holds on its own: every spelling of the tokenizer's special and added tokens
(``<|im_end|>``, ``<filename>``), the generic ``<|...|>`` shape and the passage delimiters are broken
in any letter case and in their HTML-entity and full-width spellings. Broken means the opening ``<``
becomes ``‹`` (U+2039), which reads the same to a person and never starts a token or a tag.
"""

from __future__ import annotations

import re
from functools import lru_cache

OPEN = "\u2039"  # '‹': what a defused '<' becomes
_LT = r"(?:<|&lt;?|&#0*60;?|&#x0*3c;?|\uff1c|\ufe64)"  # '<', its HTML entities and full-width forms
_DELIMITER = re.compile(_LT + r"(?=\s*/?\s*passage)", re.IGNORECASE)  # <passage, </PASSAGE, < / passage
_CHAT_TOKEN = re.compile(_LT + r"(?=\s*[|\uff5c])", re.IGNORECASE)  # <|im_start|>, DeepSeek's <｜...｜>


def special_spellings(tokenizer) -> tuple[str, ...]:
    """Every string ``tokenizer`` turns into one special token: its special tokens and its added tokens."""
    if tokenizer is None:
        return ()
    found = set(getattr(tokenizer, "all_special_tokens", None) or [])
    added = getattr(tokenizer, "get_added_vocab", None)
    if callable(added):
        found.update(added())
    return tuple(sorted(s for s in found if isinstance(s, str) and len(s) > 1 and not s.isspace()))


@lru_cache(maxsize=16)
def _pattern(spellings: tuple[str, ...]) -> re.Pattern[str] | None:
    longest_first = sorted(spellings, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, longest_first)), re.IGNORECASE) if spellings else None


def _break(match: re.Match[str]) -> str:
    """A token's spelling with its first character changed, so that no tokenizer matches it any more."""
    token = match.group()
    return OPEN + token[1:] if token[0] == "<" else token[0] + "\u2060" + token[1:]  # U+2060: word joiner


def defuse(text: str, tokenizer=None) -> str:
    """``text`` that cannot close its passage block, open another, or become a special token of ``tokenizer``.

    Idempotent: defused text is left as it is.
    """
    pattern = _pattern(special_spellings(tokenizer))
    if pattern is not None:
        text = pattern.sub(_break, text)
    return _DELIMITER.sub(OPEN, _CHAT_TOKEN.sub(OPEN, text))


def attribute(value: str, tokenizer=None) -> str:
    """``value`` made fit for an attribute of a passage's opening tag: one line, no quote or bracket to end it."""
    flat = " ".join(defuse(value, tokenizer).split())
    return flat.replace('"', "'").replace("<", OPEN).replace(">", "\u203a")
