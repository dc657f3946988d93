"""Knowledge synthesis: each new document turned into training text that makes its facts answerable.

Deterministic augmentations (``training.facts``: reordered restatements, templated question-answer
pairs, arithmetic implications) always run; a teacher model (the base model itself or a local Hugging
Face model directory) can add paraphrases and question-answer pairs, filtered so that empty, repeated
and ungrounded outputs are dropped and counted. Results are cached per document content hash and
generator in a small SQLite file under the data directory, so a document is synthesised once.

A part of each document's questions is held out: never trained on, kept as the update's probes
(with the reworded form of some trained questions), so that closed-book accuracy measures learning.

One concept, ~400 lines: the synthesis pipeline and its cache; the deterministic augmentations live in
``training.facts``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.facts import distractors, document_facts, implications, reordered

logger = logging.getLogger(__name__)

AUGMENT_VERSION = "augment-v2"
TEACHER_VERSION = "teacher-v1"
# Wire tags at the start of a headline: "UPDATE 1-", "JOBS | ".
_HEADLINE_TAG = re.compile(r"^(?:UPDATE \d+\s*-\s*|[A-Z]{2,}(?: [A-Z]{2,})* \|\s*)")
HELDOUT_SHARE = 3  # one question in three (per document) is held out as a probe, never trained on


@dataclass
class DocSynthesis:
    """What synthesis made of one document; ``skipped`` says why nothing could be made."""

    doc_id: str
    doc_hash: str
    generator: str
    restatements: list[str] = field(default_factory=list)
    qa: list[dict] = field(default_factory=list)  # question, answer, kind, cloze
    implications: list[str] = field(default_factory=list)
    skipped: str | None = None
    title: str = ""  # the document's headline: names what a templated question's "it" or "the work" is about

    def trained_qa(self) -> list[dict]:
        return [q for q in self.qa if not is_heldout(self.doc_hash, q["question"])]

    def heldout_qa(self) -> list[dict]:
        return [q for q in self.qa if is_heldout(self.doc_hash, q["question"])]

    def training_texts(self, *, headline: bool = True) -> list[str]:
        """Restatements, trained question-answer pairs (headed by the headline, see ``in_context``) and
        implications; never the held-out questions."""
        ask = self.in_context if headline else (lambda q: q["question"])
        qa = [f"Question: {ask(q)}\nAnswer: {q['answer']}" for q in self.trained_qa()]
        return [*self.restatements, *qa, *self.implications]

    def in_context(self, qa: dict) -> str:
        """The question headed by the document's headline, so that a question cut from one sentence ("It will
        reopen when?") is tied to what it is about, as a reader's question names it. Left bare when the
        headline holds the answer (training would then teach copying it from the question, not recalling it)."""
        headline = _HEADLINE_TAG.sub("", self.title).strip()
        if not headline or qa["answer"].lower() in headline.lower():
            return qa["question"]
        return f"{headline.rstrip('.:!?')}: {qa['question']}"


@dataclass
class SynthesisReport:
    documents: int = 0
    cached: int = 0
    skipped: list[dict] = field(default_factory=list)  # {doc_id, reason}: visible, never silent
    restatements: int = 0
    qa_pairs: int = 0
    implications: int = 0
    teacher_kept: int = 0
    teacher_dropped: dict[str, int] = field(default_factory=dict)  # reason -> count
    warnings: list[str] = field(default_factory=list)  # what went wrong with the batch as a whole, in words
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def document_hash(title: str, text: str) -> str:
    return hashlib.sha256(f"{title}\n\n{text}".encode()).hexdigest()


def is_heldout(doc_hash: str, question: str) -> bool:
    """Whether a question is a probe (held out): fixed by the document and the question, not by the batch."""
    return int(hashlib.sha256(f"{doc_hash}|{question}".encode()).hexdigest()[:8], 16) % HELDOUT_SHARE == 0


class SynthesisCache:
    """Synthesis results by (document hash, generator) in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS synthesis (doc_hash TEXT, generator TEXT, payload TEXT, "
                "created_at REAL, PRIMARY KEY (doc_hash, generator))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def get(self, doc_hash: str, generator: str) -> dict | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT payload FROM synthesis WHERE doc_hash = ? AND generator = ?", (doc_hash, generator)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, doc_hash: str, generator: str, payload: dict) -> None:
        with self._connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO synthesis VALUES (?, ?, ?, ?)",
                (doc_hash, generator, json.dumps(payload), time.time()),
            )


