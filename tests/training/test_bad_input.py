"""Bad input never passes the gate silently: documents with no extractable facts, a teacher that writes nonsense,
a general probe set cut short, and a teacher directory that cannot be loaded each end in a clear sentence or a
recorded, visible skip."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from rich.console import Console

from errors import ConfigError
from tests.conftest import tiny_llama
from tests.training.conftest import FAST, add_documents
from training import AdapterRegistry, Gate, judge, load_recipe, run_finetune
from training.finetune import _load_teacher, synthesis_checks
from training.synthesis import SynthesisCache, filter_paraphrase, synthesize

FACTLESS = [
    "The weather was mild and people walked along the river in the afternoon, talking quietly.",
    "Nothing much happened at the market today; stalls sold bread, cheese and apples as they always do.",
    "Residents said the park felt calmer than usual, and children played near the old fountain until dusk.",
]
ARTICLE = (
    "The Fennmoor Museum of Industry has named Aurel Halloran as its new director. Aurel Halloran will take up "
    "the post on October 12. Visitor numbers reached 174,000 last summer, the tourist board confirmed."
)


def test_documents_without_facts_are_a_visible_skip_and_the_gate_rejects_the_update(
    tmp_path, catalog, tiny_model_dir
) -> None:
    from datetime import UTC, datetime, timedelta

    from cli.views_training import print_finetune

    add_documents(catalog, FACTLESS, when=datetime.now(UTC) - timedelta(days=3))
    recipe = load_recipe(None, **{**FAST, "epochs": 1, "gate": {"probes": True}})
    outcome = run_finetune(catalog, tmp_path / "data", recipe, base_model=str(tiny_model_dir))

    assert outcome.status == "rejected"  # never a silent pass: no probes means nothing was shown to be learned
    assert any("probes about the new documents, but there are only 0" in r for r in outcome.verdict.reasons)
    synthesis = outcome.adapter.manifest["data"]["synthesis"]
    assert len(synthesis["skipped"]) == 3 and all("no extractable facts" in s["reason"] for s in synthesis["skipped"])
    assert any("none of the 3 document(s) has an extractable fact" in w for w in synthesis["warnings"])
    shown = [c for c in outcome.verdict.checks if c["expectation"].startswith("synthesis made questions")]
    assert shown == [
        {
            "expectation": "synthesis made questions for 0 of 3 trained document(s); skipped, no extractable facts: "
            + ", ".join(s["doc_id"] for s in synthesis["skipped"]),
            "passed": False,
        }
    ]
    assert AdapterRegistry(tmp_path / "data" / "adapters").champion() is None

    out = io.StringIO()
    result = {
        "status": outcome.status,
        "adapter": outcome.adapter.id,
        "summary": outcome.summary,
        "reasons": outcome.verdict.reasons,
        "data": outcome.data,
    }
    print_finetune(result, Console(file=out, width=300))
    assert "note: synthesis skipped 3 of 3 document(s): no extractable facts" in out.getvalue()
    assert "rejected: at least 8 probes about the new documents, but there are only 0" in out.getvalue()


def test_a_teacher_that_writes_nonsense_is_filtered_and_the_batch_says_so(tmp_path) -> None:
    model, tokenizer = tiny_llama(seed=3)  # untrained: its text is noise
    docs = [{"id": "museum", "title": "New director", "text": ARTICLE}]
    cache = SynthesisCache(tmp_path / "synthesis.sqlite")
    synth, report = synthesize(
        docs, cache, mode="teacher", paraphrases=2, qa=2, teacher=(model, tokenizer), teacher_name="noise", seed=1
    )
    assert report.teacher_kept == 0 and sum(report.teacher_dropped.values()) == 4
    assert [w for w in report.warnings if "teacher" in w] == [
        "the teacher (noise) wrote nothing usable: all 4 output(s) were dropped by the filters ("
        + ", ".join(f"{k} {v}" for k, v in sorted(report.teacher_dropped.items()))
        + "); only the deterministic augmentations were used"
    ]
    assert synth[0].qa and all(q["kind"] != "teacher" for q in synth[0].qa)  # the augmentations remain
    checks = synthesis_checks(report)
    assert checks[0] == {"expectation": "synthesis made questions for 1 of 1 trained document(s)", "passed": True}
    assert checks[1]["passed"] is False and "wrote nothing usable" in checks[1]["expectation"]
    _, again = synthesize(
        docs, cache, mode="teacher", paraphrases=2, qa=2, teacher=(model, tokenizer), teacher_name="noise", seed=1
    )
    assert again.cached == 1 and again.warnings == report.warnings  # a cached batch tells the same


def test_lowercase_nonsense_is_not_a_paraphrase() -> None:
    nonsense = "plin arvo mesta kolu vint drosse amble quorf trisk nalde opue venti"
    assert filter_paraphrase(nonsense, ARTICLE, set()) == "ungrounded"
    kept = "On October 12, Aurel Halloran becomes director of the Fennmoor Museum of Industry, the museum said."
    assert filter_paraphrase(kept, ARTICLE, set()) is None


def test_a_general_probe_set_cut_short_fails_the_gate_never_passes_unmeasured() -> None:
    nll = [{"set": "new", "nll_candidate": 2.0, "rel_change": -0.2}]
    new = {"set": "new", "count": 20, "change": 0.3}
    missing = judge(nll, Gate(), probes=[new], fuar=0.0)
    assert not missing.passed
    assert any(
        r.startswith("at least 50 general-knowledge probes, but there are only 0 (training/data/general_probes.jsonl")
        for r in missing.reasons
    )
    few = judge(nll, Gate(), probes=[new, {"set": "general", "count": 12, "change": 0.0}], fuar=0.0)
    assert not few.passed and any("but there are only 12" in r for r in few.reasons)
    enough = judge(nll, Gate(), probes=[new, {"set": "general", "count": 119, "change": 0.0}], fuar=0.0)
    assert enough.passed, enough.reasons


def test_a_teacher_directory_that_cannot_be_loaded_is_one_sentence(tmp_path) -> None:
    broken = tmp_path / "teacher"
    broken.mkdir()
    (broken / "config.json").write_text("{}")  # looks like a model directory, holds no model
    recipe = load_recipe(None, synthesis="teacher", teacher_model=str(broken))
    with pytest.raises(ConfigError, match=rf"teacher_model {broken} cannot be loaded as a causal language model"):
        _load_teacher(recipe, SimpleNamespace(device="cpu"))
    with pytest.raises(ConfigError, match="is not a local Hugging Face model directory"):
        load_recipe(None, synthesis="teacher", teacher_model=str(tmp_path / "missing"))
