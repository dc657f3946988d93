"""Answers from fresh knowledge: retrieve passages, prompt the model (base + champion adapter), cite sources."""

from answering.citations import Citation
from answering.decode import choices_logprobs, retrieval_log_weights, token_mixture
from answering.prompt import NOT_FOUND, Passage, closed_book_prompt, fit_passages, rag_prompt
from answering.reader import LanguageModel, LoadedModel
from answering.requests import MODES
from answering.service import RAG_TOKEN_TEMPERATURE, Answer, Answerer

__all__ = [
    "MODES",
    "NOT_FOUND",
    "RAG_TOKEN_TEMPERATURE",
    "Answer",
    "Answerer",
    "Citation",
    "LanguageModel",
    "LoadedModel",
    "Passage",
    "choices_logprobs",
    "closed_book_prompt",
    "fit_passages",
    "rag_prompt",
    "retrieval_log_weights",
    "token_mixture",
]
