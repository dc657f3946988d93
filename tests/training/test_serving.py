"""A new champion reaches the serving fleet (training.serving): a real HTTP server with vLLM's two runtime-LoRA
routes (fixtures.vllm_adapters) loads each adapter directory it is told with peft, so what kup announces is loadable;
failures are retried, recorded and said in one sentence."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from fixtures.vllm_adapters import AdapterServer
from training.registry import AdapterRegistry
from training.serving import RECORD, ServingServer, adapter_path, announce, failure_sentence, pending

KEY = "k3y-0f-the-fleet"


def lora_adapter(registry: AdapterRegistry, tiny_model_dir, *, seed: int = 0, broken: bool = False):
    """A real LoRA adapter of the tiny model in the registry, passed by the gate (``broken``: its weights are gone)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )

    def write(directory) -> None:
        model.save_pretrained(directory)
        if broken:
            for weights in directory.glob("adapter_model.*"):
                weights.unlink()

    return registry.add(write, {"verdict": {"passed": True, "reasons": []}, "base_model": str(tiny_model_dir)})


@pytest.fixture
def fleet(tiny_model_dir):
    server = AdapterServer(tiny_model_dir, api_key=KEY)
    url = server.start()
    yield server, url
    server.stop()


def test_each_champion_is_loaded_under_the_stable_name_and_rollback_unloads_it(tmp_path, tiny_model_dir, fleet) -> None:
    server, url = fleet
    registry = AdapterRegistry(tmp_path / "adapters")
    first, second = lora_adapter(registry, tiny_model_dir), lora_adapter(registry, tiny_model_dir, seed=1)
    servers = [ServingServer(url, "kup", KEY)]

    registry.promote(first.id)
    [told] = announce(servers, registry, pause=0.01)
    assert told.ok and told.adapter == first.id and server.loaded == {"kup": str(registry.root.resolve() / first.id)}
    assert [t["route"] for t in server.told] == ["unload_lora_adapter", "load_lora_adapter"]

    registry.promote(second.id)
    assert announce(servers, registry, pause=0.01)[0].ok
    assert server.loaded == {"kup": str(registry.root.resolve() / second.id)}  # replaced, under the same name
    assert pending(servers, registry) == [] and announce(servers, registry, only_pending=True) == []

    registry.rollback()  # back to the first
    registry.rollback()  # back to the bare base model: the name is only unloaded
    [told] = announce(servers, registry, pause=0.01)
    assert told.ok and told.adapter is None and server.loaded == {}
    record = json.loads((registry.root / RECORD).read_text())
    assert record[url]["ok"] and record[url]["adapter"] is None


def test_a_server_that_fails_is_retried_recorded_and_named(tmp_path, tiny_model_dir, fleet) -> None:
    server, url = fleet
    registry = AdapterRegistry(tmp_path / "adapters")
    registry.promote(lora_adapter(registry, tiny_model_dir).id)
    down = "http://127.0.0.1:9/v1-down"
    servers = [ServingServer(url, "kup", KEY), ServingServer(down, "kup", KEY)]

    server.failing = 2  # restarting: the first two requests answer 503, the third try gets through
    ok, gone = announce(servers, registry, attempts=3, pause=0.01)
    assert ok.ok and ok.attempts == 3 and "kup" in server.loaded
    assert not gone.ok and gone.attempts == 3 and "not reachable" in gone.message
    sentence = failure_sentence([ok, gone])
    assert down in sentence and "`kup adapters announce` tries again" in sentence and "\n" not in sentence
    assert pending(servers, registry) == [down]

    server.told.clear()
    again = announce(servers, registry, only_pending=True, attempts=1)  # only the one still pending is tried
    assert [o.server for o in again] == [down] and server.told == []


def test_an_adapter_the_server_cannot_load_is_a_failure_not_a_silent_skip(tmp_path, tiny_model_dir, fleet) -> None:
    server, url = fleet
    registry = AdapterRegistry(tmp_path / "adapters")
    registry.promote(lora_adapter(registry, tiny_model_dir, broken=True).id)
    [told] = announce([ServingServer(url, "kup", KEY)], registry, attempts=2, pause=0.01)
    assert not told.ok and "HTTP 400" in told.message and "Loading lora kup failed" in told.message
    assert server.loaded == {}
    wrong_key = announce([ServingServer(url, "kup", "not-the-key")], registry, attempts=1)[0]
    assert not wrong_key.ok and "HTTP 401" in wrong_key.message and "not-the-key" not in json.dumps(vars(wrong_key))


def test_the_path_is_the_one_the_server_sees(tmp_path) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    assert adapter_path(ServingServer("http://x", adapters_dir="/mnt/kup/adapters/"), registry, "a1") == (
        "/mnt/kup/adapters/a1"
    )
    assert adapter_path(ServingServer("http://x"), registry, "a1") == f"{registry.root.resolve()}/a1"


def test_kup_adapters_promote_tells_the_fleet_and_says_when_it_could_not(
    tmp_path, tiny_model_dir, fleet, monkeypatch
) -> None:
    server, url = fleet
    registry = AdapterRegistry(tmp_path / "data" / "adapters")
    adapter = lora_adapter(registry, tiny_model_dir)
    monkeypatch.setenv("KUP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KUP_SERVING_URLS", url)
    monkeypatch.setenv("KUP_SERVING_KEY", KEY)
    runner = CliRunner()
    done = runner.invoke(app, ["adapters", "promote", adapter.id])
    assert done.exit_code == 0, done.output
    assert f"champion is now {adapter.id}" in done.output and f"{adapter.id} loaded as kup" in done.output
    assert server.loaded == {"kup": str(registry.root.resolve() / adapter.id)}

    server.failing = 100  # down for good: the rollback is made, and said to have not reached it
    rolled = runner.invoke(app, ["adapters", "rollback"])
    assert rolled.exit_code == 2 and "did not reach 1 serving server(s)" in rolled.output  # a KupError
    assert "Traceback" not in rolled.output and registry.champion() is None
    server.failing = 0
    retried = runner.invoke(app, ["adapters", "announce"])
    assert retried.exit_code == 0 and "unloaded" in retried.output and server.loaded == {}
