"""How much was learned and how much forgotten: token-level NLL / perplexity per set, and a temporal report.

New-knowledge gain is the relative fall of NLL on the new documents; forgetting is the relative rise
on earlier updates' documents and on general text, each candidate against the champion it started
from. The temporal report (after Lazaridou et al., NeurIPS 2021, "Mind the Gap") shows perplexity by
month of publication: how stale the served model is.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from training.corpus import Sample
from training.trainer import batches, collate


@dataclass
class SetScore:
    nll: float  # mean negative log-likelihood per predicted token
    tokens: int

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.nll, 50.0))


def score(model, samples: Sequence[Sample], *, pad_id: int, device: str, batch_size: int = 8) -> SetScore:
    """Mean token NLL of ``model`` over ``samples`` (a fresh forward pass, no gradients)."""
    import torch

    if not samples:
        return SetScore(float("nan"), 0)
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for group in batches(sorted(samples, key=lambda s: len(s.ids)), batch_size):
            batch = collate(group, pad_id, device)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
            labels = batch["labels"][:, 1:]
            losses = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100, reduction="sum"
            )
            total += float(losses)
            count += int((labels != -100).sum())
    return SetScore(total / count if count else float("nan"), count)


def score_sets(model, sets: dict[str, Sequence[Sample]], *, pad_id: int, device: str) -> dict[str, SetScore]:
    return {name: score(model, samples, pad_id=pad_id, device=device) for name, samples in sets.items()}


def relative_change(before: float, after: float) -> float:
    """(after - before) / before: negative is a fall in NLL (learning), positive a rise (forgetting)."""
    return (after - before) / before if before else float("nan")


def metrics_table(
    base: dict[str, SetScore], champion: dict[str, SetScore], candidate: dict[str, SetScore]
) -> list[dict]:
    """One row per evaluation set: NLL and perplexity for each model, and the candidate's relative change."""
    rows = []
    for name in candidate:
        rows.append(
            {
                "set": name,
                "tokens": candidate[name].tokens,
                "nll_base": round(base[name].nll, 4),
                "nll_champion": round(champion[name].nll, 4),
                "nll_candidate": round(candidate[name].nll, 4),
                "ppl_champion": round(champion[name].perplexity, 3),
                "ppl_candidate": round(candidate[name].perplexity, 3),
                "rel_change": round(relative_change(champion[name].nll, candidate[name].nll), 5),
            }
        )
    return rows


def summary(rows: list[dict]) -> dict:
    """Gain on new data, forgetting on earlier and general data, and forgetting per unit of gain."""
    by_set = {r["set"]: r for r in rows}
    gain = -by_set["new"]["rel_change"] if "new" in by_set else None
    out = {
        "new_gain": gain,
        "new_heldout_gain": -by_set["new_heldout"]["rel_change"] if "new_heldout" in by_set else None,
        "earlier_forgetting": by_set["earlier"]["rel_change"] if "earlier" in by_set else None,
        "general_forgetting": by_set["general"]["rel_change"] if "general" in by_set else None,
    }
    worst = max((v for k, v in out.items() if k.endswith("forgetting") and v is not None), default=None)
    out["forgetting_to_gain"] = round(worst / gain, 4) if worst is not None and gain else None
    return out


def temporal_report(model, samples: Sequence[Sample], *, pad_id: int, device: str, per_month: int = 16) -> list[dict]:
    """Perplexity by month of publication (a few windows per month)."""
    months: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        if s.published is not None:
            months[s.published.strftime("%Y-%m")].append(s)
    report = []
    for month in sorted(months):
        picked = months[month][:per_month]
        result = score(model, picked, pad_id=pad_id, device=device)
        report.append({"month": month, "windows": len(picked), "perplexity": round(result.perplexity, 3)})
    return report
