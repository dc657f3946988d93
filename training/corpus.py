"""Training and evaluation text: what arrived (new), what earlier updates taught (earlier), and general text.

General text comes from three places: a corpus the user configures, English text that ships with
Python itself (the pydoc topic pages), and text the frozen base model generates before training
(self-synthesised rehearsal, standing in for pretraining data we do not have; cached per base model).
Each set is cut into token windows of the training sequence length; earlier and general text are
split into a review pool (trained on, by Mix-review) and a held-out part (only ever evaluated).
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import io
import json
import logging
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from indexing import Catalog
from training.recipe import Recipe

logger = logging.getLogger(__name__)

SYNTHETIC_TOPICS = (
    "how bridges carry heavy loads",
    "why leaves change colour in autumn",
    "how a bicycle stays upright",
    "the water cycle",
    "how bread rises",
    "what makes a good habit",
    "how maps are drawn",
    "the life of bees",
    "how trains are scheduled",
    "why the sky is blue",
    "how to plan a small garden",
    "how libraries sort books",
    "how volcanoes form",
    "what a budget is for",
    "how the moon affects tides",
    "how people learn languages",
)


@dataclass(frozen=True)
class Sample:
    """One window of token ids, with where it came from."""

    ids: tuple[int, ...]
    kind: str  # new / earlier / general
    doc_id: str | None = None
    published: datetime | None = None
    context: int = 0  # leading tokens that are only context: not targets (their labels are -100)
    # Prompt distillation's targets for the tokens after the context: per token, the teacher's top-k ids and
    # log-probabilities (``training.distillation``); None: the tokens themselves are the targets.
    teacher: tuple[tuple[tuple[int, ...], ...], tuple[tuple[float, ...], ...]] | None = None


@dataclass
class DataSets:
    new_train: list[Sample] = field(default_factory=list)  # what the update must teach
    new_heldout: list[Sample] = field(default_factory=list)  # new documents kept out of training
    earlier_review: list[Sample] = field(default_factory=list)
    earlier_eval: list[Sample] = field(default_factory=list)
    general_review: list[Sample] = field(default_factory=list)
    general_eval: list[Sample] = field(default_factory=list)
    watermark: datetime | None = None  # the newest change the update saw
    new_documents: int = 0
    sources: dict[str, int] = field(default_factory=dict)  # general text: windows per origin
    new_synth: list[Sample] = field(default_factory=list)  # QA pairs and restatements of the trained documents
    train_docs: list[dict] = field(default_factory=list)  # the new documents trained on (for synthesis)
    earlier_docs: list[dict] = field(default_factory=list)  # earlier updates' documents (for their synthesis)

    @property
    def review_pool(self) -> list[Sample]:
        return self.earlier_review + self.general_review

    def eval_sets(self) -> dict[str, list[Sample]]:
        sets = {
            "new": self.new_train,
            "new_heldout": self.new_heldout,
            "earlier": self.earlier_eval,
            "general": self.general_eval,
        }
        return {name: samples for name, samples in sets.items() if samples}


def windows(tokenizer, text: str, max_len: int, max_windows: int) -> list[tuple[int, ...]]:
    """Token windows of at most ``max_len`` (the last one closed by the end-of-text token). A special or added
    token's spelling in the text (``<|im_end|>``, ``<file_sep>`` in a feed) is tokenized as the characters it is,
    never as that token: training must not teach the model to emit control tokens where documents wrote them."""
    ids = tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    if tokenizer.eos_token_id is not None:
        ids = [*ids, tokenizer.eos_token_id]
    out = [tuple(ids[i : i + max_len]) for i in range(0, len(ids), max_len)]
    return [w for w in out[:max_windows] if len(w) > 1]


def pack(samples: Sequence[Sample], max_len: int) -> list[Sample]:
    """Short samples packed together into windows of at most ``max_len`` tokens (first fit, each window placed where
    its first sample was), so a batch of question-answer pairs costs what their tokens cost, not full padded rows.
    Every sample already ends with the end-of-text token, which is what separates them inside a window (the usual
    packing of causal-LM training; the model attends across that boundary)."""
    slots: list[Sample | list[int]] = []
    open_bins: list[list[int]] = []
    kinds: dict[int, str] = {}
    for sample in samples:
        if len(sample.ids) >= max_len or sample.context:  # a window keeps no context: such a sample stays whole
            slots.append(sample)
            continue
        for bin_ in open_bins:
            if len(bin_) + len(sample.ids) <= max_len:
                bin_.extend(sample.ids)
                break
        else:
            bin_ = list(sample.ids)
            open_bins.append(bin_)
            slots.append(bin_)
            kinds[id(bin_)] = sample.kind
        open_bins = [b for b in open_bins if len(b) < max_len]
    return [s if isinstance(s, Sample) else Sample(tuple(s), kinds[id(s)]) for s in slots]


def _doc_text(title: str, text: str) -> str:
    return f"{title}\n\n{text}" if title else text


def split_holdout(items: list, fraction: float, seed: str) -> tuple[list, list]:
    """Deterministic (kept, held-out) split; at least one held out when there are two or more."""
    if len(items) < 2:
        return items, []
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    held = max(1, round(len(items) * fraction))
    return shuffled[held:], shuffled[:held]


def python_text(max_paragraphs: int = 400) -> list[str]:
    """English prose that ships with Python: the pydoc topic pages (no download needed), or the Zen of Python
    where a distribution strips them."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions strip pydoc_data: fall back to the Zen of Python
        return [zen_of_python()]
    paragraphs = []
    for name in sorted(topics):
        for block in re.split(r"\n\s*\n", topics[name]):
            clean = " ".join(block.split())
            if len(clean) > 200 and not clean.startswith(("**", ">>>", "...")) and clean.count("(") < 6:
                paragraphs.append(clean)
    return paragraphs[:max_paragraphs]


