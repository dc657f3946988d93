"""A fresh catalog on SQLite and on the real PostgreSQL server for each test."""

from __future__ import annotations

import pytest

from indexing import Catalog


@pytest.fixture
def catalog(catalog_url: str):
    cat = Catalog(catalog_url)
    yield cat
    cat.close()
