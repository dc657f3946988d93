"""What an answer is: its text, the sources it cites, the passages it read, and how it was made.

Plain data with no model behind it, so that a client (``kup ask`` reading a running ``kup api``) holds the same
``Answer`` the answerer built, rebuilt from its JSON by ``Answer.from_dict``, without importing torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from answering.prompt import Passage


@dataclass
class Citation:
    number: int
    title: str
    url: str | None
    published: str | None
    inferred: bool = False  # the model wrote no [n]; the passage was matched to the answer by its words
    urls: list[str] = field(default_factory=list)  # every outlet's URL of a syndicated story
    sources: list[str] = field(default_factory=list)  # every outlet that carried it


@dataclass
class Answer:
    question: str
    mode: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    adapter: str | None = None  # the champion adapter used, if any
    timings: dict[str, float] = field(default_factory=dict)  # retrieve_ms, first_token_ms, total_ms, tokens_per_s
    notes: list[str] = field(default_factory=list)  # sentences on how far to trust it (a future date, a language)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        """The answer ``as_dict`` wrote (fields this version does not know are left out)."""
        citations = [Citation(**_known(Citation, c)) for c in data.get("citations") or []]
        passages = [Passage(**_known(Passage, p)) for p in data.get("passages") or []]
        return cls(**{**_known(cls, data), "citations": citations, "passages": passages})


def _known(kind: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(kind)}
    return {k: v for k, v in data.items() if k in names}
