"""Answers from fresh knowledge: retrieve passages, prompt the model (base + champion adapter), cite sources."""

from answering.prompt import Passage
from answering.service import MODES, Answer, Answerer, Citation, LanguageModel

__all__ = ["MODES", "Answer", "Answerer", "Citation", "LanguageModel", "Passage"]
