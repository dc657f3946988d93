"""Every setting in one place: defaults with their reason, overridable by ``KUP_*`` variables and CLI flags."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors import FetchPolicy
from errors import ConfigError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KUP_", extra="ignore")

    # Where things live -------------------------------------------------------------------------
    data_dir: Path = Field(Path(".kup"), description="catalog, index and Prefect state; one per pipeline")
    sources_file: Path = Field(Path("sources.yaml"), description="which feeds (and databases) to pull")
    catalog_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file in the data dir")
    qdrant_url: str | None = Field(None, description="Qdrant server URL; default: embedded Qdrant Edge in the data dir")
    qdrant_api_key: SecretStr | None = Field(None, description="API key for a Qdrant server; never logged")
    collection: str = Field("kup", description="Qdrant collection name (server) / index folder name (Edge)")
    qdrant_shards: int | None = Field(
        None, ge=1, le=1000, description="shards of a new collection on a Qdrant cluster (None: the server's default)"
    )
    qdrant_replication_factor: int | None = Field(
        None, ge=1, le=1000, description="copies of each shard on a Qdrant cluster (None: the server's default, 1)"
    )
    qdrant_write_consistency_factor: int | None = Field(
        None, ge=1, le=1000, description="copies a write waits for; at most the replication factor (None: 1)"
    )

    # Models and chunking -----------------------------------------------------------------------
    embedding_model: str | None = Field(None, description="sentence-transformers dir; default: packaged MiniLM")
    encoder_backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        "onnx-int8",
        description="dense encoder runtime: int8 ONNX is the fastest that keeps torch's hit@5 (bench/encoders.py)",
    )
    chunk_tokens: int = Field(200, ge=16, le=512, description="chunk body size in tokens; MiniLM reads 256")
    chunk_overlap: int = Field(32, ge=0, le=256, description="tokens repeated from the previous chunk for context")
    embed_batch_size: int = Field(64, ge=1, le=1024, description="texts per encoder call; 32-128 saturate a CPU")
    index_batch_docs: int = Field(128, ge=1, le=10_000, description="documents claimed and written per index batch")

    # Fine-tuning -------------------------------------------------------------------------------
    base_model: str | None = Field(None, description="'smollm2' (packaged, default) or a local HF model directory")
    recipe: Path | None = Field(None, description="training recipe (YAML); default: the built-in recipe")
    drift_check: bool = Field(False, description="the refresh measures the champion's drift (loads the base model)")
    drift_every_hours: float = Field(6.0, ge=0, description="at most one drift measurement per this many hours")
    drift_threshold: float = Field(
        1.25, gt=0, description="recent / training-period perplexity at which kup.drift.exceeded starts a fine-tune"
    )
    drift_sample_documents: int = Field(8, ge=1, le=256, description="documents scored each side of the watermark")

    # Answering ---------------------------------------------------------------------------------
    reader_model: str | None = Field(
        None,
        description="the model that answers: a packaged one (qwen2.5-coder-0.5b, smollm2, gemma3-270m) or a local "
        "HF directory; None: KUP_BASE_MODEL when set, else qwen2.5-coder-0.5b (an adapter applies only to its base)",
    )
    reader_int8: bool = Field(
        True, description="int8 linear layers for the reader on the CPU: reads a prompt faster (bench/qa.py --int8)"
    )
    reader_url: str | None = Field(
        None,
        description="an OpenAI-compatible server that writes the answers instead (vLLM, llama.cpp, Ollama, TGI, "
        "another kup api): its base URL ending in /v1; KUP_READER_MODEL names the model there",
    )
    reader_key: SecretStr | None = Field(
        None, description="the key that server wants (sent as a Bearer token), or prefect-secret:<block>; never logged"
    )
    reader_context_tokens: int = Field(8192, ge=512, le=1_000_000, description="that server model's context")
    reader_timeout_seconds: float = Field(
        60, gt=0, le=3600, description="the longest that server may stay silent before or while it answers"
    )
    reader_fallback: bool = Field(
        False, description="when that server fails, answer with the model loaded here (else: one sentence)"
    )
    context_tokens: int = Field(2048, ge=256, le=32768, description="prompt + answer budget for the LLM")
    max_new_tokens: int = Field(160, ge=8, le=2048, description="longest answer generated")
    recency_half_life_days: float | None = Field(
        None,
        ge=0,
        le=3650,
        description="recency prior on passages, in days (None: the answer profile's default; 0: off); "
        "latest/now/current questions get 7 days either way",
    )

    # HTTP API (`kup api`) ----------------------------------------------------------------------
    api_key: SecretStr | None = Field(None, description="key every API call but /health must send; never logged")
    api_allowed_hosts: str = Field(
        "", description="comma-separated Host names served besides localhost (stops DNS rebinding)"
    )
    api_max_body_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024, description="largest request body")
    api_generate_at_once: int = Field(1, ge=1, le=64, description="/ask answers generated at once (CPU or GPU bound)")
    api_generate_waiting: int = Field(4, ge=0, le=1024, description="/ask requests queued; more get 503 Retry-After")
    api_header_timeout: float = Field(
        10.0, gt=0, le=300, description="seconds a connection has to send a request's headers, drip or not; then closed"
    )
    api_max_connections: int = Field(
        512,
        ge=16,
        le=65_536,
        description="connections open at once (half at most still sending headers: the longest waiting is closed "
        "for a new one); lowered to fit the open-file limit",
    )
    api_url: str | None = Field(
        None,
        description="a running `kup api` that `kup search`/`kup ask` ask first (no model load): its URL, or 'off'; "
        "default: the one on 127.0.0.1:8077 when it serves this same index",
    )

    # Data checks before indexing -------------------------------------------------------------------
    min_text_chars: int = Field(25, ge=1, description="shorter texts are quarantined, not indexed")
    max_text_chars: int = Field(
        200_000, ge=1_000, description="longer texts (a hostile or broken page) are quarantined, not indexed"
    )
    future_skew_minutes: float = Field(10, ge=0, description="how far in the future a published time may lie")

    # Fetching ----------------------------------------------------------------------------------
    source_concurrency: int = Field(4, ge=1, le=64, description="sources pulled at once in a refresh (read at load)")
    article_workers: int = Field(
        4, ge=1, le=64, description="article pages fetched at once per feed (host limit applies)"
    )
    per_host_concurrency: int = Field(2, ge=1, le=32, description="open requests per host, to stay polite")
    connect_timeout: float = Field(5.0, gt=0, description="seconds to connect")
    read_timeout: float = Field(15.0, gt=0, description="seconds between bytes")
    total_timeout: float = Field(30.0, gt=0, description="seconds for a whole response (stops slow drips)")
    max_bytes: int = Field(5_000_000, ge=1024, description="largest response accepted")
    max_redirects: int = Field(5, ge=0, le=20, description="redirect hops followed")
    fetch_retries: int = Field(2, ge=0, le=10, description="extra attempts on 429/5xx and connection errors")
    respect_robots: bool = Field(True, description="obey robots.txt for article pages")
    user_agent: str = Field(FetchPolicy.user_agent, description="identifies us to the sites we fetch")

    # Serving fleet ------------------------------------------------------------------------------
    serving_urls: str = Field(
        "",
        description="comma-separated vLLM servers (http://gpu1:8000) told to load each new champion adapter "
        "(runtime LoRA loading); empty: none",
    )
    serving_adapter_name: str = Field(
        "kup", min_length=1, max_length=100, description="the stable name the champion is served under there"
    )
    serving_key: SecretStr | None = Field(
        None, description="the key those servers want (Bearer), or prefect-secret:<block>; never logged"
    )
    serving_adapters_dir: str | None = Field(
        None, description="the data dir's adapters/ folder as those servers see it (shared storage); None: same path"
    )

    # Orchestration -----------------------------------------------------------------------------
    prefect_api_url: str = Field("http://127.0.0.1:4200/api", description="Prefect server that `kup up` starts/uses")
    prefect_server_host: str = Field(
        "127.0.0.1",
        description="interface the Prefect server `kup up` starts listens on; beyond loopback it requires a "
        "credential, made owner-only in the data dir (PREFECT_SERVER_API_AUTH_STRING to choose your own)",
    )
    prefect_allowed_hosts: str = Field(
        "", description="comma-separated Host names that server answers besides localhost (stops DNS rebinding)"
    )
    dask_address: str | None = Field(
        None,
        description="Dask scheduler that chunks and embeds large batches: tls://host:8786 with the KUP_DASK_TLS_* "
        "certificates (a plain tcp:// one only on this machine, or with dask_allow_plaintext); None: in-process",
    )
    dask_tls_ca: str | None = Field(
        None, description="CA that signed the Dask cluster's certificates: a PEM file, or prefect-secret:<block>"
    )
    dask_tls_cert: str | None = Field(
        None, description="kup's client certificate for a tls:// scheduler: a PEM file, or prefect-secret:<block>"
    )
    dask_tls_key: SecretStr | None = Field(
        None, description="that certificate's private key: a PEM file, or prefect-secret:<block>; never logged"
    )
    dask_allow_plaintext: bool = Field(
        False,
        description="accept plain tcp:// to a scheduler on another machine: whoever can reach it can join as a "
        "worker and run code in kup (results are unpickled here)",
    )
    dask_workers: int = Field(
        0, ge=0, le=256, description="without dask_address: a local Dask cluster of this many workers (0: in-process)"
    )
    dask_unreachable: Literal["fail", "in-process"] = Field(
        "fail", description="when the Dask scheduler does not answer: stop with one sentence, or warn and go on"
    )

    # Events, hot feeds and alerts ----------------------------------------------------------------
    events_quiet_seconds: float = Field(
        0.3, ge=0, le=60, description="a source's notifications are reported after this long without another"
    )
    events_max_delay_seconds: float = Field(
        2.0, gt=0, le=300, description="...or at the latest this long after the first, however busy the table"
    )
    events_spacing_seconds: float = Field(
        2.0, ge=0, le=3600, description="one source's reports at most this often (bounds refreshes in a storm)"
    )
    alert_failed_runs: int = Field(
        3, ge=1, le=100, description="alert when this many scheduled refresh runs in a row end Stale or Failed"
    )
    alert_freshness_seconds: float = Field(
        900, ge=120, description="alert when no refresh has completed for this long (the index is that old)"
    )
    alert_block: str | None = Field(
        None, description="Prefect notification block (type-slug/name) that alerts go to; None: the UI only"
    )

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        if not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError("use letters, digits, '-' and '_' only")
        return value

    def secret(self, name: str) -> str | None:
        """A setting's value; a ``prefect-secret:<block>`` reference is read from that Prefect Secret block."""
        value = getattr(self, name)
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(raw, str) or not raw.startswith(SECRET_REF):
            return raw
        return read_secret_block(raw.removeprefix(SECRET_REF).strip(), f"KUP_{name.upper()}")

    @property
    def reader(self) -> str:
        """The model that answers here: KUP_READER_MODEL, else the base model when one is named, else the default
        reader. With KUP_READER_URL, KUP_READER_MODEL names the model on that server, and the one here (the
        fallback) is the base model or the default reader."""
        from training.base_model import DEFAULT_READER

        here = None if self.reader_url else self.reader_model
        return here or self.base_model or DEFAULT_READER

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def resolved_catalog_url(self) -> str:
        return self.catalog_url or f"sqlite:///{self.data_path / 'catalog.db'}"

    @property
    def index_path(self) -> Path:
        return self.data_path / "index" / self.collection

    @property
    def prefect_home(self) -> Path:
        return self.data_path / "prefect"

    @property
    def api_hosts(self) -> list[str]:
        return comma_list(self.api_allowed_hosts)

    @property
    def prefect_hosts(self) -> list[str]:
        return comma_list(self.prefect_allowed_hosts)

    def fetch_policy(self) -> FetchPolicy:
        return FetchPolicy(
            user_agent=self.user_agent,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            total_timeout=self.total_timeout,
            max_bytes=self.max_bytes,
            max_redirects=self.max_redirects,
            retries=self.fetch_retries,
            per_host_concurrency=self.per_host_concurrency,
            respect_robots=self.respect_robots,
        )


