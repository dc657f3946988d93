"""Prefect automations that alert on the refresh deployment, declared here beside the deployments they watch.

- **failing**: ``alert_failed_runs`` runs of the scheduled refresh in a row end Stale or Failed (the refresh flow
  names a run "Stale" when a source failed or backs off, "Failed" when one keeps failing). With one run a minute,
  that many such runs within that many minutes (plus slack) are that many in a row.
- **stale**: no refresh run of any deployment has completed for ``alert_freshness_seconds`` (a run with a failing
  source does not complete), so some source's part of the index is at least that old.
- **zombies**: a kup run that stopped sending heartbeats is set Crashed, freeing its slot (``flows/dead_runs.py``).

Alerts go to the Prefect notification block ``alert_block`` (``type-slug/name``, e.g. ``slack-webhook/ops``);
without one they show as triggered automations in the UI only. ``kup up`` applies them (replacing those of the same
name); ``python -m flows.alerts`` prints them as JSON for ``prefect automation create --from-json``.
"""

from __future__ import annotations

import json
from datetime import timedelta

from errors import ConfigError
from errors.durations import human_duration
from flows.dead_runs import ZOMBIES, zombie_automation
from flows.settings import Settings, load_settings

SCHEDULED_REFRESH = "refresh"  # the deployment whose runs come one a minute
FAILING = "kup: refresh failing {n} runs in a row"
STALE = "kup: no fresh refresh for {t}"
_PREFIXES = (FAILING.split("{")[0], STALE.split("{")[0], ZOMBIES)


def _action(subject: str, body: str, block_id=None):
    from prefect.events.actions import DoNothing, SendNotification

    if block_id is None:
        return DoNothing()
    return SendNotification(block_document_id=block_id, subject=subject, body=body)


def automations(settings: Settings, block_id=None) -> list:
    """The alert automations (``AutomationCore``) for ``settings``; ``block_id`` is the notification block's."""
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    n, seconds = settings.alert_failed_runs, settings.alert_freshness_seconds
    failing = AutomationCore(
        name=FAILING.format(n=n),
        description="Scheduled refresh runs keep ending Stale or Failed: a source cannot be read.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Stale", "prefect.flow-run.Failed"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "deployment", "prefect.resource.name": SCHEDULED_REFRESH},
            posture=Posture.Reactive,
            threshold=n,
            within=timedelta(seconds=n * 60 + 30),
        ),
        actions=[
            _action(
                f"kup: {n} refresh runs in a row ended Stale or Failed",
                "The latest: {{ flow_run.name }} ended {{ flow_run.state.name }}: {{ flow_run.state.message }}",
                block_id,
            )
        ],
    )
    stale = AutomationCore(
        name=STALE.format(t=human_duration(seconds)),
        description="No refresh has completed for a while: some source's documents are that old in the index.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Completed"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": "refresh"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=seconds),
        ),
        actions=[
            _action(
                f"kup: no refresh completed in {human_duration(seconds)}",
                "The index may be stale: see `kup status` or the kup-status artifact.",
                block_id,
            )
        ],
    )
    return [failing, stale, zombie_automation()]


def _block_id(client, slug: str):
    from prefect.exceptions import ObjectNotFound

    type_slug, _, name = slug.partition("/")
    if not name:
        raise ConfigError(f"KUP_ALERT_BLOCK {slug!r} must be type-slug/name, e.g. slack-webhook/ops")
    try:
        return client.read_block_document_by_name(name, type_slug).id
    except ObjectNotFound:
        raise ConfigError(f"KUP_ALERT_BLOCK names {slug}, which the Prefect server does not have; create it") from None


def apply_alerts(settings: Settings) -> list[str]:
    """Create the alert automations on the Prefect server at ``PREFECT_API_URL``, replacing earlier ones."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        block_id = _block_id(client, settings.alert_block) if settings.alert_block else None
        for old in client.read_automations():  # ours, whatever thresholds they were made with
            if old.name.startswith(_PREFIXES):
                client.delete_automation(old.id)
        wanted = automations(settings, block_id)
        for automation in wanted:
            client.create_automation(automation)
    return [a.name for a in wanted]


if __name__ == "__main__":
    print(json.dumps([a.model_dump(mode="json") for a in automations(load_settings())], indent=2))
