"""Credentials given in a SQL source's URL query string never reach a message, on the real PostgreSQL."""

from __future__ import annotations

import pytest

from connectors.sources import SqlSource
from connectors.sql import SqlReader
from errors import SourceError

ENV = "KUP_TEST_SOURCE_URL"
SECRET = "hunter2-in-the-query"


def _source() -> SqlSource:
    return SqlSource(
        type="sql", name="tickets", url_env=ENV, table="tickets", id_columns=["id"], text="{title}", updated_column="u"
    )


@pytest.mark.parametrize("source_db", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    "query",
    [
        f"?password={SECRET}",
        f"?sslpassword={SECRET}&sslmode=require",
        f"?user=reader&password={SECRET}&target_session_attrs=bogus",
    ],
)
def test_a_password_in_the_query_string_is_masked(source_db, query) -> None:
    base = source_db.url.rsplit("/", 1)[0]
    reader = SqlReader(_source(), {ENV: f"{base}/no_such_db_for_kup{query}"})
    with reader, pytest.raises(SourceError) as caught:
        reader.check()
    message = str(caught.value)
    assert ENV in message and "***" in message
    assert SECRET not in message and "hunter2" not in message
