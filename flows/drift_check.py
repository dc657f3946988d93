"""The champion's drift check that both refresh paths run after indexing (the flow, and ``kup refresh`` without a
Prefect server): on with ``KUP_DRIFT_CHECK``, at most every ``KUP_DRIFT_EVERY_HOURS``; the measurement itself is
``training.drift``. What ``kup status`` shows of it: ``drift_status``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flows.settings import Settings

if TYPE_CHECKING:  # imported where used: `kup status` with the check off never imports training
    from flows.runtime import Runtime
    from training.drift import DriftReport


def drift_due(settings: Settings) -> bool:
    """Whether this refresh measures drift: the check is on and the last one is old enough."""
    if not settings.drift_check:
        return False
    from training.drift import due

    return due(settings.data_path, settings.drift_every_hours)


def measure_drift_now(runtime: Runtime) -> DriftReport:
    """Measure (loading the base model and the champion), keep it in ``drift.jsonl``; a failure is a recorded skip."""
    from training.drift import measure_and_record

    settings = runtime.settings
    return measure_and_record(
        runtime.catalog,
        settings.data_path,
        base_model=settings.base_model,
        threshold=settings.drift_threshold,
        sample=settings.drift_sample_documents,
    )


_SHOWN = ("measured_at", "champion", "ratio", "threshold", "exceeded", "recent_documents", "trained_documents")


def drift_status(settings: Settings) -> dict[str, Any]:
    """The last measured ratio and the last check (when it was a skip since), read from ``drift.jsonl``; nothing is
    read (and ``training`` is not imported) while the check is off."""
    out: dict[str, Any] = {
        "enabled": settings.drift_check,
        "threshold": settings.drift_threshold,
        "every_hours": settings.drift_every_hours,
        "last_measured": None,
        "last_skip": None,
    }
    if not settings.drift_check:
        return out
    from training.drift import history

    rows = history(settings.data_path, limit=200)
    measured = [r for r in rows if r.get("ratio") is not None]
    if measured:
        out["last_measured"] = {key: measured[-1].get(key) for key in _SHOWN}
    if rows and rows[-1].get("ratio") is None:
        out["last_skip"] = {"measured_at": rows[-1].get("measured_at"), "reason": rows[-1].get("skipped")}
    return out
