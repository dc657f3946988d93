"""The sources file (``sources.yaml``): which feeds, databases and other kinds of source a pipeline pulls.

Each entry's ``type`` names its kind: ``feed`` (the default) and ``sql`` are built in; a package adds a kind through
the ``kup.sources`` entry point group (``indexing.source_kind.SourceKind`` says what a kind does), and its
``config`` model is what an entry of that type may hold.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Mapping
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator, model_validator

from errors import ConfigError

logger = logging.getLogger(__name__)

_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MIN_POLL_SECONDS = 5.0  # a hot feed's shortest poll interval: faster than this is impolite to its host


class SourceConfig(BaseModel):
    """What every entry of the sources file holds: its kind (``type``) and a unique name; a kind adds its own."""

    model_config = ConfigDict(extra="forbid")

    type: str
    name: Annotated[str, Field(pattern=_NAME_PATTERN)]

    def document_needs(self) -> tuple[bool, bool]:
        """Whether this source's documents must carry a URL and a title (the data checks quarantine those that
        do not); both by default."""
        return True, True


Source = SourceConfig  # a source of any kind, as the sources file describes it


class FeedSource(SourceConfig):
    """An RSS/Atom feed whose items' articles are fetched and extracted."""

    type: Literal["feed"] = "feed"
    url: HttpUrl
    fetch_articles: bool = True  # False: index the feed's own summary/content only
    allow_private_addresses: bool = False  # let this source reach private/loopback hosts (tests, intranets)
    max_items: Annotated[int, Field(ge=1, le=10_000)] = 200
    # A hot feed: polled every this many seconds by `kup watch` (conditional GET; per-host limits still apply).
    poll_seconds: Annotated[float, Field(ge=MIN_POLL_SECONDS, le=3600)] | None = None

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: HttpUrl) -> HttpUrl:
        if value.scheme not in ("http", "https"):
            raise ValueError("only http(s) feeds are supported")
        return value


def template_fields(template: str) -> list[str]:
    """The column names a ``{column}`` template refers to.

    Only plain column names are allowed: ``{0}``, ``{}``, ``{a.b}``, ``{a[0]}``, ``{x!r}`` and
    ``{x:d}`` would raise (or reach into objects) when a row is rendered, so they are refused here,
    when the sources file loads. Literal braces are written ``{{`` and ``}}``.
    """
    names = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        field = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if not name or name.isdigit():
            raise ValueError(f"{field} names no column; write {{column_name}} (or {{{{ }}}} for a literal brace)")
        if any(c in name for c in ".[]{}"):
            raise ValueError(f"{field} is not a plain column name; write {{column_name}}")
        if conversion or spec:
            raise ValueError(f"{field} has a conversion or format spec; write just {{{name}}}")
        names.append(name)
    return names


_SELECT = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)


