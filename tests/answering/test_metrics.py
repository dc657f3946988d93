"""/metrics over real HTTP from the API as `kup api` serves it: Prometheus text that prometheus_client parses,
figures read from a real catalog, and the API's guards (key, host) in front of it."""

from __future__ import annotations

from datetime import timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families

from answering import Answerer
from answering.api import create_app
from answering.api_guards import ApiGuards
from connectors import Document
from indexing import Catalog, EdgeStore, now_utc
from indexing.reports import RefreshSummary
from tests.answering.test_api import serving_app

KEY = "metrics-k3y-9c1d"


def _catalog(tmp_path) -> Catalog:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    now = now_utc()
    docs = [Document(source="wire", external_id=f"w{i}", text=f"story {i} " * 20, title=f"t{i}") for i in range(3)]
    catalog.upsert_documents(docs, now - timedelta(minutes=10))  # pending for ten minutes
    catalog.record_source_success("wire", "feed", {}, now - timedelta(seconds=30))
    for minutes in (3, 2, 1):
        catalog.record_source_failure("wiki", "sql", "cannot connect", now - timedelta(minutes=minutes))
    summary = {
        "seconds": 12.5,
        "index": {"embedded": 40, "seconds": 8.0},
        "verdict": {"status": "stale", "message": "wiki failed"},
    }
    catalog.record_refresh(
        now - timedelta(seconds=75), now - timedelta(seconds=62.5), RefreshSummary.from_dict(summary)
    )
    catalog.take_role("listen", "listen run brave-otter", now - timedelta(seconds=3))
    return catalog


def _families(text: str) -> dict[str, dict[tuple, float]]:
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_metrics_are_prometheus_text_from_the_catalog_behind_the_guards(tmp_path) -> None:
    catalog = _catalog(tmp_path)
    answerer = Answerer(EdgeStore(tmp_path / "index"), None, None, None)  # /metrics needs no model
    app = create_app(answerer, ApiGuards(api_key=KEY), catalog=catalog)
    try:
        with serving_app(app) as url:
            assert httpx.get(f"{url}/metrics", timeout=10).status_code == 401
            forged = httpx.get(f"{url}/metrics", headers={"Host": "evil.example", "X-API-Key": KEY}, timeout=10)
            assert forged.status_code == 400
            response = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    finally:
        catalog.close()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    m = _families(response.text)

    assert m["kup_documents"][(("source", "wire"), ("status", "pending"))] == 3
    assert m["kup_index_queue_documents"][(("source", "wire"),)] == 3
    # wire was pulled 30 s ago, but its oldest document has waited ten minutes: the index lags it by that much
    assert 595 <= m["kup_source_freshness_lag_seconds"][(("source", "wire"),)] <= 700
    # wiki never succeeded: it lags at least since it was last tried
    assert m["kup_source_freshness_lag_seconds"][(("source", "wiki"),)] >= 55
    assert m["kup_source_consecutive_failures"][(("source", "wiki"),)] == 3
    assert m["kup_open_failures"][(("source", "wiki"), ("stage", "fetch"))] == 1
    assert (("source", "wiki"),) not in m["kup_source_last_success_timestamp_seconds"]
    assert abs(m["kup_last_refresh_timestamp_seconds"][()] - (now_utc().timestamp() - 62.5)) < 30
    assert m["kup_last_refresh_duration_seconds"][()] == 12.5
    assert m["kup_last_refresh_healthy"][()] == 0
    assert m["kup_embedding_chunks_per_second"][()] == 5.0
    # the database listener said it was alive (connected) 3 s ago: a listener that died goes stale here
    assert abs(m["kup_role_alive_timestamp_seconds"][(("role", "listen"),)] - (now_utc().timestamp() - 3)) < 30


def test_refresh_overdue_follows_the_rule_kup_status_uses(tmp_path) -> None:
    """The last refresh finished 62.5 s ago: not overdue after 180 s, overdue after 60 s."""
    catalog = _catalog(tmp_path)
    answerer = Answerer(EdgeStore(tmp_path / "index"), None, None, None)
    seen = {}
    try:
        for limit in (180.0, 60.0, None):
            app = create_app(answerer, ApiGuards(api_key=KEY), catalog=catalog, overdue_after=limit)
            with serving_app(app) as url:
                text = httpx.get(f"{url}/metrics", headers={"X-API-Key": KEY}, timeout=10).text
            seen[limit] = _families(text).get("kup_refresh_overdue", {}).get(())
    finally:
        catalog.close()
    assert seen == {180.0: 0.0, 60.0: 1.0, None: None}