def zen_of_python() -> str:
    """The Zen of Python as one paragraph, without the print that ``import this`` does (it would corrupt
    JSON written to stdout, as by ``kup finetune --json``)."""
    with contextlib.redirect_stdout(io.StringIO()):
        import this
    return " ".join(codecs.decode(this.s, "rot13").split())


def user_corpus(paths: Iterable[Path]) -> list[str]:
    out = []
    for path in paths:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        out.extend(p.strip() for p in re.split(r"\n\s*\n", text) if len(p.strip()) > 80)
    return out


def synthetic_text(model, tokenizer, *, samples: int, max_new_tokens: int, cache: Path, seed: int) -> list[str]:
    """Texts the frozen base model writes about everyday topics, cached (per base model) in ``cache``."""
    if samples <= 0:
        return []
    if cache.exists():
        cached = [json.loads(line)["text"] for line in cache.read_text().splitlines() if line.strip()]
        if len(cached) >= samples:
            return cached[:samples]
    import torch

    torch.manual_seed(seed)
    texts = []
    device = next(model.parameters()).device
    was_caching = model.config.use_cache
    model.config.use_cache = True
    model.eval()
    for i in range(samples):
        topic = SYNTHETIC_TOPICS[i % len(SYNTHETIC_TOPICS)]
        prompt = f"Write a short paragraph about {topic}."
        if getattr(tokenizer, "chat_template", None):
            prompt = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        inputs = tokenizer(prompt, return_tensors="pt").to(device)
        with torch.no_grad():
            out = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=True,
                temperature=0.8,
                top_p=0.95,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        text = tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()
        if text:
            texts.append(text)
    model.config.use_cache = was_caching
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return texts


def synthetic_cache_path(data_dir: Path, base_name: str, recipe: Recipe) -> Path:
    key = hashlib.sha256(f"{base_name}|{recipe.synthetic_tokens}|{recipe.seed}".encode()).hexdigest()[:16]
    return data_dir / "cache" / f"synthetic-{key}.jsonl"


def to_samples(tokenizer, texts: list[str], kind: str, recipe: Recipe) -> list[Sample]:
    """Token windows of each text, as samples of ``kind``."""
    out = []
    for text in texts:
        for ids in windows(tokenizer, text, recipe.max_seq_len, recipe.max_windows_per_doc):
            out.append(Sample(ids, kind))
    return out


def build_datasets(
    catalog: Catalog,
    tokenizer,
    recipe: Recipe,
    *,
    watermark: datetime | None,
    synthetic: list[str] | None = None,
    extra_general: list[str] | None = None,
) -> DataSets:
    """Assemble every set for one update from the catalog (documents since ``watermark``) and general text."""
    data = DataSets()
    new_docs = catalog.training_documents(after=watermark, limit=recipe.max_new_documents)
    earlier_docs = catalog.training_documents(before=watermark, limit=4 * recipe.eval_samples) if watermark else []
    data.new_documents = len(new_docs)
    data.watermark = max((d["updated_at"] for d in new_docs), default=watermark)

    train_docs, heldout_docs = split_holdout(new_docs, recipe.heldout_fraction, f"{recipe.seed}:new")
    if len(new_docs) < 5:  # too few to hold any out and still learn them all
        train_docs, heldout_docs = new_docs, []
    data.train_docs, data.earlier_docs = train_docs, earlier_docs
    for docs, target in ((train_docs, data.new_train), (heldout_docs, data.new_heldout)):
        for d in docs:
            for ids in windows(
                tokenizer, _doc_text(d["title"], d["text"]), recipe.max_seq_len, recipe.max_windows_per_doc
            ):
                target.append(Sample(ids, "new", d["id"], d["published_at"]))

    earlier = []
    for d in earlier_docs:
        for ids in windows(tokenizer, _doc_text(d["title"], d["text"]), recipe.max_seq_len, recipe.max_windows_per_doc):
            earlier.append(Sample(ids, "earlier", d["id"], d["published_at"]))
    data.earlier_review, data.earlier_eval = split_holdout(earlier, 0.5, f"{recipe.seed}:earlier")
    data.earlier_eval = data.earlier_eval[: recipe.eval_samples]

    general_parts = {
        "user_corpus": user_corpus(recipe.general_corpus) + list(extra_general or []),
        "python_docs": python_text(),
        "synthetic": list(synthetic or []),
    }
    general = []
    for origin, texts in general_parts.items():
        samples = to_samples(tokenizer, texts, "general", recipe)
        data.sources[origin] = len(samples)
        general.extend(samples)
    review, held = split_holdout(general, 0.25, f"{recipe.seed}:general")
    data.general_review, data.general_eval = review, held[: recipe.eval_samples]
    return data
