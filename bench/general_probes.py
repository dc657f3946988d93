"""Select the shipped general-knowledge probes: the hand-written candidates that the packaged SmolLM2-135M
answers correctly (multiple choice, mean choice log-likelihood), written to training/data/general_probes.jsonl
with the selection recorded beside it. One JSON line of figures.

    .venv/bin/python bench/general_probes.py [--data-dir .kup-bench]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

from _common import ROOT, emit

DATA = ROOT / "training" / "data"


def candidates() -> list[dict]:
    out = []
    for line in (DATA / "general_probes_candidates.txt").read_text(encoding="utf-8").splitlines():
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".kup-bench")
    args = parser.parse_args()
    from training.base_model import load_base
    from training.probes import answers, write_probes

    started = time.perf_counter()
    base = load_base(None, args.data_dir, device="cpu")
    probes = candidates()
    right = answers(base.model, base.tokenizer, probes, device="cpu")
    kept = [p for p, ok in zip(probes, right, strict=True) if ok]
    write_probes(DATA / "general_probes.jsonl", kept)
    selection = {
        "model": "SmolLM2-135M-Instruct (packaged GGUF, de-quantized fp32)",
        "scoring": "multiple choice, mean log-likelihood of ' choice' after 'Question: ...\\nAnswer:'",
        "candidates": len(probes),
        "kept": len(kept),
        "dropped": [p["question"] for p, ok in zip(probes, right, strict=True) if not ok],
    }
    (DATA / "general_probes.selection.json").write_text(json.dumps(selection, indent=2) + "\n")
    emit(
        "general_probes",
        {"candidates": len(probes), "kept": len(kept), "seconds": round(time.perf_counter() - started, 1)},
    )


if __name__ == "__main__":
    main()
