"""Prompt distillation: the teacher reads the document, the student learns to answer without it.

Kujanpää, Marttinen, Valpola and Ilin, "Knowledge Injection via Prompt Distillation" (arXiv 2412.14964): for each
new document, questions about it (here the synthesis' trained questions, ``training.synthesis``, which include the
teacher-written ones when synthesis is "teacher"); the **teacher** is the frozen base model with the part of the
document that holds the answer (with its headline and date) in its prompt, and samples several answers to each
question; the **student** is the same model with the LoRA adapter and no document, trained to match the teacher's
next-token distribution at every token of those answers (KL(teacher || student), on the teacher's top-k
log-probabilities, renormalised over them).

The teacher's answers and top-k log-probabilities are cached per document content hash and setting (in the
synthesis cache's file), so a rerun or a run after a crash costs no teacher pass twice. A document the teacher
cannot answer about is a recorded skip with its reason; answers that are empty, degenerate or not grounded in the
passage are dropped and counted; a teacher pass that runs out of memory or time fails that document, not the run.

Prompts use the closed-book probes' form, ``Question: ...\\nAnswer:``, for both (the teacher's with the passage
above it), so the sampled answer tokens continue both prompts in the same way and the student learns the form the
probes ask in.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from training.corpus import Sample
from training.probes import prompt as student_prompt
from training.recipe import Distill
from training.synthesis import DocSynthesis, SynthesisCache, _words  # one tokenisation of words for both filters

logger = logging.getLogger(__name__)

DISTILL_VERSION = "distill-v1"


@dataclass
class DistillReport:
    """What the teacher did for one batch of documents: kept, dropped and skipped, and what it cost."""

    documents: int = 0
    cached: int = 0  # documents whose teacher answers came from the cache (no teacher pass)
    questions: int = 0
    answers_kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> answers
    skipped: list[dict] = field(default_factory=list)  # {doc_id, reason}: never silent
    teacher_tokens: int = 0  # prompt and sampled tokens the teacher processed (0 for cached documents)
    teacher_seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.teacher_tokens / self.teacher_seconds if self.teacher_seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["teacher_seconds"] = round(self.teacher_seconds, 2)
        taught = self.documents - self.cached
        out["teacher_seconds_per_document"] = round(self.teacher_seconds / taught, 2) if taught else 0.0
        out["teacher_tokens_per_second"] = round(self.tokens_per_second, 1)
        return out


class TeacherFailed(Exception):
    """A teacher pass for one document that could not finish (memory, time): that document is skipped."""


def passage_prefix(title: str, published: str | None, passage: str) -> str:
    """What the teacher reads before a question: the headline and date, then the passage."""
    head = " ".join(title.split())
    if published:
        head = f"{head} ({str(published)[:10]})" if head else str(published)[:10]
    return f"{head}\n\n{passage}" if head else passage


def drop_reason(answer: str, passage: str) -> str | None:
    """Why a sampled answer is not trained on (empty, repeated, ungrounded), or None to keep it."""
    words = _words(answer)
    if not words:
        return "empty"
    if len(words) >= 6 and len(set(words)) / len(words) < 0.5:
        return "repeated"
    known = set(_words(passage))
    content = [w for w in words if len(w) >= 3 or w.isdigit()]
    if content and sum(w in known for w in content) / len(content) < 0.5:
        return "ungrounded"
    return None


def passages(tokenizer, text: str, budget: int) -> list[str]:
    """The document cut into consecutive passages of at most ``budget`` tokens, at paragraph (or, for a long
    paragraph, token) boundaries: the teacher is shown the passage that holds a question's answer."""
    out: list[str] = []
    current: list[str] = []
    used = 0
    for paragraph in (p.strip() for p in re.split(r"\n\s*\n|\n", text) if p.strip()):
        ids = tokenizer(paragraph, add_special_tokens=False)["input_ids"]
        pieces = [paragraph] if len(ids) <= budget else [
            tokenizer.decode(ids[i : i + budget]) for i in range(0, len(ids), budget)
        ]  # fmt: skip
        for piece in pieces:
            size = min(len(ids), budget)
            if current and used + size > budget:
                out.append("\n\n".join(current))
                current, used = [], 0
            current.append(piece)
            used += size
    if current:
        out.append("\n\n".join(current))
    return out


def passage_for(chunks: Sequence[str], answer: str) -> str:
    """The passage holding ``answer`` (the first such), else the first passage."""
    needle = answer.lower()
    return next((c for c in chunks if needle in c.lower()), chunks[0] if chunks else "")


