"""How stale the served model is (after Lazaridou et al., NeurIPS 2021, "Mind the Gap"): the champion adapter's
perplexity on recently indexed documents against its perplexity on documents of its own training period.

A ratio near 1 means what arrives reads like what the champion learned; a ratio well above 1 means the world has
moved on and a fine-tune is due. The measurement is cheap (the first window of a few documents from each side of
the champion's watermark) and off by default; the refresh flow runs it when ``KUP_DRIFT_CHECK`` is on, at most
every ``KUP_DRIFT_EVERY_HOURS``, keeps each one in ``drift.jsonl`` under the data directory (and in the refresh
run's summary in the catalog), and emits a Prefect event that the finetune deployment's automation reacts to.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from errors import ConfigError, KupError
from indexing import Catalog
from training.registry import AdapterRegistry

logger = logging.getLogger(__name__)

DRIFT_FILE = "drift.jsonl"
MEASURED_EVENT = "kup.drift.measured"  # every measurement
EXCEEDED_EVENT = "kup.drift.exceeded"  # the ratio reached the threshold: the finetune automation's trigger


@dataclass
class DriftReport:
    measured_at: str
    champion: str | None = None
    ratio: float | None = None  # recent perplexity / training-period perplexity
    recent_perplexity: float | None = None
    trained_perplexity: float | None = None
    recent_documents: int = 0
    trained_documents: int = 0
    threshold: float | None = None
    exceeded: bool = False
    skipped: str | None = None  # why nothing was measured, in words
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def words(self) -> str:
        """The measurement (or why there is none) in one log line."""
        if self.ratio is None:
            return f"drift not measured: {self.skipped}"
        return (
            f"drift of champion {self.champion}: perplexity {self.recent_perplexity:.2f} on {self.recent_documents} "
            f"recent document(s) / {self.trained_perplexity:.2f} on its training period = {self.ratio:.3f} "
            f"(threshold {self.threshold:.2f}{': a fine-tune is due' if self.exceeded else ''})"
        )


def drift_path(data_dir: Path) -> Path:
    return data_dir / DRIFT_FILE


def _last_lines(path: Path, limit: int, block: int = 64 * 1024) -> list[str]:
    """The last ``limit`` lines of a file, read from its end: the log grows by a line per check, forever."""
    with open(path, "rb") as handle:
        end = handle.seek(0, 2)
        data, start = b"", end
        while start > 0 and data.count(b"\n") <= limit:
            start = max(0, start - block)
            handle.seek(start)
            data = handle.read(end - start)
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[-limit:] if start == 0 else lines[1:][-limit:]  # a cut first line is partial


def history(data_dir: Path, limit: int = 100) -> list[dict[str, Any]]:
    """The last ``limit`` measurements (and skips), oldest first; unreadable lines are left out."""
    path = drift_path(data_dir)
    if not path.is_file() or limit <= 0:
        return []
    out = []
    for line in _last_lines(path, limit):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            out.append(row)
    return out


def record(data_dir: Path, report: DriftReport) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(drift_path(data_dir), "a", encoding="utf-8") as handle:
        handle.write(json.dumps(report.as_dict()) + "\n")


def due(data_dir: Path, every_hours: float, now: datetime | None = None) -> bool:
    """Whether the last measurement (a skip counts too) is at least ``every_hours`` old."""
    last = history(data_dir, limit=1)
    if not last or every_hours <= 0:
        return True
    try:
        then = datetime.fromisoformat(last[-1]["measured_at"])
    except (KeyError, TypeError, ValueError):
        return True
    return (now or datetime.now(UTC)) - then >= timedelta(hours=every_hours)


def _watermark(manifest: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(manifest["watermark"])
    except (KeyError, TypeError, ValueError):
        return None


def measure(
    catalog: Catalog,
    data_dir: Path,
    *,
    base_model: str | None,
    threshold: float,
    sample: int = 8,
    max_tokens: int = 128,
    device: str | None = None,
) -> DriftReport:
    """The champion's perplexity ratio: the newest ``sample`` documents indexed after its watermark against the
    newest ``sample`` at or before it (the first ``max_tokens`` tokens of each). A report with ``skipped`` set when
    there is nothing to compare; a model that cannot be loaded is a ConfigError."""
    started = time.perf_counter()
    report = DriftReport(measured_at=datetime.now(UTC).isoformat(), threshold=threshold)
    champion = AdapterRegistry(data_dir / "adapters").champion()
    if champion is None:
        report.skipped = "no champion adapter yet: the base model serves, there is no training period to compare"
        return report
    report.champion = champion.id
    watermark = _watermark(champion.manifest)
    if watermark is None:
        report.skipped = f"the champion {champion.id} records no watermark, so its training period is unknown"
        return report
    recent = catalog.training_documents(after=watermark, limit=sample)
    trained = catalog.training_documents(before=watermark, limit=sample)
    report.recent_documents, report.trained_documents = len(recent), len(trained)
    if not recent:
        report.skipped = "nothing was indexed after the champion's watermark"
        return report
    if not trained:
        report.skipped = "no document of the champion's training period is left in the catalog"
        return report

    from peft import PeftModel

    from training.base_model import load_base
    from training.corpus import Sample, windows
    from training.evaluation import score

    base = load_base(base_model, data_dir, device=device)
    try:
        model = PeftModel.from_pretrained(base.model, str(champion.path))
    except Exception as exc:  # noqa: BLE001 - peft raises many kinds for a directory that holds no adapter
        raise ConfigError(
            f"the champion {champion.id} cannot be loaded on the base model {base.name} ({exc}); "
            "promote another adapter with `kup adapters promote ID` or set KUP_BASE_MODEL to the model it was "
            "trained from"
        ) from None

    def first_windows(docs: list[dict]) -> list[Sample]:
        out = []
        for d in docs:
            text = f"{d['title']}\n\n{d['text']}" if d.get("title") else d["text"]
            out += [Sample(ids, "drift") for ids in windows(base.tokenizer, text, max_tokens, 1)]
        return out

    pad = base.tokenizer.pad_token_id
    recent_score = score(model, first_windows(recent), pad_id=pad, device=base.device)
    trained_score = score(model, first_windows(trained), pad_id=pad, device=base.device)
    if math.isnan(recent_score.nll) or math.isnan(trained_score.nll):
        report.skipped = "the sampled documents hold no text to score"
        return report
    report.recent_perplexity = round(recent_score.perplexity, 4)
    report.trained_perplexity = round(trained_score.perplexity, 4)
    report.ratio = round(math.exp(min(recent_score.nll - trained_score.nll, 50.0)), 4)
    report.exceeded = report.ratio >= threshold
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def measure_safely(catalog: Catalog, data_dir: Path, **options: Any) -> DriftReport:
    """``measure``, with any failure recorded as a skip in one sentence: the drift check never fails a refresh."""
    try:
        return measure(catalog, data_dir, **options)
    except KupError as exc:
        reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - a drift check must not break the refresh that runs it
        reason = f"the drift check failed ({type(exc).__name__}: {exc})"
    logger.warning("drift not measured: %s", reason)
    return DriftReport(measured_at=datetime.now(UTC).isoformat(), threshold=options.get("threshold"), skipped=reason)


def measure_and_record(catalog: Catalog, data_dir: Path, **options: Any) -> DriftReport:
    """``measure_safely``, kept in ``drift.jsonl`` and logged: what a refresh runs when the check is due."""
    report = measure_safely(catalog, data_dir, **options)
    record(data_dir, report)
    logger.info("%s", report.words())
    return report


def event(report: DriftReport) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
    """The Prefect events for a measurement: (name, resource, payload); none for a skip. ``kup.drift.exceeded``
    (the finetune deployment's trigger) follows ``kup.drift.measured`` when the ratio reached the threshold."""
    if report.ratio is None or report.champion is None:
        return []
    resource = {
        "prefect.resource.id": f"kup.adapter.{report.champion}",
        "prefect.resource.name": f"champion adapter {report.champion}",
        "kup.drift.ratio": f"{report.ratio:.4f}",
    }
    payload = {
        "ratio": report.ratio,
        "threshold": report.threshold,
        "recent_perplexity": report.recent_perplexity,
        "trained_perplexity": report.trained_perplexity,
        "recent_documents": report.recent_documents,
        "trained_documents": report.trained_documents,
        "champion": report.champion,
    }
    out = [(MEASURED_EVENT, resource, payload)]
    if report.exceeded:
        out.append((EXCEEDED_EVENT, resource, payload))
    return out


def plot_markdown(rows: list[dict[str, Any]]) -> str:
    """Markdown for the dashboard: the latest measurement in words and the ratio over time as a plot (PNG inline)."""
    measured = [r for r in rows if r.get("ratio") is not None]
    last = rows[-1] if rows else None
    if last is None:
        return "No drift measurement yet."
    if last.get("ratio") is None:
        head = f"Latest check ({last['measured_at']}): not measured, {last.get('skipped')}."
    else:
        due_now = "**a fine-tune is due**" if last.get("exceeded") else "below the threshold"
        head = (
            f"Latest check ({last['measured_at']}): champion `{last.get('champion')}` reads recent documents at "
            f"**{last['ratio']:.3f}x** the perplexity of its training period (threshold {last.get('threshold')}): "
            f"{due_now}."
        )
    if not measured:
        return head
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [datetime.fromisoformat(r["measured_at"]) for r in measured]
    fig, ax = plt.subplots(figsize=(6, 3), dpi=100)
    ax.plot(times, [r["ratio"] for r in measured], marker="o", color="#1f77b4", label="perplexity ratio")
    thresholds = [r.get("threshold") for r in measured]
    if thresholds[-1] is not None:
        ax.axhline(thresholds[-1], color="#d62728", linestyle="--", label="threshold")
    ax.set_ylabel("recent / training-period perplexity")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f"{head}\n\n![drift](data:image/png;base64,{encoded})"
