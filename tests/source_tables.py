"""The tables of the SQL source tests (connectors and indexing alike), a ticket row, and writes to them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    Uuid,
    func,
    select,
)
from sqlalchemy.dialects import mysql

T0 = datetime(2026, 11, 20, 9, 0)  # naive: the columns are plain DATETIME / TIMESTAMP WITHOUT TIME ZONE (UTC)
ENV = "KUP_TEST_SOURCE_URL"
LONG_TEXT = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")  # MariaDB's TEXT stops at 64 KiB

metadata = MetaData()
tickets = Table(
    "tickets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("title", String(200)),
    Column("body", LONG_TEXT),
    Column("team", String(50)),
    Column("priority", Integer),
    Column("score", Numeric(10, 2)),
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
    Column("version", Integer),
    Column("is_deleted", Boolean, nullable=False, default=False),
    mysql_charset="utf8mb4",
)
events = Table(  # a compound key
    "events",
    metadata,
    Column("region", String(20), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("body", Text),
    Column("updated_at", DateTime),
    mysql_charset="utf8mb4",
)
assets = Table(  # UUID keys
    "assets",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("body", Text),
    Column("updated_at", DateTime),
    mysql_charset="utf8mb4",
)


def ticket(i: int, **values: Any) -> dict[str, Any]:
    """Ticket ``i``: created a day before T0, updated ``i`` minutes after it."""
    row = {
        "id": i,
        "title": f"Ticket {i}",
        "body": f"The printer on floor {i} jams when printing double-sided pages.",
        "team": "ops",
        "priority": i % 3,
        "score": "2.50",
        "created_at": T0 - timedelta(days=1),
        "updated_at": T0 + timedelta(minutes=i),
        "version": i,
        "is_deleted": False,
    }
    row.update(values)
    return row


def insert(db, rows: list[dict[str, Any]], table: Table = tickets) -> None:
    with db.engine.begin() as conn:
        conn.execute(table.insert(), rows)


def change(db, i: int, **values: Any) -> None:
    with db.engine.begin() as conn:
        conn.execute(tickets.update().where(tickets.c.id == i).values(**values))


def remove(db, *ids: int) -> None:
    with db.engine.begin() as conn:
        conn.execute(tickets.delete().where(tickets.c.id.in_(ids)))


def row_count(db, table: Table = tickets) -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()