SECRET_REF = "prefect-secret:"


def comma_list(value: str) -> list[str]:
    """The items of a comma-separated setting, stripped, empty ones left out."""
    return [item.strip() for item in value.split(",") if item.strip()]


def read_secret_block(block: str, setting: str) -> str:
    """The text in the Prefect Secret block ``block`` that ``setting`` refers to; one sentence when it is unreadable."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise ConfigError(
            f"{setting} refers to the Prefect Secret block {block!r}, but no Prefect server is configured to read it "
            "from; set PREFECT_API_URL, or set the value itself"
        )
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(block, _sync=True).get()
    except ValueError as exc:
        raise ConfigError(
            f"{setting} refers to the Prefect Secret block {block!r}, which does not exist ({exc}); "
            f"create it (Blocks > Secret in the dashboard) or correct {setting}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - an unreachable server, a refused request
        raise ConfigError(
            f"{setting} refers to the Prefect Secret block {block!r}, which could not be read "
            f"({type(exc).__name__}: {exc}); check PREFECT_API_URL"
        ) from None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"the Prefect Secret block {block!r} named by {setting} holds no text value")
    return value


_IN_FORCE: ContextVar[Settings | None] = ContextVar("kup_settings_in_force", default=None)


@contextmanager
def settings_in_force(settings: Settings) -> Iterator[Settings]:
    """Within the block, flows run in this process use ``settings`` (a command's, with its flags) instead of reading
    the environment. A flow run by a Prefect runner or worker reads the environment of its own process."""
    token = _IN_FORCE.set(settings)
    try:
        yield settings
    finally:
        _IN_FORCE.reset(token)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment plus explicit overrides; all problems reported in one message. Without
    overrides, inside ``settings_in_force``: the settings put in force there."""
    if not overrides and (chosen := _IN_FORCE.get()) is not None:
        return chosen
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"KUP_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from exc