def questions_of(synth: DocSynthesis, limit: int) -> list[dict]:
    """Up to ``limit`` of the document's trained questions (never its held-out ones), each headed as training heads
    it, spread over the kinds of fact by a fixed order (hash of the question)."""
    picked = sorted(synth.trained_qa(), key=lambda q: hashlib.sha256(q["question"].encode()).hexdigest())[:limit]
    return [{"question": synth.in_context(q), "answer": q["answer"]} for q in picked]


def _newline_id(tokenizer) -> int:
    return tokenizer("\n", add_special_tokens=False)["input_ids"][-1]


def _stop_ids(tokenizer) -> list[int]:
    """An answer ends at the end-of-text token or at the end of its line."""
    return sorted({t for t in (tokenizer.eos_token_id, _newline_id(tokenizer)) if t is not None})


def _rows(tokenizer, prefix_ids: list[int], tails: Sequence[list[int]]):
    """Ids and attention mask of rows that share ``prefix_ids`` and end with each of ``tails``, left-padded between
    the two so every tail ends at the right edge; and each row's position ids after the prefix."""
    import torch

    longest = max(map(len, tails))
    ids = torch.full((len(tails), len(prefix_ids) + longest), tokenizer.pad_token_id or 0, dtype=torch.long)
    mask = torch.zeros_like(ids)
    ids[:, : len(prefix_ids)] = torch.tensor(prefix_ids)
    mask[:, : len(prefix_ids)] = 1
    for row, tail in enumerate(tails):
        ids[row, ids.shape[1] - len(tail) :] = torch.tensor(tail)
        mask[row, ids.shape[1] - len(tail) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, len(prefix_ids) :]
    return ids, mask, positions


def _top(logprobs, length: int, top_k: int) -> tuple[list[list[int]], list[list[float]]]:
    top = logprobs[:length].topk(top_k, dim=-1)
    return top.indices.tolist(), [[round(v, 4) for v in row] for row in top.values.tolist()]


