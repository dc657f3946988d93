"""The log filter of flow-run processes: failures on purpose and a late heartbeat keep one line, no traceback."""

from __future__ import annotations

import logging

import pytest

from flows.outcome import quiet_deliberate_failures


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def events_log():
    quiet_deliberate_failures()
    logger, keep = logging.getLogger("prefect.events.utilities"), Keep()
    logger.addHandler(keep)
    yield logger, keep.records
    logger.removeHandler(keep)


def test_a_heartbeat_emitted_after_the_run_ended_is_one_warning_line(events_log) -> None:
    logger, records = events_log
    try:
        raise RuntimeError("Cannot put items in a stopped service instance.")
    except RuntimeError:
        logger.exception("Error emitting event: %s", "prefect.flow-run.heartbeat")
    (record,) = records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert logging.Formatter().format(record) == (
        "Error emitting event: prefect.flow-run.heartbeat (after the run ended; nothing was lost)"
    )


def test_any_other_event_error_keeps_its_traceback(events_log) -> None:
    logger, records = events_log
    try:
        raise ConnectionError("the API refused the event")
    except ConnectionError:
        logger.exception("Error emitting event: %s", "kup.source.changed")
    (record,) = records
    assert record.levelno == logging.ERROR and record.exc_info is not None
