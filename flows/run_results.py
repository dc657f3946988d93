"""What a finished deployment run reports to the terminal: its result when Prefect kept it, else its summary
artifact (a served run's result lives in another process and is only readable when the flow persists it)."""

from __future__ import annotations

import logging
import re
from typing import Any

logger = logging.getLogger(__name__)

SUMMARY_KEYS = {"reindex": "reindex-summary", "backfill": "backfill-summary"}


def run_result(flow_run) -> dict[str, Any] | None:
    """The run's returned figures (a dict), or the summary a deliberately failed run carries; None when not kept."""
    if flow_run.state is None:
        return None
    try:
        result = flow_run.state.result(raise_on_failure=False)
    except Exception as exc:  # noqa: BLE001 - Prefect raises MissingResult and friends when nothing was kept
        logger.info("the result of flow run %s is not readable: %s", flow_run.id, exc)
        return None
    if isinstance(result, dict):
        return result
    summary = getattr(result, "summary", None)
    return summary if isinstance(summary, dict) else None


def summary_text(flow_run_id, key: str) -> str | None:
    """The run's markdown summary artifact ``key`` as plain text (headings and emphasis removed)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
        )
    if not artifacts or not isinstance(artifacts[0].data, str):
        return None
    lines = [line for line in artifacts[0].data.splitlines() if line.strip() and not line.startswith("#")]
    return re.sub(r"\*\*|`", "", " ".join(lines)).strip() or None
