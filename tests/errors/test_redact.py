"""Credentials never reach a message: URL passwords and secret query values are masked."""

from __future__ import annotations

import pytest

from errors.redact import is_secret_param, mask_text, mask_url


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("postgresql+psycopg://reader:hunter2@db.example/support", "hunter2"),
        ("postgresql://db.example/support?user=reader&password=hunter2", "hunter2"),
        ("https://admin:s3cr3t-pw@qdrant.example:6333", "s3cr3t-pw"),
        ("https://qdrant.example:6333/?api_key=abc123def", "abc123def"),
        ("postgres ql://kup:hunter2-secret@127.0.0.1/db", "hunter2-secret"),
        ("mysql+pymysql://root:p%40ss@127.0.0.1/test?sslpassword=xyz789", "p%40ss"),
    ],
)
def test_mask_url_hides_every_credential(url: str, secret: str) -> None:
    masked = mask_url(url)
    assert secret not in masked
    assert "***" in masked


def test_mask_url_keeps_what_identifies_the_server() -> None:
    masked = mask_url("postgresql+psycopg://reader:hunter2@db.example:5432/support?sslmode=require")
    assert masked == "postgresql+psycopg://reader:***@db.example:5432/support?sslmode=require"
    assert mask_url("https://example.org/feed.xml?page=2") == "https://example.org/feed.xml?page=2"


def test_an_sqlite_url_keeps_its_slashes() -> None:
    """`kup status` showed sqlite:////srv/kup/catalog.db as sqlite://srv/kup/catalog.db: a host named srv."""
    assert mask_url("sqlite:////srv/kup/catalog.db") == "sqlite:////srv/kup/catalog.db"
    assert mask_url("sqlite:///relative/catalog.db") == "sqlite:///relative/catalog.db"


def test_mask_text_hides_urls_inside_messages_and_named_secrets() -> None:
    message = 'connection to "postgresql://u:topsecret@h/db?password=other" failed; token hunter2 rejected'
    masked = mask_text(message, ["hunter2"])
    assert "topsecret" not in masked and "other" not in masked and "hunter2" not in masked
    assert "connection to" in masked and "rejected" in masked


def test_mask_text_is_stable_when_applied_twice_and_keeps_surrounding_punctuation() -> None:
    message = "connect (postgresql://u@h/db?password=hunter2): cannot connect"
    once = mask_text(message)
    assert "hunter2" not in once and once.endswith("): cannot connect")
    assert mask_text(once) == once


def test_userinfo_without_a_scheme_is_masked_but_times_are_not() -> None:
    assert "pw123" not in mask_text("could not reach user:pw123@qdrant.example:6333")
    assert mask_text("next try at 12:30:00 UTC") == "next try at 12:30:00 UTC"
    assert mask_text("ratio 3:1 at noon") == "ratio 3:1 at noon"


def test_is_secret_param_names_credentials_only() -> None:
    assert all(is_secret_param(n) for n in ("password", "sslpassword", "api_key", "access_token", "X-Auth"))
    assert not any(is_secret_param(n) for n in ("sslmode", "page", "user", "host", "application_name"))


def test_a_password_holding_a_colon_is_masked_whole() -> None:
    masked = mask_text("could not connect to postgresql://kup:pa:ss-word@db/x")
    assert "pa:ss" not in masked and "ss-word" not in masked and "db/x" in masked
