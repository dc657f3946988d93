"""Deployments as declared in ``prefect.yaml``, turned into runner deployments for ``kup up`` to serve."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from errors import ConfigError

PROJECT_DIR = Path(__file__).resolve().parent.parent
PREFECT_YAML = PROJECT_DIR / "prefect.yaml"


@dataclass
class DeploymentSpec:
    name: str
    entrypoint: str
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    schedules: list[dict[str, Any]] = field(default_factory=list)
    concurrency_limit: dict[str, Any] | int | None = None
    tags: list[str] = field(default_factory=list)
    triggers: list[dict[str, Any]] = field(default_factory=list)  # automations that run this deployment

    @property
    def flow_name(self) -> str:
        return self.entrypoint.rsplit(":", 1)[1].replace("_", "-")

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{self.name}"


def read_specs(path: Path = PREFECT_YAML) -> list[DeploymentSpec]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    specs = []
    for raw in data.get("deployments") or []:
        specs.append(
            DeploymentSpec(
                name=raw["name"],
                entrypoint=raw["entrypoint"],
                description=raw.get("description"),
                parameters=raw.get("parameters") or {},
                schedules=raw.get("schedules") or [],
                concurrency_limit=raw.get("concurrency_limit"),
                tags=raw.get("tags") or [],
                triggers=raw.get("triggers") or [],
            )
        )
    return specs


def _triggers(spec: DeploymentSpec) -> list:
    """The deployment's triggers as Prefect models (each becomes an automation whose action runs the deployment,
    as ``prefect deploy`` makes them); named ``DEPLOYMENT__automation_N`` unless the declaration names them."""
    from prefect.events import DeploymentTriggerTypes
    from pydantic import TypeAdapter, ValidationError

    adapter = TypeAdapter(DeploymentTriggerTypes)
    out = []
    for i, raw in enumerate(spec.triggers, start=1):
        try:
            out.append(adapter.validate_python({"name": f"{spec.name}__automation_{i}", **raw}))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(
                f"trigger {i} of deployment {spec.name} in {PREFECT_YAML.name} is invalid: {problems}"
            ) from None
    return out


def _schedule(raw: dict[str, Any]):
    from prefect.schedules import Cron, Interval, RRule

    options = {k: raw[k] for k in ("timezone", "active", "parameters") if k in raw}
    if "interval" in raw:
        return Interval(raw["interval"], **options)
    if "cron" in raw:
        return Cron(raw["cron"], **options)
    if "rrule" in raw:
        return RRule(raw["rrule"], **options)
    raise ConfigError(f"schedule {raw} needs one of interval, cron or rrule")


def load_flow(entrypoint: str):
    from prefect.flows import load_flow_from_entrypoint

    path, _, name = entrypoint.partition(":")
    return load_flow_from_entrypoint(f"{PROJECT_DIR / path}:{name}")


def runner_deployments(specs: list[DeploymentSpec]) -> list:
    """RunnerDeployments for ``serve()``, with the schedules and limits that ``prefect.yaml`` declares."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig

    out = []
    for spec in specs:
        limit = spec.concurrency_limit
        if isinstance(limit, dict):
            limit = ConcurrencyLimitConfig(**limit)
        out.append(
            load_flow(spec.entrypoint).to_deployment(
                name=spec.name,
                description=spec.description,
                parameters=spec.parameters,
                schedules=[_schedule(s) for s in spec.schedules],
                concurrency_limit=limit,
                tags=spec.tags,
                triggers=_triggers(spec),
            )
        )
    return out
