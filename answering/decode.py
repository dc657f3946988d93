"""Decoding: plain greedy generation (streamed), and RAG-token (Lewis et al., 2020).

RAG-token runs one forward pass per retrieved passage; the next-token distribution is the mixture of
the per-passage distributions weighted by the softmax of the retrieval scores, combined in log space:
``log p(y) = logsumexp_k (log w_k + log p_k(y))``. The passages share one batch with their own KV
caches, so each new token costs one batched forward step.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from errors import KupError


def mixture_logprobs(logits, log_weights):
    """``logits``: [K, V] per-passage next-token logits; ``log_weights``: [K] log mixture weights.

    Returns the [V] log-probabilities of the mixture.
    """
    import torch

    return torch.logsumexp(torch.log_softmax(logits.float(), dim=-1) + log_weights[:, None], dim=0)


def retrieval_log_weights(scores: Sequence[float], temperature: float):
    import torch

    return torch.log_softmax(torch.tensor(scores, dtype=torch.float32) / temperature, dim=0)


def _stop_ids(tokenizer) -> set[int]:
    ids = {tokenizer.eos_token_id}
    for token in ("<|im_end|>", "<|endoftext|>"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            ids.add(token_id)
    return {i for i in ids if i is not None}


def stream_greedy(model, tokenizer, prompt: str, *, max_new_tokens: int) -> Iterator[str]:
    """Greedy generation, yielding text pieces as they are produced."""
    import torch
    from transformers import TextIteratorStreamer

    device = next(model.parameters()).device
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(device)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with torch.no_grad():
                model.generate(
                    **inputs,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    streamer=streamer,
                    eos_token_id=sorted(_stop_ids(tokenizer)),
                    pad_token_id=tokenizer.pad_token_id,
                    use_cache=True,
                )
        except BaseException as exc:  # surfaced in the caller's thread below
            errors.append(exc)
            streamer.end()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    yield from streamer
    worker.join()
    if errors:
        raise errors[0]


def _left_padded(tokenizer, prompts: Sequence[str], device):
    import torch

    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    longest = max(len(e) for e in encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.full((len(encoded), longest), pad, dtype=torch.long)
    mask = torch.zeros((len(encoded), longest), dtype=torch.long)
    for row, e in enumerate(encoded):
        ids[row, longest - len(e) :] = torch.tensor(e)
        mask[row, longest - len(e) :] = 1
    return ids.to(device), mask.to(device)


def stream_rag_token(
    model,
    tokenizer,
    prompts: Sequence[str],
    scores: Sequence[float],
    *,
    max_new_tokens: int,
    temperature: float = 0.05,
) -> Iterator[str]:
    """Greedy RAG-token decoding over one prompt per passage, yielding text pieces."""
    import torch

    device = next(model.parameters()).device
    log_weights = retrieval_log_weights(scores, temperature).to(device)
    ids, mask = _left_padded(tokenizer, prompts, device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    stop = _stop_ids(tokenizer)
    produced: list[int] = []
    shown = ""
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
        for _ in range(max_new_tokens):
            token = int(mixture_logprobs(out.logits[:, -1, :], log_weights).argmax())
            if token in stop:
                break
            produced.append(token)
            text = tokenizer.decode(produced, skip_special_tokens=True)
            if len(text) > len(shown) and not text.endswith("\ufffd"):  # wait for whole characters
                yield text[len(shown) :]
                shown = text
            mask = torch.cat([mask, torch.ones((mask.shape[0], 1), dtype=mask.dtype, device=device)], dim=1)
            positions = positions[:, -1:] + 1
            step = torch.full((ids.shape[0], 1), token, dtype=torch.long, device=device)
            out = model(
                input_ids=step,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=out.past_key_values,
                use_cache=True,
            )


def token_mixture(per_passage: Sequence[Sequence[float]], log_weights) -> list[float]:
    """RAG-token on a known continuation: per token, the weighted mixture of the passages' log-probabilities
    (``per_passage[k][t]``), in log space."""
    import torch

    return torch.logsumexp(torch.tensor(per_passage) + log_weights[:, None], dim=0).tolist()


def choices_logprobs(model, tokenizer, prompt: str, choices: Sequence[str]) -> list[list[float]]:
    """Per-token log-probabilities of each choice after ``prompt``; the prompt is read once and its
    KV cache reused for every choice (multiple-choice scoring)."""
    import copy

    import torch

    if not hasattr(model, "parameters"):  # answering.remote_reader: a chat-completions server
        raise KupError(
            "multiple-choice scoring reads the reader's token probabilities, which a model server does not give; "
            "unset KUP_READER_URL to score with the model loaded here"
        )
    device = next(model.parameters()).device
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = model(input_ids=torch.tensor([prompt_ids], device=device), use_cache=True)
        last = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        scores = []
        for choice in choices:
            ids = tokenizer(choice, add_special_tokens=False)["input_ids"]
            logprobs = [float(last[ids[0]])]
            if len(ids) > 1:
                cont = model(
                    input_ids=torch.tensor([ids[:-1]], device=device),
                    past_key_values=copy.deepcopy(out.past_key_values),
                    use_cache=True,
                )
                following = torch.log_softmax(cont.logits[0].float(), dim=-1)
                logprobs += [float(following[i, t]) for i, t in enumerate(ids[1:])]
            scores.append(logprobs)
    return scores