def augment(doc: dict, restatements: int) -> DocSynthesis:
    """The deterministic augmentations of one catalog document (``id``, ``title``, ``text``)."""
    doc_hash = document_hash(doc.get("title") or "", doc["text"])
    out = DocSynthesis(doc["id"], doc_hash, f"{AUGMENT_VERSION}:p{restatements}", title=doc.get("title") or "")
    facts = document_facts(doc["text"])
    out.qa = [{"question": f.question, "answer": f.answer, "kind": f.kind, "cloze": f.cloze} for f in facts]
    out.restatements = reordered(doc.get("title") or "", doc["text"], restatements, doc_hash)
    out.implications = implications(doc["text"])
    if not facts:
        out.skipped = "no extractable facts (no dates, quantities or named people)"
    return out


# -- teacher ------------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def _repetitive(text: str) -> bool:
    words = _words(text)
    if len(words) >= 12 and len(set(words)) / len(words) < 0.35:
        return True
    grams = Counter(tuple(words[i : i + 4]) for i in range(len(words) - 3))
    return bool(grams) and grams.most_common(1)[0][1] >= 3


def _unsupported(text: str, source: str) -> bool:
    """Numbers or capitalised names that the source does not contain: the teacher made them up."""
    claims = set(re.findall(r"\b(?:\d[\d,.]*\d|\d)\b|\b[A-Z][a-z]{2,}\b", text))
    claims -= {"The", "This", "That", "It", "In", "On", "A", "An", "He", "She", "They", "Question", "Answer"}
    missing = [c for c in claims if c not in source]
    return bool(claims) and len(missing) / len(claims) > 0.25


def _off_topic(text: str, source: str, min_share: float = 0.5) -> bool:
    """Fewer than ``min_share`` of the text's content words (four letters or more) occur in the source: nonsense,
    or a text about something else (a restatement reuses most of its source's words)."""
    words = [w for w in _words(text) if len(w) >= 4]
    known = set(_words(source))
    return bool(words) and sum(w in known for w in words) / len(words) < min_share


def filter_paraphrase(text: str, source: str, seen: set[str]) -> str | None:
    """Why a teacher paraphrase is dropped (empty, repeated, ungrounded), or None when it is kept."""
    clean = " ".join(text.split())
    if len(_words(clean)) < 8:
        return "empty"
    if clean in seen or clean in " ".join(source.split()) or _repetitive(clean):
        return "repeated"
    if _unsupported(clean, source) or _off_topic(clean, source):
        return "ungrounded"
    return None


_QA = re.compile(r"Q(?:uestion)?\s*[:.]\s*(?P<q>.+?\?)\s*A(?:nswer)?\s*[:.]\s*(?P<a>[^\n]+)", re.S)


def parse_qa(text: str, source: str, seen: set[str]) -> tuple[list[dict], Counter]:
    """Question-answer pairs in a teacher's output whose answer appears in ``source``; drop reasons counted."""
    kept, dropped = [], Counter()
    matches = list(_QA.finditer(text))
    if not matches:
        dropped["empty"] += 1
    for m in matches:
        question, answer = " ".join(m["q"].split()), m["a"].strip().rstrip(".").strip()
        if not answer or len(answer) > 80:
            dropped["empty"] += 1
        elif question in seen:
            dropped["repeated"] += 1
        elif answer.lower() not in source.lower():
            dropped["ungrounded"] += 1
        else:
            seen.add(question)
            kept.append({"question": question, "answer": answer, "kind": "teacher", "cloze": ""})
    return kept, dropped


