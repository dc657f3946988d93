"""The adapter registry: atomic adds, promotion, rollback and a pointer readers never see half-written."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time

import pytest
from typer.testing import CliRunner

from errors import ConfigError, InputError
from training.registry import POINTER, STALE_AFTER_S, AdapterRegistry


def add(registry: AdapterRegistry, passed: bool = True, fail: bool = False):
    def write(directory):
        (directory / "adapter_config.json").write_text("{}")
        if fail:
            raise RuntimeError("disk full")

    return registry.add(write, {"verdict": {"passed": passed, "reasons": [] if passed else ["too much forgetting"]}})


def test_add_promote_and_rollback(tmp_path) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    assert registry.champion() is None and registry.list() == []
    a, b = add(registry), add(registry)
    assert [x.id for x in registry.list()] == [a.id, b.id]
    registry.promote(a.id)
    registry.promote(b.id)
    assert registry.champion().id == b.id and registry.history() == [a.id]
    assert registry.rollback().id == a.id
    assert registry.champion().id == a.id and registry.history() == []
    assert registry.rollback() is None and registry.champion() is None  # back to the bare base model
    with pytest.raises(ConfigError, match="no champion"):
        registry.rollback()


def test_a_rejected_adapter_is_promoted_only_when_forced(tmp_path) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    good, rejected = add(registry), add(registry, passed=False)
    registry.promote(good.id)
    with pytest.raises(InputError, match=r"failed the gate \(too much forgetting\); pass --force"):
        registry.promote(rejected.id)
    assert registry.champion().id == good.id and registry.history() == []
    assert registry.promote(rejected.id, force=True).id == rejected.id
    assert registry.champion().id == rejected.id and registry.history() == [good.id]


def test_a_failed_write_leaves_nothing_behind(tmp_path) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    with pytest.raises(RuntimeError):
        add(registry, fail=True)
    assert registry.list() == []
    assert [p.name for p in (tmp_path / "adapters").iterdir() if not p.name.startswith(".lock")] == []


def test_unknown_ids_are_refused_clearly(tmp_path) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    a = add(registry)
    for bad in ("nope", "../etc", ".staging-x"):
        with pytest.raises(ConfigError, match=a.id):
            registry.get(bad)


def test_readers_never_see_a_half_written_pointer(tmp_path) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    ids = [add(registry).id for _ in range(3)]
    registry.promote(ids[0])
    errors: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                pointer = json.loads((tmp_path / "adapters" / POINTER).read_text())
                assert pointer["id"] in ids
            except Exception as exc:  # noqa: BLE001 - any failure is a torn read
                errors.append(repr(exc))

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    for i in range(200):
        registry.promote(ids[i % 3])
    stop.set()
    for t in readers:
        t.join()
    assert errors == []


def leave_staging(root, name: str, *, age_s: float = 0.0):
    """What a kill between writing the manifest and the rename leaves: a complete-looking hidden directory."""
    staging = root / f".staging-{name}"
    staging.mkdir(parents=True)
    (staging / "adapter_config.json").write_text("{}")
    manifest = {"id": name, "created_at": "2026-01-01T00:00:00+00:00", "verdict": {"passed": True}}
    (staging / "manifest.json").write_text(json.dumps(manifest))
    then = time.time() - age_s
    for path in (*staging.iterdir(), staging):
        os.utime(path, (then, then))
    return staging


def test_a_staging_directory_left_by_a_kill_is_invisible(tmp_path) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    a, b = add(registry), add(registry)
    leave_staging(tmp_path / "adapters", "20260101-000000-dead00")
    assert [x.id for x in registry.list()] == [a.id, b.id]  # was a RecursionError (get and list called each other)
    assert registry.promote(a.id).id == a.id and registry.champion().id == a.id
    with pytest.raises(ConfigError, match=f"no adapter '.staging-20260101-000000-dead00'; known adapters: {a.id}"):
        registry.promote(".staging-20260101-000000-dead00")
    assert [x.id for x in AdapterRegistry(tmp_path / "adapters").list()] == [a.id, b.id]


def test_stale_staging_directories_are_removed_fresh_ones_kept(tmp_path) -> None:
    root = tmp_path / "adapters"
    stale = leave_staging(root, "20260101-000000-aaaaaa", age_s=STALE_AFTER_S + 60)
    fresh = leave_staging(root, "20260101-000000-bbbbbb", age_s=60)  # a writer may still own it
    registry = AdapterRegistry(root)
    assert not stale.exists() and fresh.exists()
    later = leave_staging(root, "20260101-000000-cccccc", age_s=STALE_AFTER_S + 60)
    a = add(registry)  # the next save cleans up too
    assert not later.exists() and fresh.exists()
    assert [x.id for x in registry.list()] == [a.id]


@pytest.mark.parametrize(
    "manifest",
    [
        "{not json",
        "[1, 2]",
        json.dumps({"id": "x", "verdict": {"passed": True}}),  # no created_at
        json.dumps({"created_at": "yesterday", "verdict": {"passed": True}}),
        json.dumps({"created_at": 5, "verdict": {"passed": True}}),
    ],
)
def test_a_broken_manifest_is_skipped_with_a_warning(tmp_path, caplog, manifest: str) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    good = add(registry)
    broken = tmp_path / "adapters" / "20260101-000000-b0b0b0"
    broken.mkdir()
    (broken / "manifest.json").write_text(manifest)
    with caplog.at_level(logging.WARNING, logger="training.registry"):
        assert [x.id for x in registry.list()] == [good.id]
    assert any(broken.name in r.getMessage() and "manifest" in r.getMessage() for r in caplog.records)
    for call in (lambda: registry.get(broken.name), lambda: registry.promote(broken.name, force=True)):
        with pytest.raises(ConfigError, match=rf"adapter {broken.name} has .*; restore its manifest or remove"):
            call()
    assert registry.champion() is None


def test_adapters_list_and_promote_on_the_cli_survive_leftovers(tmp_path) -> None:
    from cli.main import app

    registry = AdapterRegistry(tmp_path / "adapters")
    a = add(registry)
    leave_staging(tmp_path / "adapters", "20260101-000000-dead00")
    (tmp_path / "adapters" / "20260101-000000-b0b0b0").mkdir()
    (tmp_path / "adapters" / "20260101-000000-b0b0b0" / "manifest.json").write_text("{}")  # no created_at
    env = {"KUP_DATA_DIR": str(tmp_path)}
    promoted = CliRunner().invoke(app, ["adapters", "promote", a.id], env=env)
    assert promoted.exit_code == 0, promoted.output
    listed = CliRunner().invoke(app, ["adapters", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert [(r["id"], r["champion"]) for r in json.loads(listed.stdout)] == [(a.id, True)]


def test_rollback_to_a_deleted_adapter_changes_nothing(tmp_path) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    a, b = add(registry), add(registry)
    registry.promote(a.id)
    registry.promote(b.id)
    shutil.rmtree(a.path)
    before = (tmp_path / "adapters" / POINTER).read_bytes()
    with pytest.raises(ConfigError, match=rf"cannot roll back to '{a.id}'.*; {b.id} stays the champion"):
        registry.rollback()
    assert (tmp_path / "adapters" / POINTER).read_bytes() == before
    assert registry.champion().id == b.id and registry.history() == [a.id]
    left = sorted(p.name for p in (tmp_path / "adapters").iterdir())
    assert left == sorted([".lock", POINTER, b.id])  # no temporaries


@pytest.mark.parametrize(
    "pointer", ["{torn", '"just a string"', '{"id": 3, "history": []}', '{"id": "x", "history": 1}']
)
def test_an_unreadable_pointer_is_one_sentence(tmp_path, pointer: str) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    (tmp_path / "adapters" / POINTER).write_text(pointer)
    for call in (registry.champion, registry.rollback, lambda: registry.promote(add(registry).id)):
        with pytest.raises(ConfigError, match=r"champion\.json .*promote an adapter again"):
            call()


def test_a_champion_that_vanished_is_one_sentence(tmp_path) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    a = add(registry)
    registry.promote(a.id)
    shutil.rmtree(a.path)
    with pytest.raises(ConfigError, match=rf"the champion '{a.id}' named in champion\.json cannot be used"):
        registry.champion()
