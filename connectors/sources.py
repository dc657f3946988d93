"""The sources file (``sources.yaml``): which feeds (and later databases) a pipeline pulls."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator

from connectors.errors import ConfigError

_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class FeedSource(BaseModel):
    """An RSS/Atom feed whose items' articles are fetched and extracted."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["feed"] = "feed"
    name: Annotated[str, Field(pattern=_NAME_PATTERN)]
    url: HttpUrl
    fetch_articles: bool = True  # False: index the feed's own summary/content only
    allow_private_addresses: bool = False  # let this source reach private/loopback hosts (tests, intranets)
    max_items: Annotated[int, Field(ge=1, le=10_000)] = 200

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: HttpUrl) -> HttpUrl:
        if value.scheme not in ("http", "https"):
            raise ValueError("only http(s) feeds are supported")
        return value


Source = FeedSource


class SourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[Source] = Field(default_factory=list)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, value: list[Source]) -> list[Source]:
        names = [s.name for s in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"source names must be unique; repeated: {', '.join(duplicates)}")
        return value


def _describe(error: dict, data: object) -> str:
    location = ".".join(str(part) for part in error["loc"])
    return f"{location}: {error['msg']}"


def load_sources(path: Path) -> list[Source]:
    """Read and validate the sources file; every problem is reported at once, naming its place."""
    if not path.exists():
        raise ConfigError(f"sources file {path} does not exist (set KUP_SOURCES_FILE or pass --sources)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"sources file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"sources file {path} must be a mapping with a 'sources:' list")
    try:
        return SourcesFile.model_validate(data).sources
    except ValidationError as exc:
        problems = "; ".join(_describe(e, data) for e in exc.errors())
        raise ConfigError(f"sources file {path} is invalid: {problems}") from exc


def select_sources(sources: list[Source], names: list[str] | None) -> list[Source]:
    """The sources named (all when ``names`` is empty); an unknown name is a configuration error."""
    if not names:
        return sources
    known = {s.name: s for s in sources}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"unknown source(s): {', '.join(unknown)}; the sources file has: {', '.join(known) or 'none'}"
        )
    return [known[n] for n in names]