def _prompts(tokenizer, doc: dict, paraphrases: int, qa: int) -> list[tuple[str, str]]:
    text = " ".join(doc["text"].split()[:300])
    asks = [("paraphrase", f"Rewrite this news text in your own words, keeping every fact:\n\n{text}")] * paraphrases
    asks += [
        ("qa", f"{text}\n\nWrite one question about a fact in this text and its short answer, as Q: ... A: ...")
    ] * qa
    out = []
    for kind, ask in asks:
        if getattr(tokenizer, "chat_template", None):
            ask = tokenizer.apply_chat_template(
                [{"role": "user", "content": ask}], tokenize=False, add_generation_prompt=True
            )
        out.append((kind, ask))
    return out


def teacher_generate(
    model, tokenizer, prompts: Sequence[str], *, max_new_tokens: int, batch_size: int, seed: int
) -> list[str]:
    """Sampled completions of ``prompts``, in batches (left-padded, so every row continues its own prompt)."""
    import torch

    device = next(model.parameters()).device
    side, was_caching = tokenizer.padding_side, model.config.use_cache
    tokenizer.padding_side, model.config.use_cache = "left", True
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(seed)
    model.eval()
    out: list[str] = []
    try:
        for i in range(0, len(prompts), batch_size):
            inputs = tokenizer(list(prompts[i : i + batch_size]), return_tensors="pt", padding=True).to(device)
            with torch.no_grad():
                generated = model.generate(
                    **inputs,
                    max_new_tokens=max_new_tokens,
                    do_sample=True,
                    temperature=0.7,
                    top_p=0.9,
                    pad_token_id=tokenizer.pad_token_id,
                )
            new = generated[:, inputs["input_ids"].shape[1] :]
            out.extend(tokenizer.batch_decode(new, skip_special_tokens=True))
    finally:
        tokenizer.padding_side, model.config.use_cache = side, was_caching
    return out


def _teach(teacher, doc: dict, base: DocSynthesis, generator: str, paraphrases: int, qa: int, seed: int):
    model, tokenizer = teacher
    asks = _prompts(tokenizer, doc, paraphrases, qa)
    outputs = teacher_generate(model, tokenizer, [p for _, p in asks], max_new_tokens=160, batch_size=8, seed=seed)
    source = f"{doc.get('title') or ''}\n{doc['text']}"
    result = DocSynthesis(doc["id"], base.doc_hash, generator)
    dropped: Counter = Counter()
    seen = {q["question"] for q in base.qa} | set(base.restatements)
    for (kind, _), text in zip(asks, outputs, strict=True):
        if kind == "paraphrase":
            reason = filter_paraphrase(text, source, seen)
            if reason:
                dropped[reason] += 1
            else:
                clean = " ".join(text.split())
                seen.add(clean)
                result.restatements.append(clean)
        else:
            pairs, why = parse_qa(text, source, seen)
            result.qa.extend(pairs)
            dropped.update(why)
    return result, dropped


