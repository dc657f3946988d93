"""Answers from fresh knowledge: retrieve passages, prompt the model (base + champion adapter), cite sources.

The names below load on first use (PEP 562), so that a light module of this package (``answering.answer``,
``answering.chat``) can be imported by a client without loading torch and the models' code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_WHERE = {
    "Answer": "answering.answer",
    "Citation": "answering.answer",
    "choices_logprobs": "answering.decode",
    "retrieval_log_weights": "answering.decode",
    "token_mixture": "answering.decode",
    "NOT_FOUND": "answering.prompt",
    "Passage": "answering.prompt",
    "closed_book_prompt": "answering.prompt",
    "fit_passages": "answering.prompt",
    "rag_prompt": "answering.prompt",
    "LanguageModel": "answering.reader",
    "LoadedModel": "answering.reader",
    "MODES": "answering.requests",
    "RAG_TOKEN_TEMPERATURE": "answering.service",
    "Answerer": "answering.service",
}
__all__ = [
    "Answer",
    "Answerer",
    "Citation",
    "LanguageModel",
    "LoadedModel",
    "MODES",
    "NOT_FOUND",
    "Passage",
    "RAG_TOKEN_TEMPERATURE",
    "choices_logprobs",
    "closed_book_prompt",
    "fit_passages",
    "rag_prompt",
    "retrieval_log_weights",
    "token_mixture",
]

if TYPE_CHECKING:
    from answering.answer import Answer, Citation
    from answering.decode import choices_logprobs, retrieval_log_weights, token_mixture
    from answering.prompt import NOT_FOUND, Passage, closed_book_prompt, fit_passages, rag_prompt
    from answering.reader import LanguageModel, LoadedModel
    from answering.requests import MODES
    from answering.service import RAG_TOKEN_TEMPERATURE, Answerer


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'answering' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
