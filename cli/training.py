"""``kup finetune`` and ``kup adapters list|promote|rollback``: train a candidate adapter and manage the champion."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.models import announce_preparation
from cli.shared import console, friendly, report_to_running_server, settings
from errors import KupError


@friendly
def finetune(
    ctx: typer.Context,
    recipe: Annotated[Path | None, typer.Option(help="Training recipe (YAML) [env: KUP_RECIPE]")] = None,
    method: Annotated[
        str | None, typer.Option(help="mix_review, none, l2, recadam or ewc (overrides the recipe)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON")] = False,
) -> None:
    """Train a candidate adapter on what arrived since the champion; promote it only if the gate passes."""
    from training import load_recipe

    s = settings(ctx)
    load_recipe(recipe or s.recipe, method=method)  # a bad recipe fails here, with every problem listed
    announce_preparation(s)
    report_to_running_server(s)
    from cli.views import to_json
    from cli.views_training import print_finetune
    from flows.finetune import finetune as finetune_flow
    from flows.settings import settings_in_force

    with settings_in_force(s):
        state = finetune_flow(
            recipe=str(recipe) if recipe else None, method=method, progress_bar=not as_json, return_state=True
        )
    result = state.result(raise_on_failure=False)
    if not isinstance(result, dict):
        raise KupError(f"the fine-tune run failed: {state.message or result}")
    if as_json:
        console.print_json(to_json(result))
    else:
        print_finetune(result, console)
    if result["status"] == "rejected":
        raise typer.Exit(1)


adapters_app = typer.Typer(help="List, promote and roll back fine-tuned adapters.", no_args_is_help=True)


def _registry(ctx: typer.Context):
    from training.registry import AdapterRegistry

    return AdapterRegistry(settings(ctx).data_path / "adapters")


@adapters_app.command("list")
@friendly
def adapters_list(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False
) -> None:
    """Every adapter, newest last; the champion is marked."""
    from cli.views import to_json
    from cli.views_training import adapters_data, print_adapters

    rows = adapters_data(_registry(ctx))
    if as_json:
        console.print_json(to_json(rows))
    else:
        print_adapters(rows, console)


@adapters_app.command("promote")
@friendly
def adapters_promote(
    ctx: typer.Context,
    adapter_id: Annotated[str, typer.Argument(help="The adapter to make champion")],
    force: Annotated[bool, typer.Option(help="Promote even an adapter the gate rejected")] = False,
) -> None:
    """Make an adapter the champion (one atomic switch)."""
    _registry(ctx).promote(adapter_id, force=force)
    console.print(f"champion is now {adapter_id}")
    _tell_the_fleet(ctx)


@adapters_app.command("rollback")
@friendly
def adapters_rollback(ctx: typer.Context) -> None:
    """Put the previous champion back (or the bare base model when there was none)."""
    previous = _registry(ctx).rollback()
    console.print(f"champion is now {previous.id}" if previous else "no champion: answers use the base model")
    _tell_the_fleet(ctx)


@adapters_app.command("announce")
@friendly
def adapters_announce(
    ctx: typer.Context,
    every: Annotated[bool, typer.Option("--all", help="Tell every server, not only those still pending")] = False,
) -> None:
    """Tell the serving servers (KUP_SERVING_URLS) to load the champion under its stable name."""
    from flows.runtime import serving_servers

    if not serving_servers(settings(ctx)):
        raise KupError("no serving server is set: list them in KUP_SERVING_URLS")
    if not _tell_the_fleet(ctx, only_pending=not every):
        console.print("every serving server has the champion already (--all tells them again)")


def _tell_the_fleet(ctx: typer.Context, *, only_pending: bool = False) -> int:
    """Tell the serving servers the champion, a line for each; one sentence (exit 2, like every refusal) when one
    did not take it."""
    from flows.runtime import serving_servers
    from training.serving import announce, failure_sentence

    servers = serving_servers(settings(ctx))
    if not servers:
        return 0
    outcomes = announce(servers, _registry(ctx), only_pending=only_pending)
    for o in outcomes:
        console.print(f"{o.server}: {o.message}" if o.ok else f"{o.server}: not told ({o.message})", markup=False)
    if refused := failure_sentence(outcomes):
        raise KupError(refused)
    return len(outcomes)
