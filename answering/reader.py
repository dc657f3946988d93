"""The reader: the language model that answers (the base model unless another is named), with the champion
adapter merged in when the champion was trained on that same model; loaded once, shared, reloaded when the
champion changes."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from answering.remote_reader import ApproximateTokenizer, RemoteReader
from training.base_model import load_base
from training.registry import AdapterRegistry


@dataclass(frozen=True)
class LoadedModel:
    """The model ready to decode, its tokenizer, and the champion adapter it carries (None: the base alone)."""

    model: object  # transformers PreTrainedModel, or a PeftModel around it
    tokenizer: object
    adapter: str | None
    note: str | None = None  # why the champion is not applied, when it is not
    context: int = 2048  # tokens the model reads at most (prompt and answer)

    @property
    def remote(self) -> RemoteReader | None:
        """The model server that writes the answers, when the reader is one (``answering.remote_reader``)."""
        return self.model if isinstance(self.model, RemoteReader) else None


class LanguageModel:
    """The reader (the base model unless another is named) with the champion adapter when the champion was
    trained on that same model, loaded once and shared."""

    def __init__(
        self,
        data_dir: Path,
        base_model: str | None,
        *,
        use_adapter: bool = True,
        int8: bool = False,
        remote: RemoteReader | None = None,
        fallback: bool = False,
    ) -> None:
        self.data_dir = data_dir
        self.remote = remote  # a model server that writes the answers instead of the model loaded here
        self.fallback = fallback  # when that server fails, answer with the model loaded here
        self.base_model = base_model
        self.use_adapter = use_adapter
        self.int8 = int8  # dynamic int8 linear layers on the CPU: faster at reading a prompt (bench/qa.py --int8)
        self._loaded: LoadedModel | None = None
        self._champion: str | None = None  # the champion when the model was loaded (its adapter may not fit)
        self._lock = threading.Lock()

    def get(self, *, local: bool = False) -> LoadedModel:
        """The model with the current champion; reloads when the champion changed. With a model server as the
        reader, that server (``local``: the model loaded here, as its fallback)."""
        if self.remote is not None and not local:
            return LoadedModel(self.remote, ApproximateTokenizer(), None, context=self.remote.context_tokens)
        registry = AdapterRegistry(self.data_dir / "adapters")
        champion = registry.champion() if self.use_adapter else None
        wanted = champion.id if champion else None
        with self._lock:
            if self._loaded is None or self._champion != wanted:
                self._champion = wanted
                base = load_base(self.base_model, self.data_dir)
                model = base.model
                note = None
                trained_on = champion.manifest.get("base_model", base.name) if champion is not None else None
                if champion is not None and trained_on != base.name:
                    # An adapter trained on another base model does not fit this one: answer without it.
                    note = (
                        f"The champion adapter {champion.id} was trained on {trained_on}, not on the reader "
                        f"{base.name}, so answers come from the reader alone (KUP_READER_MODEL={trained_on} uses it)."
                    )
                    wanted = None
                elif champion is not None:
                    from peft import PeftModel

                    model = PeftModel.from_pretrained(model, str(champion.path)).merge_and_unload()
                model.eval()
                model.config.use_cache = True
                if self.int8 and base.device == "cpu":
                    import torch

                    # In place: a copy would hold the fp32 weights twice while it quantizes.
                    torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
                context = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
                self._loaded = LoadedModel(model, base.tokenizer, wanted, note, context)
            return self._loaded

    def context_window(self) -> int:
        return self.get().context
