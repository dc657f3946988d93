"""The alert automations on a real Prefect server: created from the settings, replaced (never doubled) when the
thresholds change, sent to a named notification block, and a block that does not exist is one sentence."""

from __future__ import annotations

import pytest

from errors import ConfigError
from flows.alerts import apply_alerts
from flows.settings import load_settings

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _ours(client) -> dict:
    return {a.name: a for a in client.read_automations() if a.name.startswith("kup: ")}


def test_alerts_follow_the_settings_and_replace_their_earlier_versions() -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client

    apply_alerts(load_settings(alert_failed_runs=2, alert_freshness_seconds=600))
    names = apply_alerts(load_settings(alert_failed_runs=4, alert_freshness_seconds=1800))
    with get_client(sync_client=True) as client:
        ours = _ours(client)
    assert (
        sorted(ours)
        == sorted(names)
        == [
            "kup: crash runs whose process is gone",
            "kup: no fresh refresh for 30 min",
            "kup: refresh failing 4 runs in a row",
        ]
    )
    zombies = ours["kup: crash runs whose process is gone"]  # Prefect's "detect zombie flows", for kup's runs
    assert zombies.trigger.posture == "Proactive" and zombies.trigger.after == {"prefect.flow-run.heartbeat"}
    assert zombies.trigger.for_each == {"prefect.resource.id"} and zombies.actions[0].type == "change-flow-run-state"
    failing = ours["kup: refresh failing 4 runs in a row"]
    assert failing.trigger.threshold == 4 and failing.trigger.within.total_seconds() == 4 * 60 + 30
    assert failing.trigger.expect == {"prefect.flow-run.Stale", "prefect.flow-run.Failed"}
    assert failing.actions[0].type == "do-nothing"  # no block named: the UI shows it fire
    stale = ours["kup: no fresh refresh for 30 min"]
    assert stale.trigger.posture == "Proactive" and stale.trigger.within.total_seconds() == 1800

    CustomWebhookNotificationBlock(name="ops", url="http://127.0.0.1:9/hook").save("kup-ops", overwrite=True)
    apply_alerts(load_settings(alert_block="custom-webhook/kup-ops"))
    with get_client(sync_client=True) as client:
        ours = _ours(client)
        block = client.read_block_document_by_name("kup-ops", "custom-webhook")
    alerts = {name: a for name, a in ours.items() if name != "kup: crash runs whose process is gone"}
    assert len(alerts) == 2
    assert all(a.actions[0].type == "send-notification" for a in alerts.values())
    assert all(a.actions[0].block_document_id == block.id for a in alerts.values())

    with pytest.raises(ConfigError, match="names custom-webhook/missing, which the Prefect server does not have"):
        apply_alerts(load_settings(alert_block="custom-webhook/missing"))
    with pytest.raises(ConfigError, match="must be type-slug/name"):
        apply_alerts(load_settings(alert_block="ops"))
