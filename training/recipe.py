"""The training recipe: every hyper-parameter in one YAML file, validated up front (all errors at once)
and saved beside the adapter it produced."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from errors import ConfigError

Method = Literal["mix_review", "none", "l2", "recadam", "ewc"]
Synthesis = Literal["none", "augment", "teacher"]
Objective = Literal["text", "distill", "text+distill"]


class Gate(BaseModel):
    """Promotion thresholds, as relative NLL changes of the candidate against the champion."""

    model_config = ConfigDict(extra="forbid")

    max_general_forgetting: Annotated[float, Field(ge=0)] = 0.02  # general NLL may rise at most 2%
    max_earlier_forgetting: Annotated[float, Field(ge=0)] = 0.02  # earlier updates' NLL: at most 2%
    min_new_gain: Annotated[float, Field(ge=0, le=1)] = 0.05  # new NLL must fall by at least 5%
    probes: bool = True  # also judge by closed-book accuracy on probes (off: NLL only, said in the verdict)
    min_probes: Annotated[int, Field(ge=1)] = 8  # fewer new probes than this: the gate fails and says so
    min_general_probes: Annotated[int, Field(ge=1)] = 50  # fewer general probes: forgetting is unmeasured, fail
    min_probe_gain: Annotated[float, Field(ge=0, le=1)] = 0.05  # new-probe accuracy must rise 5 points
    max_general_probe_drop: Annotated[float, Field(ge=0, le=1)] = 0.02  # general-probe accuracy: at most -2 points
    max_fuar: Annotated[float, Field(ge=0)] = 0.2  # forgotten / (updated + acquired) probes (CKL, Jang et al. 2022)


class Distill(BaseModel):
    """Prompt distillation (Kujanpää et al. 2024): the frozen base model answers questions about each new document
    with the document in its prompt (the teacher); the adapter learns to give the same answer distributions to the
    same questions without it (the student)."""

    model_config = ConfigDict(extra="forbid")

    questions_per_doc: Annotated[int, Field(ge=1, le=256)] = 16  # trained questions asked of the teacher, at most
    # answers sampled from the teacher per question, beside the synthesis' own answer (whose every token is also
    # distilled, at the cost of one teacher pass for all questions of a passage)
    answers_per_question: Annotated[int, Field(ge=0, le=32)] = 2
    temperature: Annotated[float, Field(gt=0, le=4)] = 0.7  # of the teacher's sampling (its targets are at 1)
    top_k: Annotated[int, Field(ge=1, le=1024)] = 20  # teacher log-probabilities kept per answer token
    max_answer_tokens: Annotated[int, Field(ge=1, le=256)] = 12
    passage_tokens: Annotated[int, Field(ge=32, le=4096)] = 256  # of the document shown with each question
    max_seconds_per_doc: Annotated[float, Field(gt=0)] = 300.0  # a teacher pass that takes longer fails its document


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Method = "mix_review"  # mix_review (He et al. 2021), none, l2 (pull to start), recadam, ewc
    mix_ratio: Annotated[float, Field(ge=0)] = 4.0  # review tokens per new token in the first epoch
    mix_decay: Annotated[float, Field(gt=0, le=1)] = 0.7  # review share shrinks by this factor each epoch
    l2_weight: Annotated[float, Field(ge=0)] = 0.1  # strength of the pull toward the starting adapter (l2)
    recadam_coef: Annotated[float, Field(gt=0)] = 100.0  # RecAdam (Chen et al. 2020): quadratic pull strength
    recadam_k: Annotated[float, Field(gt=0)] = 0.5  # steepness of the sigmoid that anneals the pull away
    recadam_t0: Annotated[int, Field(ge=0)] = 20  # optimizer step at which the pull has halved
    ewc_lambda: Annotated[float, Field(ge=0)] = 100.0  # EWC (Kirkpatrick et al. 2017): Fisher penalty strength
    ewc_samples: Annotated[int, Field(ge=1)] = 16  # earlier samples used to estimate the diagonal Fisher
    anchor_weight: Annotated[float, Field(ge=0)] = 1.0  # answer anchor: KL to the base's answers (0: off)
    anchor_batch: Annotated[int, Field(ge=1)] = 8  # general questions anchored per training step
    objective: Objective = "text"  # text: next-token loss on the documents and synthesis; distill: KL to the teacher
    distill: Distill = Field(default_factory=Distill)
    synthesis: Synthesis = "augment"  # none (raw text), augment (no model), teacher (plus model-written text)
    paraphrases_per_doc: Annotated[int, Field(ge=0, le=64)] = 2  # restatements per new document
    qa_per_doc: Annotated[int, Field(ge=0, le=64)] = 2  # teacher-written question-answer pairs per document
    teacher_model: Path | None = None  # local Hugging Face model directory; None: the base model teaches
    epochs: Annotated[int, Field(ge=1, le=100)] = 3
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 5e-4
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.1
    batch_size: Annotated[int, Field(ge=1, le=256)] = 4
    grad_accumulation: Annotated[int, Field(ge=1, le=256)] = 1
    max_grad_norm: Annotated[float, Field(gt=0)] = 1.0
    max_seq_len: Annotated[int, Field(ge=16, le=4096)] = 256
    pack: bool = True  # short samples (question-answer pairs) share a window instead of each padding a row
    max_windows_per_doc: Annotated[int, Field(ge=1)] = 8  # long documents are cut to this many windows
    max_new_documents: Annotated[int, Field(ge=1)] = 2000
    lora_r: Annotated[int, Field(ge=1, le=256)] = 8
    lora_alpha: Annotated[float, Field(gt=0)] = 16
    lora_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.05
    lora_targets: list[str] | Literal["all-linear"] = "all-linear"
    heldout_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2  # of new documents, kept out of training
    eval_samples: Annotated[int, Field(ge=1)] = 64  # per evaluation set (earlier, general)
    synthetic_samples: Annotated[int, Field(ge=0)] = 32  # base-model generations used as rehearsal text
    synthetic_tokens: Annotated[int, Field(ge=8)] = 96
    general_corpus: list[Path] = Field(default_factory=list)  # text files of the user's own general text
    seed: int = 1234
    gate: Gate = Field(default_factory=Gate)

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        if self.method == "l2" and self.l2_weight == 0:
            raise ValueError("method l2 needs l2_weight > 0")
        if self.method == "mix_review" and self.mix_ratio == 0:
            raise ValueError("method mix_review needs mix_ratio > 0 (or choose method none)")
        if self.method == "ewc" and self.ewc_lambda == 0:
            raise ValueError("method ewc needs ewc_lambda > 0")
        if self.objective != "text" and self.synthesis == "none":
            raise ValueError(f"objective {self.objective} asks the synthesis' questions: set synthesis to augment")
        if self.teacher_model is not None and not (Path(self.teacher_model).expanduser() / "config.json").is_file():
            raise ValueError(
                f"teacher_model {self.teacher_model} is not a local Hugging Face model directory (no config.json); "
                "name such a directory or remove teacher_model to let the base model teach"
            )
        missing = [str(p) for p in self.general_corpus if not Path(p).is_file()]
        if missing:
            raise ValueError(f"general_corpus files not found: {', '.join(missing)}")
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def load_recipe(path: Path | None = None, **overrides: object) -> Recipe:
    """The recipe from ``path`` (defaults when None) with ``overrides``; every problem reported in one message."""
    data: dict = {}
    if path is not None:
        if not path.exists():
            raise ConfigError(f"recipe {path} does not exist (pass --recipe or set KUP_RECIPE)")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"recipe {path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"recipe {path} must be a mapping of hyper-parameters")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        where = f"recipe {path}" if path else "recipe"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'recipe'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ConfigError(f"{where} is invalid: {problems}") from exc
