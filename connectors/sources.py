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
        duplicates = _repeated([s.name for s in value])
        if duplicates:
            raise ValueError(_duplicates_message(duplicates))
        return value


def _repeated(names: list[object]) -> list[str]:
    return sorted({str(n) for n in names if names.count(n) > 1})


def _duplicates_message(duplicates: list[str]) -> str:
    return f"source names must be unique; repeated: {', '.join(duplicates)}"


def _describe(error: dict) -> str:
    """One validation problem as ``place: what is wrong``, in words a user can act on."""
    location = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        known = ", ".join(FeedSource.model_fields) if len(error["loc"]) > 2 else "sources"
        return f"{location}: unknown key (known keys: {known})"
    if kind == "string_pattern_mismatch" and error["loc"][-1] == "name":
        return (
            f"{location}: {error['input']!r} is not a valid name "
            "(use 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit)"
        )
    if kind in ("model_type", "dict_type"):
        return f"{location}: must be a mapping of settings with at least a name and a url"
    if kind == "missing":
        return f"{location}: required but missing"
    message = error["msg"].removeprefix("Value error, ")
    if kind.startswith("url_"):
        return f"{location}: {error['input']!r} is not a usable URL ({message})"
    return f"{location}: {message}"


def load_sources(path: Path) -> list[Source]:
    """Read and validate the sources file; every problem is reported at once, naming its place."""
    if not path.exists():
        raise ConfigError(f"sources file {path} does not exist (set KUP_SOURCES_FILE or pass --sources)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"sources file {path} is not valid YAML: {problem}{where}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"sources file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"sources file {path} cannot be read: {exc.strerror or exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"sources file {path} must be a mapping with a 'sources:' list")
    try:
        return SourcesFile.model_validate(data).sources
    except ValidationError as exc:
        problems = [_describe(e) for e in exc.errors()]
        raw = data.get("sources")
        if isinstance(raw, list) and not any(e["loc"] == ("sources",) for e in exc.errors()):
            # pydantic checks unique names only once every entry is valid; report them now as well
            duplicates = _repeated([entry.get("name") for entry in raw if isinstance(entry, dict) and "name" in entry])
            if duplicates:
                problems.append(f"sources: {_duplicates_message(duplicates)}")
        raise ConfigError(f"sources file {path} is invalid: {'; '.join(problems)}") from exc


def select_sources(sources: list[Source], names: list[str] | None) -> list[Source]:
    """The sources named (all when ``names`` is empty); an unknown name is a configuration error."""
    if not names:
        return sources
    known = {s.name: s for s in sources}
    wanted = list(dict.fromkeys(names))  # naming a source twice pulls it once
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ConfigError(
            f"unknown source(s): {', '.join(unknown)}; the sources file has: {', '.join(known) or 'none'}"
        )
    return [known[n] for n in wanted]
