"""The catalog: SQL state of every document, source cursor, failure and refresh run.

SQLite under the data directory by default, PostgreSQL by URL. A document is committed here
before it is indexed, and marked indexed only after its points are written: the catalog is
the to-do list that survives crashes. ``Catalog`` is the one face the rest of the code uses;
each concept it gathers lives in its own module here.
"""

from indexing.catalog.documents import Documents
from indexing.catalog.engine import _MIGRATIONS as _MIGRATIONS  # where the schema migrations live
from indexing.catalog.engine import now_utc
from indexing.catalog.failures import SOURCE_ITEM
from indexing.catalog.leases import Leases, lease_owner
from indexing.catalog.roles import Roles
from indexing.catalog.rows import LIVE_STATUSES, DocRow
from indexing.catalog.runs import Runs
from indexing.catalog.sources import Sources, backoff
from indexing.catalog.story_assignment import Stories


class Catalog(Documents, Leases, Stories, Sources, Runs, Roles):
    """Documents, leases, stories, sources, failures, runs and roles over one database (see each module)."""


__all__ = ["LIVE_STATUSES", "SOURCE_ITEM", "Catalog", "DocRow", "backoff", "lease_owner", "now_utc"]
