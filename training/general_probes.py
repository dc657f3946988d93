"""Selecting the shipped general-knowledge probes (``training/data/general_probes.jsonl``).

The candidates are hand-written, one ``question|right|wrong...`` a line; the probes are the candidates the
packaged base model answers right (multiple choice, mean choice log-likelihood: ``training.probes.answers``),
so a probe a candidate adapter gets wrong was forgotten. The selection is recorded beside the probes.
``bench/general_probes.py`` runs it with the packaged SmolLM2-135M.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from training.probes import GENERAL_CANDIDATES, GENERAL_PROBES, answers, write_probes

SELECTION_FILE = "general_probes.selection.json"  # beside the probes: which model kept which candidates
MODEL = "SmolLM2-135M-Instruct (packaged GGUF, de-quantized fp32)"
SCORING = "multiple choice, mean log-likelihood of ' choice' after 'Question: ...\\nAnswer:'"


def candidates(path: Path = GENERAL_CANDIDATES) -> list[dict]:
    """The candidate probes, each with its choices in a fixed order and the right one's index."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        question, *choices = line.split("|")
        # The right answer is written first; its position is then fixed by a hash so it is not always A.
        slot = int(hashlib.sha256(question.encode()).hexdigest(), 16) % len(choices)
        ordered = choices[1:]
        ordered.insert(slot, choices[0])
        pid = "gk-" + hashlib.sha256(question.encode()).hexdigest()[:8]
        out.append({"id": pid, "question": question, "choices": ordered, "answer": slot, "kind": "general"})
    return out


@dataclass(frozen=True)
class ProbeSelection:
    """The candidates and the probes kept from them (those the model answered right)."""

    candidates: list[dict]
    kept: list[dict]
    dropped: list[str]  # the questions of the candidates the model got wrong

    def record(self) -> dict:
        return {
            "model": MODEL,
            "scoring": SCORING,
            "candidates": len(self.candidates),
            "kept": len(self.kept),
            "dropped": self.dropped,
        }

    def write(self, directory: Path = GENERAL_PROBES.parent) -> None:
        """The probes and the record of their selection, into ``directory`` (the shipped data by default)."""
        write_probes(directory / GENERAL_PROBES.name, self.kept)
        (directory / SELECTION_FILE).write_text(json.dumps(self.record(), indent=2) + "\n")


def select_general_probes(model, tokenizer, *, device: str) -> ProbeSelection:
    """The candidates ``model`` answers right become the probes."""
    probes = candidates()
    right = answers(model, tokenizer, probes, device=device)
    return ProbeSelection(
        candidates=probes,
        kept=[p for p, ok in zip(probes, right, strict=True) if ok],
        dropped=[p["question"] for p, ok in zip(probes, right, strict=True) if not ok],
    )
