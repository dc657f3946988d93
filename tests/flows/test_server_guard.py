"""The Prefect server `kup up` starts keeps its secrets: a DNS-rebinding page or another site cannot read them, and
beyond loopback nobody without the credential can (issue 28, finding 2). Against a real Prefect server."""

from __future__ import annotations

import os
import stat
import subprocess

import httpx
import pytest

from errors import ConfigError
from fixtures import free_port
from flows.server import AUTH_FILE, prefect_env, start_server, stop_server
from flows.settings import Settings

PASSWORD = "pg-password-7f3a91"
STEAL = {"include_secrets": True}  # what a rebinding page posts to /api/block_documents/filter


def _store_secret(api: str) -> None:
    from prefect.blocks.system import Secret
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}):
        Secret(value=PASSWORD).save("kup-catalog-password", overwrite=True)


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Start kup up's Prefect server with the settings a test passes; stopped afterwards."""
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "unset")
    monkeypatch.delenv("PREFECT_API_AUTH_STRING")  # restored to absent: start_server may set it for this process
    monkeypatch.delenv("PREFECT_SERVER_API_AUTH_STRING", raising=False)
    started: list[subprocess.Popen] = []

    def start(**overrides) -> Settings:
        port = free_port()
        s = Settings(data_dir=tmp_path / "data", prefect_api_url=f"http://127.0.0.1:{port}/api", **overrides)
        started.append(start_server(s))
        return s

    yield start
    for process in started:
        stop_server(process)


@pytest.mark.slow
def test_a_rebinding_page_or_another_site_cannot_read_the_servers_secrets(server) -> None:
    s = server()
    api = s.prefect_api_url
    port = api.split(":")[2].split("/")[0]
    _store_secret(api)

    rebound = httpx.post(
        f"{api}/block_documents/filter",
        json=STEAL,
        headers={"Host": f"attacker.example:{port}", "Origin": f"http://attacker.example:{port}"},
        timeout=10,
    )
    assert rebound.status_code == 400 and PASSWORD not in rebound.text
    assert "KUP_PREFECT_ALLOWED_HOSTS" in rebound.json()["detail"]

    cross_site = httpx.post(
        f"{api}/block_documents/filter", json=STEAL, headers={"Origin": "http://attacker.example"}, timeout=10
    )
    assert cross_site.status_code == 403 and PASSWORD not in cross_site.text

    # The user who started it still has it all, a click away: the dashboard, and the API from the dashboard's pages.
    dashboard = httpx.get(f"http://127.0.0.1:{port}/", timeout=10, follow_redirects=True)
    assert dashboard.status_code == 200 and "<html" in dashboard.text.lower()
    own_page = httpx.post(
        f"{api}/block_documents/filter", json=STEAL, headers={"Origin": f"http://127.0.0.1:{port}"}, timeout=10
    )
    assert own_page.status_code == 200 and PASSWORD in own_page.text  # what the guard stands between

    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with pytest.raises(InvalidStatus):  # the live event stream refuses another site's page too
        connect(f"ws://127.0.0.1:{port}/api/events/out", origin="http://attacker.example", open_timeout=10)
    assert not (s.prefect_home / AUTH_FILE).exists()  # on loopback no credential is needed, none is made


@pytest.mark.slow
def test_beyond_loopback_the_server_requires_a_credential_kept_owner_only(server) -> None:
    from flows.health import read_schedule

    s = server(prefect_server_host="0.0.0.0")
    api = s.prefect_api_url
    credential_file = s.prefect_home / AUTH_FILE
    assert stat.S_IMODE(credential_file.stat().st_mode) == 0o600
    credential = credential_file.read_text().strip()
    user, _, password = credential.partition(":")
    assert user == "kup" and len(password) >= 24

    anonymous = httpx.post(f"{api}/block_documents/filter", json=STEAL, timeout=10)
    assert anonymous.status_code == 401
    wrong = httpx.post(f"{api}/block_documents/filter", json=STEAL, auth=(user, "guess"), timeout=10)
    assert wrong.status_code == 401
    rebound = httpx.post(
        f"{api}/block_documents/filter", json=STEAL, auth=(user, password), headers={"Host": "attacker.example"}
    )
    assert rebound.status_code == 400

    # kup's own processes carry it: this one and the runs it starts (start_server exported it).
    assert os.environ["PREFECT_API_AUTH_STRING"] == credential
    _store_secret(api)  # Prefect's client, authenticated
    assert read_schedule(api).reachable  # kup's own REST calls, authenticated
    mine = httpx.post(f"{api}/block_documents/filter", json=STEAL, auth=(user, password), timeout=10)
    assert mine.status_code == 200 and PASSWORD in mine.text


def test_the_credential_reaches_kup_processes_and_a_readable_one_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
    s = Settings(data_dir=tmp_path)
    assert "PREFECT_API_AUTH_STRING" not in prefect_env(s)  # no server of ours beyond loopback: nothing to send
    s.prefect_home.mkdir(parents=True)
    path = s.prefect_home / AUTH_FILE
    path.write_text("kup:the-credential\n")
    path.chmod(0o600)
    assert prefect_env(s)["PREFECT_API_AUTH_STRING"] == "kup:the-credential"
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="can be read by other users.*chmod 600"):
        prefect_env(s)