class SqlSource(SourceConfig):
    """A table or read-only query in an SQL database; rows become documents, changes and deletes follow."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["sql"]
    url_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]  # the URL lives in the environment only
    table: str | None = None
    db_schema: str | None = Field(None, alias="schema")
    query: str | None = None  # a read-only SELECT; used instead of table
    id_columns: Annotated[list[str], Field(min_length=1)]
    text: str  # template such as "{title}\n\n{body}"
    title: str | None = None  # template; default: no title
    url: str | None = None  # template such as "https://wiki.example.com/page/{id}"
    metadata_columns: list[str] = Field(default_factory=list)
    updated_column: str  # orders changes: an updated_at timestamp or a monotonically increasing version
    published_column: str | None = None  # default: the updated column when it is a timestamp
    deleted_column: str | None = None  # soft deletes: a truthy value removes the row from the index
    reconcile_minutes: Annotated[float, Field(ge=0)] | None = 60  # find hard deletes this often; None: never
    lookback: Annotated[float, Field(ge=0)] = 300  # re-read this much before the cursor (s, or version units)
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 1000
    max_delete_fraction: Annotated[float, Field(ge=0, le=1)] = 0.2  # mass-deletion guard for reconciliation
    timezone: str = "UTC"  # of naive timestamp columns
    events: Literal["notify"] | None = None  # notify: a PostgreSQL trigger (`kup events install`) wakes a refresh

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of table or query")
        if self.query is not None:
            body = self.query.strip().rstrip(";")
            if not _SELECT.match(body) or ";" in body:
                raise ValueError("query must be a single SELECT (or WITH ... SELECT) statement")
            self.query = body
        if self.events is not None and self.table is None:
            raise ValueError("events: notify needs a table (a trigger cannot watch a query)")
        for name, template in (("text", self.text), ("title", self.title), ("url", self.url)):
            if template is not None:
                try:
                    template_fields(template)
                except ValueError as exc:
                    raise ValueError(f"{name} template is malformed: {exc}") from exc
        return self

    def document_needs(self) -> tuple[bool, bool]:
        """A row carries a URL and a title only when the source has templates for them."""
        return bool(self.url), bool(self.title)

    def columns(self) -> dict[str, str]:
        """Every column the configuration names, with the setting that names it."""
        named: dict[str, str] = {}
        for col in self.id_columns:
            named.setdefault(col, "id_columns")
        named.setdefault(self.updated_column, "updated_column")
        for setting, template in (("text", self.text), ("title", self.title), ("url", self.url)):
            for col in template_fields(template or ""):
                named.setdefault(col, f"{setting} template")
        for col in self.metadata_columns:
            named.setdefault(col, "metadata_columns")
        if self.published_column:
            named.setdefault(self.published_column, "published_column")
        if self.deleted_column:
            named.setdefault(self.deleted_column, "deleted_column")
        return named


ENTRY_POINT_GROUP = "kup.sources"
BUILT_IN: dict[str, type[SourceConfig]] = {"feed": FeedSource, "sql": SqlSource}


@cache
def plugin_kinds() -> dict[str, object]:
    """Source kinds that installed packages register under the ``kup.sources`` entry point group, by type.

    A plugin that cannot be loaded is skipped with one warning naming it; the sources file then says that its
    type is unknown where it is used.
    """
    found: dict[str, object] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            kind = entry.load()
            kind = kind() if isinstance(kind, type) else kind
            config = kind.config
        except Exception as exc:  # noqa: BLE001 - someone else's package: one sentence, and the others go on
            logger.warning("source kind %r (%s) cannot be loaded, so it is left out: %s", entry.name, entry.value, exc)
            continue
        if entry.name in BUILT_IN or not (isinstance(config, type) and issubclass(config, SourceConfig)):
            why = "its name is built in" if entry.name in BUILT_IN else "its config is not a SourceConfig"
            logger.warning("source kind %r (%s) is left out: %s", entry.name, entry.value, why)
            continue
        found[entry.name] = kind
    return found


def source_types() -> dict[str, type[SourceConfig]]:
    """What an entry's ``type`` may be, and the model its entry is read with."""
    return {**BUILT_IN, **{name: kind.config for name, kind in plugin_kinds().items()}}


def _repeated(names: list[object]) -> list[str]:
    return sorted({str(n) for n in names if names.count(n) > 1})


def _duplicates_message(duplicates: list[str]) -> str:
    return f"source names must be unique; repeated: {', '.join(duplicates)}"


def _describe(error: dict, model: type[BaseModel]) -> str:
    """One validation problem of an entry read with ``model`` as ``place: what is wrong``, in words a user can act
    on (``error["loc"]`` starts with the entry's place in the file)."""
    loc = list(error["loc"])
    location = ".".join(str(part) for part in loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        known = ", ".join(f.alias or n for n, f in model.model_fields.items()) if len(loc) > 2 else "sources"
        return f"{location}: unknown key (known keys: {known})"
    if kind == "string_pattern_mismatch" and loc[-1] == "name":
        return (
            f"{location}: {error['input']!r} is not a valid name "
            "(use 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit)"
        )
    if kind in ("model_type", "dict_type"):
        return f"{location}: must be a mapping of settings with at least a name and a url"
    if kind == "missing":
        return f"{location}: required but missing"
    if kind == "string_pattern_mismatch" and loc[-1] == "url_env":
        return f"{location}: {error['input']!r} is not an environment variable name"
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
    sources, problems = _read_entries(data, source_types())
    if problems:
        raise ConfigError(f"sources file {path} is invalid: {'; '.join(problems)}")
    return sources


def _read_entries(data: dict, types: Mapping[str, type[SourceConfig]]) -> tuple[list[SourceConfig], list[str]]:
    """Each entry read with the model of its ``type``, and every problem found, each naming its place."""
    unknown = sorted(str(key) for key in data if key != "sources")
    if unknown:
        return [], [f"{key}: unknown key (known keys: sources)" for key in unknown]
    raw = data.get("sources") or []
    if not isinstance(raw, list):
        return [], ["sources: must be a list of sources"]
    sources: list[SourceConfig] = []
    problems: list[str] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            problems.append(f"sources.{index}: must be a mapping of settings with at least a name and a url")
            continue
        kind = str(entry.get("type", "feed"))
        model = types.get(kind)
        if model is None:
            problems.append(f"sources.{index}.type: type must be one of {', '.join(types)}")
            continue
        try:
            sources.append(model.model_validate(entry))
        except ValidationError as exc:
            problems += [_describe({**e, "loc": ("sources", index, *e["loc"])}, model) for e in exc.errors()]
    duplicates = _repeated([entry.get("name") for entry in raw if isinstance(entry, dict) and "name" in entry])
    if duplicates:
        problems.append(f"sources: {_duplicates_message(duplicates)}")
    return sources, problems


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
