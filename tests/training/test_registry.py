"""The adapter registry: atomic adds, promotion, rollback and a pointer readers never see half-written."""

from __future__ import annotations

import json
import threading

import pytest

from errors import ConfigError, InputError
from training.registry import POINTER, AdapterRegistry


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
