"""The fine-tune flow (placeholder until the Mix-review LoRA training lands)."""

from __future__ import annotations

from prefect import flow, get_run_logger


@flow(name="finetune")
def finetune() -> dict:
    """Will train a LoRA adapter on what arrived since the champion, with Mix-review; not built yet."""
    get_run_logger().warning("fine-tuning is not available yet; nothing was trained")
    return {"trained": False, "reason": "not implemented yet"}