def teacher_answers(
    model, tokenizer, prefix: str, questions: Sequence[dict], settings: Distill, *, seed: int, deadline: float
) -> tuple[list[list[dict]], int]:
    """For each question (``question``, ``answer``): the reference answer and ``answers_per_question`` answers
    sampled from ``model`` after ``prefix`` + the question, each with the model's top-k log-probabilities (at
    temperature 1) at every answer token; and the tokens processed. The prefix (the passage) is encoded once and
    shared by every question and answer."""
    import torch

    if time.monotonic() > deadline:
        raise TeacherFailed("ran out of time")
    device = next(model.parameters()).device
    stops = _stop_ids(tokenizer)
    prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    asks = [tokenizer(f"\n\n{student_prompt(q['question'])}", add_special_tokens=False)["input_ids"] for q in questions]
    newline = [_newline_id(tokenizer)]
    refs = [tokenizer(f" {q['answer']}", add_special_tokens=False)["input_ids"] + newline for q in questions]
    out: list[list[dict]] = [[] for _ in questions]
    with torch.no_grad():
        shared = model(input_ids=torch.tensor([prefix_ids], device=device), use_cache=True).past_key_values
        processed = len(prefix_ids)
        # The reference answers, teacher-forced: one pass for all of them.
        ids, mask, positions = _rows(tokenizer, prefix_ids, [a + r for a, r in zip(asks, refs, strict=True)])
        cache = copy.deepcopy(shared)
        cache.batch_repeat_interleave(len(questions))
        logits = (
            model(
                input_ids=ids[:, len(prefix_ids) :].to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                past_key_values=cache,
            )
            .logits.float()
            .log_softmax(-1)
        )
        processed += sum(len(a) + len(r) for a, r in zip(asks, refs, strict=True))
        for q, ref in enumerate(refs):  # the position before each answer token predicts it
            top_ids, top_logprobs = _top(logits[q, -len(ref) - 1 : -1], len(ref), settings.top_k)
            out[q].append({"ids": ref, "top_ids": top_ids, "top_logprobs": top_logprobs, "reference": True})
        n = settings.answers_per_question
        if n:
            ids, mask, _ = _rows(tokenizer, prefix_ids, [a for a in asks for _ in range(n)])
            shared.batch_repeat_interleave(len(questions) * n)
            torch.manual_seed(seed)
            generated = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                past_key_values=shared,
                do_sample=True,
                temperature=settings.temperature,
                top_k=0,
                top_p=1.0,
                max_new_tokens=settings.max_answer_tokens,
                eos_token_id=stops,
                pad_token_id=tokenizer.pad_token_id,
                output_logits=True,
                return_dict_in_generate=True,
                max_time=max(0.1, deadline - time.monotonic()),
            )
            sampled = torch.stack(generated.logits, dim=1).float().log_softmax(-1)  # raw logits: temperature 1
            processed += sum(map(len, asks)) * n
            for r, tokens in enumerate(generated.sequences[:, ids.shape[1] :].tolist()):
                length = next((i + 1 for i, t in enumerate(tokens) if t in stops), len(tokens))
                processed += length
                top_ids, top_logprobs = _top(sampled[r], length, settings.top_k)
                out[r // n].append({"ids": tokens[:length], "top_ids": top_ids, "top_logprobs": top_logprobs})
    if time.monotonic() > deadline:
        raise TeacherFailed("ran out of time")
    return out, processed


def _teach(model, tokenizer, doc: dict, synth: DocSynthesis, settings: Distill, seed: int) -> dict:
    """The teacher's kept answers for one document (the cache's payload), or a skip with its reason."""
    questions = questions_of(synth, settings.questions_per_doc)
    if not questions:
        why = synth.skipped or "no trained questions"
        return {"answers": [], "dropped": {}, "skipped": f"no questions to ask: {why}", "tokens": 0}
    chunks = passages(tokenizer, doc["text"], settings.passage_tokens)
    by_passage: dict[str, list[dict]] = {}
    for q in questions:
        by_passage.setdefault(passage_for(chunks, q["answer"]), []).append(q)
    deadline = time.monotonic() + settings.max_seconds_per_doc
    kept, dropped, tokens = [], Counter(), 0
    for passage, asked in by_passage.items():
        prefix = passage_prefix(doc.get("title") or "", doc.get("published") or doc.get("published_at"), passage)
        sampled, processed = teacher_answers(model, tokenizer, prefix, asked, settings, seed=seed, deadline=deadline)
        tokens += processed
        for q, answers in zip(asked, sampled, strict=True):
            for answer in answers:
                text = tokenizer.decode(answer["ids"], skip_special_tokens=True)
                reason = None if answer.get("reference") else drop_reason(text, passage)
                if reason:
                    dropped[reason] += 1
                else:
                    kept.append({"question": q["question"], **answer})
    skipped = None if kept else f"the teacher answered none of its {len(questions)} question(s) usably"
    return {"answers": kept, "dropped": dict(dropped), "skipped": skipped, "tokens": tokens}


def generator_key(settings: Distill, teacher_name: str, seed: int, synth: DocSynthesis) -> str:
    """The cache key of one document's teacher answers: the settings, the teacher, the seed and the questions."""
    s = settings
    asked = hashlib.sha256("\n".join(q["question"] for q in questions_of(synth, s.questions_per_doc)).encode())
    return (
        f"{DISTILL_VERSION}:{teacher_name}:q{s.questions_per_doc}:n{s.answers_per_question}:t{s.temperature}:"
        f"k{s.top_k}:m{s.max_answer_tokens}:p{s.passage_tokens}:s{seed}:{asked.hexdigest()[:16]}"
    )


def teach(
    model,
    tokenizer,
    docs: Sequence[dict],
    synth: Sequence[DocSynthesis],
    cache: SynthesisCache,
    settings: Distill,
    *,
    teacher_name: str,
    seed: int = 0,
    cached_only: bool = False,
    on_doc: Callable[[int, int], None] | None = None,
) -> tuple[list[dict], DistillReport]:
    """The teacher's answers about each of ``docs`` (``synth`` holds their synthesis, in the same order), each
    ``{doc_id, question, ids, top_ids, top_logprobs}``; from the cache when there. With ``cached_only`` a document
    not in the cache is left out without a teacher pass (earlier documents, for review). ``model`` is the teacher:
    the frozen base (a peft model's adapter is switched off for it)."""

    report = DistillReport(documents=len(docs))
    out: list[dict] = []
    for n, (doc, s) in enumerate(zip(docs, synth, strict=True), 1):
        key = generator_key(settings, teacher_name, seed, s)
        payload = cache.get(s.doc_hash, key)
        if payload is not None:
            report.cached += 1
        elif cached_only:
            report.documents -= 1
            continue
        else:
            started = time.perf_counter()
            try:
                with frozen_base(model):
                    payload = _teach(model, tokenizer, doc, s, settings, seed)
                cache.put(s.doc_hash, key, payload)
            except (TeacherFailed, RuntimeError, MemoryError) as exc:  # torch.OutOfMemoryError is a RuntimeError
                if not isinstance(exc, TeacherFailed | MemoryError) and not _out_of_memory(exc):
                    raise
                why = "ran out of memory" if not isinstance(exc, TeacherFailed) else str(exc)
                seconds = settings.max_seconds_per_doc
                payload = {
                    "answers": [],
                    "dropped": {},
                    "tokens": 0,
                    "skipped": f"the teacher pass {why} (distill.max_seconds_per_doc is {seconds:g} s)"
                    if why == "ran out of time"
                    else f"the teacher pass {why}; lower distill.answers_per_question or distill.passage_tokens",
                }  # not cached: another run may have the time or the memory
            report.teacher_seconds += time.perf_counter() - started
            report.teacher_tokens += payload["tokens"]
        if payload["skipped"]:
            report.skipped.append({"doc_id": doc["id"], "reason": payload["skipped"]})
        report.questions += len({a["question"] for a in payload["answers"]})
        report.answers_kept += len(payload["answers"])
        for reason, count in payload["dropped"].items():
            report.dropped[reason] = report.dropped.get(reason, 0) + count
        out.extend({"doc_id": doc["id"], **a} for a in payload["answers"])
        if on_doc:
            on_doc(n, len(docs))
    if report.skipped:
        logger.info("distillation skipped %d of %d documents: %s", len(report.skipped), len(docs), report.skipped[:3])
    return out, report


def _out_of_memory(exc: RuntimeError) -> bool:
    """torch's out-of-memory error ("CUDA out of memory"), or the CPU allocator's "can't allocate memory"."""
    return "out of memory" in str(exc) or "allocate memory" in str(exc)


@contextlib.contextmanager
def frozen_base(model) -> Iterator[None]:
    """The model with its adapter switched off while the teacher answers (a plain model is already the base)."""
    if hasattr(model, "disable_adapter"):
        with model.disable_adapter():
            yield
    else:
        yield


def student_samples(tokenizer, answers: Sequence[dict], kind: str = "new") -> list[Sample]:
    """The student's training samples: the question without the document, then the teacher's answer, whose tokens
    carry the teacher's top-k log-probabilities as targets."""
    out = []
    for a in answers:
        context = tokenizer(student_prompt(a["question"]), add_special_tokens=False)["input_ids"]
        out.append(
            Sample(
                tuple(context + list(a["ids"])),
                kind,
                doc_id=a.get("doc_id"),
                context=len(context),
                teacher=(tuple(map(tuple, a["top_ids"])), tuple(map(tuple, a["top_logprobs"]))),
            )
        )
    return out


def teacher_targets(samples: Sequence[Sample], length: int, top_k: int):
    """``(ids, log-probabilities, mask)`` tensors of shape rows x (length - 1) x k aligned with the next-token
    positions (position t predicts token t + 1), for the samples that carry teacher targets."""
    import torch

    ids = torch.zeros((len(samples), length - 1, top_k), dtype=torch.long)
    logprobs = torch.zeros((len(samples), length - 1, top_k))
    mask = torch.zeros((len(samples), length - 1), dtype=torch.bool)
    for row, sample in enumerate(samples):
        if sample.teacher is None:
            continue
        top_ids, top_logprobs = sample.teacher
        first = sample.context - 1  # the prompt's last position predicts the answer's first token
        span = len(top_ids)
        ids[row, first : first + span] = torch.tensor(top_ids, dtype=torch.long)[:, :top_k]
        logprobs[row, first : first + span] = torch.tensor(top_logprobs)[:, :top_k]
        mask[row, first : first + span] = True
    return ids, logprobs, mask


def batch_loss(model, batch: dict):
    """The mean loss per target token of a batch: next-token cross-entropy on rows without teacher targets and
    ``KL(teacher || student)`` over the teacher's top-k (renormalised) on rows with them."""
    import torch

    if "teacher_ids" not in batch:
        return model(**batch).loss
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    logprobs = logits.float().log_softmax(-1)
    labels = batch["labels"][:, 1:]
    distilled = batch["teacher_mask"]
    plain = (labels != -100) & ~batch["teacher_rows"][:, None]
    ce = -logprobs.gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)[plain]
    teacher = batch["teacher_logprobs"].log_softmax(-1)  # renormalised over the top-k
    student = logprobs.gather(-1, batch["teacher_ids"])
    kl = (teacher.exp() * (teacher - student)).sum(-1)[distilled]
    return torch.cat([ce, kl]).mean()
