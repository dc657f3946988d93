"""Credentials never reach a message: URL passwords and secret query values are masked."""

from __future__ import annotations

import pytest

from errors.redact import mask_text, mask_url


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


def test_mask_text_hides_urls_inside_messages_and_named_secrets() -> None:
    message = 'connection to "postgresql://u:topsecret@h/db?password=other" failed; token hunter2 rejected'
    masked = mask_text(message, ["hunter2"])
    assert "topsecret" not in masked and "other" not in masked and "hunter2" not in masked
    assert "connection to" in masked and "rejected" in masked
