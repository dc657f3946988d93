"""Leases on pending documents: disjoint claims, compare-and-set marks, retries and dead owners."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

from indexing import Catalog
from tests.indexing.catalog import T0, doc


def test_claims_never_overlap_and_leases_release(catalog: Catalog) -> None:
    catalog.upsert_documents([doc(i) for i in range(10)], T0)
    first = catalog.claim_pending("host:1", 6, T0)
    second = catalog.claim_pending("host:2", 6, T0)
    assert len(first) == 6 and len(second) == 4
    assert not {d.id for d in first} & {d.id for d in second}
    assert catalog.claim_pending("host:3", 6, T0) == []
    # An expired lease is free again.
    assert len(catalog.claim_pending("host:3", 20, T0 + timedelta(hours=1))) == 10


def test_mark_indexed_is_compare_and_set_on_version(catalog: Catalog) -> None:
    catalog.upsert_documents([doc(1), doc(2)], T0)
    claimed = {d.id: d for d in catalog.claim_pending("me:1", 10, T0)}
    catalog.upsert_documents([doc(2, "changed while indexing")], T0)  # a concurrent pull updates doc 2
    marked = catalog.mark_indexed("me:1", [(i, d.version, 3) for i, d in claimed.items()], T0)
    assert marked == 1
    assert catalog.document(doc(1).id)["status"] == "indexed"
    stale = catalog.document(doc(2).id)
    assert stale["status"] == "pending" and stale["lease_owner"] is None and stale["version"] == 2


def test_failed_documents_retry_after_backoff(catalog: Catalog) -> None:
    catalog.upsert_documents([doc(1)], T0)
    [claimed] = catalog.claim_pending("me:1", 10, T0)
    catalog.mark_failed("me:1", [claimed.id], "store down", T0)
    row = catalog.document(claimed.id)
    assert row["status"] == "failed" and row["attempts"] == 1 and row["last_error"] == "store down"
    assert catalog.claim_pending("me:1", 10, T0 + timedelta(seconds=30)) == []
    [again] = catalog.claim_pending("me:1", 10, row["next_attempt_at"] + timedelta(seconds=1))
    assert again.attempts == 1


def test_leases_of_dead_processes_are_taken_over(catalog: Catalog) -> None:
    import socket

    catalog.upsert_documents([doc(1)], T0)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner = f"{socket.gethostname()}:{dead.stdout.strip()}"
    now = datetime.now(UTC)
    assert len(catalog.claim_pending(owner, 10, now)) == 1
    assert len(catalog.claim_pending("other:1", 10, now)) == 1  # the dead owner's lease is reaped
