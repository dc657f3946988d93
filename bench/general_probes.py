"""Select the shipped general-knowledge probes (``training.general_probes``): the hand-written candidates that
the packaged SmolLM2-135M answers correctly (multiple choice, mean choice log-likelihood), written to
training/data/general_probes.jsonl with the selection recorded beside it. One JSON line of figures.

    .venv/bin/python bench/general_probes.py [--data-dir .kup-bench]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench._common import ROOT, emit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".kup-bench")
    args = parser.parse_args()
    from training.base_model import load_base
    from training.general_probes import select_general_probes

    started = time.perf_counter()
    base = load_base(None, args.data_dir, device="cpu")
    selection = select_general_probes(base.model, base.tokenizer, device="cpu")
    selection.write()
    emit(
        "general_probes",
        {
            "candidates": len(selection.candidates),
            "kept": len(selection.kept),
            "seconds": round(time.perf_counter() - started, 1),
        },
    )


if __name__ == "__main__":
    main()