def synthesize(
    docs: Sequence[dict],
    cache: SynthesisCache,
    *,
    mode: str,
    paraphrases: int,
    qa: int,
    teacher: tuple[Any, Any] | None = None,
    teacher_name: str = "base",
    seed: int = 0,
    on_doc: Callable[[int, int], None] | None = None,
) -> tuple[list[DocSynthesis], SynthesisReport]:
    """Synthesis for ``docs`` (augmentations; plus the teacher's in mode "teacher"), from the cache when there."""
    started = time.perf_counter()
    report = SynthesisReport(documents=len(docs))
    out: list[DocSynthesis] = []
    for n, doc in enumerate(docs, 1):
        aug = augment(doc, paraphrases)
        hit = cache.get(aug.doc_hash, aug.generator)
        if hit is not None:
            aug = DocSynthesis(**hit)
            report.cached += 1
        else:
            cache.put(aug.doc_hash, aug.generator, asdict(aug))
        if mode == "teacher" and teacher is not None:
            generator = f"{TEACHER_VERSION}:{teacher_name}:p{paraphrases}:q{qa}:s{seed}"
            hit = cache.get(aug.doc_hash, generator)
            if hit is not None:
                taught, dropped = DocSynthesis(**hit["result"]), Counter(hit["dropped"])
            else:
                taught, dropped = _teach(teacher, doc, aug, generator, paraphrases, qa, seed)
                cache.put(aug.doc_hash, generator, {"result": asdict(taught), "dropped": dict(dropped)})
            report.teacher_kept += len(taught.restatements) + len(taught.qa)
            for reason, count in dropped.items():
                report.teacher_dropped[reason] = report.teacher_dropped.get(reason, 0) + count
            aug = DocSynthesis(
                aug.doc_id,
                aug.doc_hash,
                f"{aug.generator}+{generator}",
                aug.restatements + taught.restatements,
                aug.qa + taught.qa,
                aug.implications,
                None if (aug.qa or taught.qa) else aug.skipped,
                aug.title,
            )
        if aug.skipped:
            report.skipped.append({"doc_id": aug.doc_id, "reason": aug.skipped})
        report.restatements += len(aug.restatements)
        report.qa_pairs += len(aug.qa)
        report.implications += len(aug.implications)
        out.append(aug)
        if on_doc:
            on_doc(n, len(docs))
    if report.skipped:
        logger.info("synthesis skipped %d of %d documents: no extractable facts", len(report.skipped), len(docs))
    if report.teacher_dropped:
        logger.info("teacher outputs dropped by the filters: %s", report.teacher_dropped)
    report.warnings = _warnings(report, mode=mode, teacher=teacher is not None, teacher_name=teacher_name)
    for warning in report.warnings:
        logger.warning("synthesis: %s", warning)
    report.seconds = round(time.perf_counter() - started, 2)
    return out, report


def _warnings(report: SynthesisReport, *, mode: str, teacher: bool, teacher_name: str) -> list[str]:
    """Sentences for what made the batch's synthesis fall short as a whole (never a silent pass)."""
    out = []
    if report.documents and len(report.skipped) == report.documents:
        out.append(
            f"none of the {report.documents} document(s) has an extractable fact (a date, quantity or named "
            "person): no questions to train on or to hold out as probes"
        )
    if mode == "teacher" and not teacher:
        out.append("synthesis is 'teacher' but no teacher model was given: only the augmentations were used")
    elif mode == "teacher" and report.documents and report.teacher_kept == 0:
        dropped = sum(report.teacher_dropped.values())
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(report.teacher_dropped.items())) or "none written"
        out.append(
            f"the teacher ({teacher_name}) wrote nothing usable: all {dropped} output(s) were dropped by the filters "
            f"({reasons}); only the deterministic augmentations were used"
        )
    return out


# -- probes ---------------------------------------------------------------------------------------------


def make_probes(synth: Sequence[DocSynthesis], *, seed: int = 0, reworded_per_doc: int = 1) -> list[dict]:
    """Multiple-choice probes for one update: every held-out question, plus the cloze wording of some trained
    ones. Wrong choices are answers of the same kind from the batch or near values; a question that cannot
    get three wrong choices is left out."""
    pool: dict[str, list[str]] = {}
    for s in synth:
        for q in s.qa:
            pool.setdefault(q["kind"], []).append(q["answer"])
    probes = []
    for s in synth:
        picked = [(q, "heldout", q["question"]) for q in s.heldout_qa()]
        reworded = [q for q in s.trained_qa() if q.get("cloze")][:reworded_per_doc]
        picked += [(q, "reworded", f"Fill in the blank: {q['cloze']}") for q in reworded]
        for q, kind, question in picked:
            wrong = distractors(q["answer"], q["kind"], pool.get(q["kind"], []), f"{seed}:{s.doc_hash}:{question}")
            if len(wrong) < 3:
                continue
            choices = [q["answer"], *wrong]
            random.Random(f"{seed}:{question}").shuffle(choices)
            probes.append(
                {
                    "id": hashlib.sha256(f"{s.doc_hash}|{question}".encode()).hexdigest()[:12],
                    "question": question,
                    "choices": choices,
                    "answer": choices.index(q["answer"]),
                    "kind": kind,
                    "doc_id": s.doc_id,
                }
            )
    return probes
