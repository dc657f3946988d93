"""Roles: one holder at a time of a long-lived job. Taking a role always succeeds (the newest run wins); the holder
it replaces learns so when its next renewal finds another name, and stops."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update

from indexing.catalog.engine import CatalogEngine, now_utc
from indexing.schema import roles


class Roles(CatalogEngine):
    def take_role(self, name: str, holder: str, now: datetime | None = None) -> str | None:
        """Hold ``name`` from now; returns the holder replaced (None when nobody held it)."""
        now = now or now_utc()
        with self._write() as conn:
            before = conn.execute(select(roles.c.holder).where(roles.c.name == name)).scalar()
            if before is None:
                conn.execute(roles.insert().values(name=name, holder=holder, since=now, renewed_at=now))
            else:
                conn.execute(update(roles).where(roles.c.name == name).values(holder=holder, since=now, renewed_at=now))
        return before

    def renew_role(self, name: str, holder: str, now: datetime | None = None) -> str | None:
        """Still ``holder``'s: renewed, None. Taken over: the new holder's name (nothing is written)."""
        with self._write() as conn:
            done = conn.execute(
                update(roles).where(roles.c.name == name, roles.c.holder == holder).values(renewed_at=now or now_utc())
            )
            if done.rowcount:
                return None
            return conn.execute(select(roles.c.holder).where(roles.c.name == name)).scalar() or "nobody"

    def release_role(self, name: str, holder: str) -> None:
        """Give ``name`` up, if ``holder`` still holds it."""
        with self._write() as conn:
            conn.execute(delete(roles).where(roles.c.name == name, roles.c.holder == holder))

    def role_holder(self, name: str) -> dict | None:
        with self._read() as conn:
            row = conn.execute(select(roles).where(roles.c.name == name)).first()
        return dict(row._mapping) if row else None
