"""Closed-book probes: multiple-choice questions scored by mean choice log-likelihood, and FUAR.

Each update keeps the probes about its documents (held out from training, ``training.synthesis``) in
``probes.jsonl`` beside its adapter; a fixed general-knowledge set ships in ``training/data``. A probe is
answered right when its correct choice has the highest mean token log-likelihood after
"Question: ...\\nAnswer:" (cheaper on a CPU than generating). FUAR (Jang et al., ICLR 2022, "Towards
Continual Knowledge Learning") is forgotten / (updated + acquired): probes the champion answered right
and the candidate gets wrong, per probe newly answered right.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from training.corpus import Sample

GENERAL_PROBES = Path(__file__).parent / "data" / "general_probes.jsonl"
GENERAL_CANDIDATES = Path(__file__).parent / "data" / "general_probes_candidates.txt"  # question|right|wrong...
PROBES_FILE = "probes.jsonl"


def read_probes(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_probes(path: Path, probes: Sequence[dict]) -> None:
    path.write_text("".join(json.dumps(p) + "\n" for p in probes), encoding="utf-8")


def general_probes() -> list[dict]:
    """The shipped general-knowledge probes (questions the packaged base model answers correctly)."""
    return read_probes(GENERAL_PROBES)


def anchor_questions() -> list[dict]:
    """General questions that are not probes (the candidates the probe selection left out), with their choices:
    the answer anchor (``training.methods.answer_anchor``) holds the model's answers to these, so the probes stay
    held out."""
    probes = {p["question"] for p in general_probes()}
    out: dict[str, dict] = {}
    for line in GENERAL_CANDIDATES.read_text(encoding="utf-8").splitlines():
        question, *choices = (part.strip() for part in line.split("|"))
        if question and choices and question not in probes and question not in out:
            out[question] = {"question": question, "choices": choices}
    return list(out.values())


def anchor_samples(tokenizer, questions: Sequence[dict]) -> list[Sample]:
    """The anchor's token samples: ``Question: ...\nAnswer: <choice>`` for each choice, the question as context
    (no end-of-text token)."""
    samples = []
    for q in questions:
        for context, tail in choice_tokens(tokenizer, q):
            samples.append(Sample(tuple(context + tail), "anchor", context=len(context)))
    return samples


def choice_tokens(tokenizer, probe: dict) -> list[tuple[list[int], list[int]]]:
    """Per choice, the token ids of the question prompt and of the choice that follows it."""
    context = tokenizer(prompt(probe["question"]), add_special_tokens=False)["input_ids"]
    return [(context, tokenizer(f" {choice}", add_special_tokens=False)["input_ids"]) for choice in probe["choices"]]


def prompt(question: str) -> str:
    return f"Question: {question}\nAnswer:"


def answers(model, tokenizer, probes: Sequence[dict], *, device: str, batch_size: int = 32) -> list[bool]:
    """Whether ``model`` picks each probe's right choice (highest mean log-likelihood of the choice tokens)."""
    import torch

    rows = []  # (probe index, choice index, ids, first choice position)
    for i, p in enumerate(probes):
        for j, (context, tail) in enumerate(choice_tokens(tokenizer, p)):
            rows.append((i, j, context + tail, len(context)))
    scores: dict[tuple[int, int], float] = {}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            group = rows[start : start + batch_size]
            longest = max(len(r[2]) for r in group)
            ids = torch.full((len(group), longest), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for k, (_, _, seq, _) in enumerate(group):
                ids[k, : len(seq)] = torch.tensor(seq)
                mask[k, : len(seq)] = 1
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            for k, (i, j, seq, first) in enumerate(group):
                # Normalise only the few positions that predict the choice (not the whole prompt).
                logprobs = torch.log_softmax(logits[k, first - 1 : len(seq) - 1].float(), dim=-1)
                targets = torch.tensor(seq[first:], device=logprobs.device)
                scores[(i, j)] = float(logprobs.gather(1, targets[:, None]).mean())
    out = []
    for i, p in enumerate(probes):
        best = max(range(len(p["choices"])), key=lambda j: scores[(i, j)])
        out.append(best == p["answer"])
    return out


def accuracy(right: Sequence[bool]) -> float | None:
    return sum(right) / len(right) if right else None


def fuar(before: dict[str, Sequence[bool]], after: dict[str, Sequence[bool]]) -> dict:
    """Forgotten (earlier and general probes right before, wrong after), updated (earlier probes wrong before,
    right after), acquired (new probes wrong before, right after), and FUAR = forgotten / (updated + acquired);
    None when nothing was gained or lost, infinity when something was lost and nothing gained."""

    def pairs(name: str):
        return zip(before.get(name, ()), after.get(name, ()), strict=True)

    forgotten = sum(b and not a for s in ("earlier", "general") for b, a in pairs(s))
    updated = sum(a and not b for b, a in pairs("earlier"))
    acquired = sum(a and not b for b, a in pairs("new"))
    gained = updated + acquired
    value = forgotten / gained if gained else (float("inf") if forgotten else None)
    return {"forgotten": forgotten, "updated": updated, "acquired": acquired, "fuar": value}


def probe_table(base: dict[str, list[bool]], champion: dict[str, list[bool]], candidate: dict[str, list[bool]]):
    """One row per probe set: its size and closed-book accuracy for base, champion and candidate."""
    rows = []
    for name, right in candidate.items():
        acc_champion, acc_candidate = accuracy(champion[name]), accuracy(right)
        rows.append(
            {
                "set": name,
                "count": len(right),
                "acc_base": accuracy(base[name]),
                "acc_champion": acc_champion,
                "acc_candidate": acc_candidate,
                "change": None if acc_champion is None else round(acc_candidate - acc_champion, 4),
            }
        )
    return rows
