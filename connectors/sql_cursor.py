"""Where an SQL source's sync stands and what one read returns: the keyset cursor ``(updated, id...)`` saved after
each committed batch, the batch itself, and row values as JSON (the cursor and documents' metadata hold them)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from connectors.document import Document, ItemFailure


@dataclass
class SqlCursor:
    """Position after the last committed row: its ordering value and id values."""

    value: Any = None
    ids: list[Any] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> SqlCursor | None:
        if not data or data.get("value") is None:
            return None
        value = data["value"]
        if data.get("kind") == "datetime":
            value = datetime.fromisoformat(value)
        elif data.get("kind") == "date":
            value = date.fromisoformat(value)
        elif data.get("kind") == "decimal":
            value = Decimal(value)
        return cls(value, list(data.get("ids", [])))

    def to_json(self) -> dict[str, Any]:
        value, kind = self.value, "number"
        if isinstance(value, datetime):
            value, kind = value.isoformat(), "datetime"
        elif isinstance(value, date):
            value, kind = value.isoformat(), "date"
        elif isinstance(value, Decimal):
            value, kind = str(value), "decimal"
        elif isinstance(value, str):
            kind = "string"
        return {"value": value, "kind": kind, "ids": [jsonable(v) for v in self.ids]}

    def key(self) -> tuple:
        return (self.value, *self.ids)

    def position(self, now: datetime) -> tuple[Any, float | None]:
        """The ordering value as saved, and how many seconds it lies behind ``now`` (None unless it is a time).

        A time without a zone counts as UTC, as the sync reads it.
        """
        saved = self.to_json()["value"]
        if not isinstance(self.value, datetime):
            return saved, None
        when = self.value if self.value.tzinfo else self.value.replace(tzinfo=UTC)
        return saved, round((now - when).total_seconds(), 1)


@dataclass
class SqlBatch:
    documents: list[Document] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # external ids of soft-deleted rows
    failures: list[ItemFailure] = field(default_factory=list)
    cursor: SqlCursor | None = None  # the key of the batch's last row
    rows: int = 0


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return float(value) if value == value.to_integral_value() or abs(value) < 1e15 else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN and infinities are not JSON
    if isinstance(value, bytes | bytearray | memoryview):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):  # PostgreSQL arrays, JSON columns
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)
