"""Hand-overs between runs of a long-lived job (the database listener, the hot-feed watcher) with no gap and no
overlap beyond a second.

Each schedule slot starts a new run while the previous one still works (the deployments have no concurrency limit:
a limit made the new run wait or be cancelled, and the job stood still meanwhile). The new run loads its models and
connects first; only when it is ready does it take the job's role in the catalog. The run it replaces finds, at its
next renewal (every ``RENEW_SECONDS``), that another run holds the role, and stops, saying so. A run whose slot is
over keeps working until its successor takes over, for at most ``GRACE_SECONDS`` more. A listener (or watcher) started
by hand (``kup events listen``, ``kup watch``) has the role while it lives: a scheduled run that finds it alive
leaves its slot to it and ends at once; a newer one by hand takes over from an older one.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flows.settings import Settings

RENEW_SECONDS = 1.0
ALIVE_SECONDS = 10.0  # a holder renewed this recently is alive
BY_HAND = " [by hand]"  # the mark of a holder started from the command line
GRACE_SECONDS = 300.0  # how long past its slot a run waits for a successor (none comes when `kup up` stopped)
GRACE_SHARE = 0.5  # ... and never longer than half its slot
READY_TIMEOUT = 120.0  # a run that cannot get ready (connect) in this long takes the role anyway: it keeps trying

log = logging.getLogger(__name__)


def holder_name(label: str) -> str:
    return f"{label} ({socket.gethostname()}:{os.getpid()})"[:200]


def slot_end(minutes: float, scheduled_start: datetime | None) -> float:
    """Seconds from now to the end of this run's slot plus the grace for its successor to take over."""
    start = scheduled_start or datetime.now(UTC)
    end = start + timedelta(minutes=minutes, seconds=min(GRACE_SECONDS, GRACE_SHARE * 60 * minutes))
    return max(10.0, (end - datetime.now(UTC)).total_seconds())


def _alive_by_hand(held: dict) -> bool:
    renewed = held["renewed_at"]
    return held["holder"].endswith(BY_HAND) and (datetime.now(UTC) - renewed).total_seconds() < ALIVE_SECONDS


class Role:
    """Holds the catalog role ``name`` for the life of a job: taken when ``ready`` is set, renewed every second;
    when another run takes it, ``stop`` is called and ``replaced_by`` says by whom."""

    def __init__(
        self, settings: Settings, name: str, label: str, say: Callable[[str], None] = log.info, *, by_hand: bool = False
    ) -> None:
        from indexing import Catalog

        self.catalog = Catalog(settings.secret("catalog_url") or settings.resolved_catalog_url)
        self.name, self.say, self.by_hand = name, say, by_hand
        self.holder = holder_name(label)[: 200 - len(BY_HAND)] + (BY_HAND if by_hand else "")
        self.replaced_by: str | None = None
        self.left_to: str | None = None  # the listener by hand this scheduled run left its slot to
        self.taken_at: datetime | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(
        self, ready: threading.Event | None, stop: Callable[[], None], alive: Callable[[], bool] | None = None
    ) -> Role:
        """In the background: wait until ``ready``, take the role, renew it while ``alive()`` (the renewal time is
        the job's liveness, in ``/metrics``); ``stop()`` the job when another run took the role."""

        def keep() -> None:
            if ready is not None and not ready.wait(READY_TIMEOUT) and self._done.is_set():
                return
            if self._done.is_set():
                return
            held = self.catalog.role_holder(self.name)
            if not self.by_hand and held is not None and _alive_by_hand(held):
                self.left_to = held["holder"]
                self.say(f"{held['holder']} holds the {self.name} role: this run leaves its slot to it")
                stop()
                return
            before = self.catalog.take_role(self.name, self.holder)
            self.taken_at = datetime.now(UTC)
            if before and before != self.holder:
                self.say(f"took over the {self.name} role from {before}")
            while not self._done.wait(RENEW_SECONDS):
                try:
                    if alive is None or alive():
                        other = self.catalog.renew_role(self.name, self.holder)
                    else:  # not renewed: its liveness goes stale; still, a successor is noticed
                        held = self.catalog.role_holder(self.name)
                        other = None if held is None or held["holder"] == self.holder else held["holder"]
                except Exception as exc:  # noqa: BLE001 - a busy catalog: keep working, try again in a second
                    log.debug("could not renew the %s role: %s", self.name, exc)
                    continue
                if other is not None:
                    self.replaced_by = other
                    self.say(f"{other} took over the {self.name} role: stopping")
                    stop()
                    return

        self._thread = threading.Thread(target=keep, name=f"kup-role-{self.name}", daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        """The job ended: give the role up (if still ours) and stop renewing."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            if self.replaced_by is None and self.left_to is None:
                self.catalog.release_role(self.name, self.holder)
        finally:
            self.catalog.close()
