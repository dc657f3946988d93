"""How a kup flow run ends: a Prefect state Prefect accepts, one sentence in its message, no traceback in the logs.

A flow that fails returns ``Failed(message=..., data=RunFailed(...))``. The data is an exception, the only kind of
failed result Prefect can turn back into an error (a dict gives "Unexpected result for failed state"); it carries
the run's summary for in-process callers. Prefect's engine then re-raises it and logs the traceback ("Engine
execution exited with unexpected exception"); the flow has already logged its one sentence, so that record loses
its traceback here.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect.states import Failed, State

from errors import KupError


class RunFailed(KupError):
    """A kup flow run that ended Failed on purpose: its message is the one sentence, ``summary`` what it did,
    ``name`` the state's name (``Failed``, or ``Stale`` for a refresh that could not reach every source)."""

    def __init__(self, message: str, summary: dict[str, Any] | None = None, name: str = "Failed") -> None:
        super().__init__(message)
        self.summary = summary
        self.name = name


def failed(message: str, summary: dict[str, Any] | None = None, name: str = "Failed") -> State:
    """A Failed state named ``name`` with ``message``, whose result is a ``RunFailed`` carrying ``summary``."""
    return Failed(name=name, message=message, data=RunFailed(message, summary, name))


class _QuietDeliberateFailures(logging.Filter):
    """Drops the traceback of a run that failed on purpose (a ``RunFailed`` or the FailedRun Prefect builds from
    a Failed state's message; a "Stale" one said as a warning) and of a task that hit its timeout, keeping one
    line, and Prefect's per-task note that timeouts cannot interrupt blocking calls in worker threads; every other
    record passes untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        from prefect.exceptions import FailedRun

        if isinstance(record.msg, str) and record.msg.startswith("Timeout of") and "worker thread" in record.msg:
            # Said for every task with a timeout, every run: kup's fetches bound their own socket calls, so the
            # timeout takes effect when they return; the warning would fill the `kup up` terminal each minute.
            return False
        exc = record.exc_info[1] if record.exc_info else None
        if record.name == "prefect.events.utilities" and "stopped service instance" in str(exc):
            # A heartbeat the run's thread emits as the engine shuts its event worker down: the run has ended,
            # the lost heartbeat only feeds zombie detection. Prefect logs it with a traceback; one line does.
            record.msg, record.args = "%s (after the run ended; nothing was lost)", (record.getMessage(),)
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
            record.exc_info = record.exc_text = None
        elif isinstance(exc, RunFailed | FailedRun):
            name = getattr(exc, "name", "Failed")
            record.msg, record.args = "flow run ended %s: %s", (name, str(exc))
            record.exc_info = record.exc_text = None
            if name != "Failed":  # a stale run: some sources are behind, nothing is broken in the run itself
                record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        elif isinstance(exc, KeyboardInterrupt):
            # Ctrl-C in the terminal of `kup up` reaches its flow runs too: the engine has marked the run Crashed
            # ("aborted by an interrupt signal"); the traceback of where it was says nothing to the user.
            record.msg, record.args = "flow run stopped by an interrupt signal (Ctrl-C): it ends Crashed", ()
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        elif isinstance(exc, TimeoutError):
            record.msg, record.args = "task run timed out: %s", (str(exc),)
            record.exc_info = record.exc_text = None
        return True


_FILTER = _QuietDeliberateFailures()


def quiet_deliberate_failures() -> None:
    """Install the filter on the loggers Prefect's engine reports a failed run (and a late heartbeat) with
    (idempotent)."""
    for name in ("prefect.flow_runs", "prefect.task_runs", "prefect.engine", "prefect.events.utilities"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def tag_this_run(tag: str) -> None:
    """Add ``tag`` to the flow run this code runs in, so the runs list shows (and filters by) how it ended."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    run = context.flow_run
    with get_client(sync_client=True) as client:
        client.update_flow_run(run.id, tags=sorted({*run.tags, tag}))
