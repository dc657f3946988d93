"""The package facades (``connectors``, ``indexing``) load their names on first use, and every name resolves."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("package", ["connectors", "indexing"])
def test_every_exported_name_resolves_to_its_module_object(package: str) -> None:
    facade = importlib.import_module(package)
    for name in facade.__all__:
        value = getattr(facade, name)
        home = importlib.import_module(facade._WHERE[name]) if name in facade._WHERE else None
        assert home is None or getattr(home, name) is value, name
    assert sorted(facade.__all__) == sorted(set(facade.__all__)) and set(facade.__all__) <= set(dir(facade))
    assert "annotations" not in facade.__all__  # the __future__ import is not an export (`import *` took it)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        facade.Nope  # noqa: B018


def test_the_search_function_is_not_shadowed_by_its_module() -> None:
    import indexing

    module = importlib.import_module("indexing.search")  # loading a submodule binds a package attribute of its name
    assert indexing.search is module.search and callable(indexing.search)


def test_importing_a_facade_loads_only_what_is_asked_for() -> None:
    code = (
        "import sys\n"
        "from connectors import FetchPolicy, load_sources\n"
        "from indexing import EdgeStore, search\n"
        "print(sorted(m for m in ('trafilatura', 'feedparser', 'sqlalchemy', 'qdrant_client', 'great_expectations')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
