"""`kup models prepare` and the one-line notice before the packaged language model is de-quantized."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.models import preparing_notice
from flows.settings import load_settings

pytestmark = pytest.mark.usefixtures("restore_environ")


def test_the_notice_says_where_and_how_much_only_when_there_is_work(pipeline, tiny_model_dir) -> None:
    notice = preparing_notice(load_settings())
    cache = pipeline.data_dir / "models" / "SmolLM2-135M-Instruct"
    assert notice == (
        f"preparing the language model once: de-quantizing SmolLM2-135M-Instruct.Q4_1.gguf into {cache} "
        "(~520 MB, about a minute; `kup models prepare` does it ahead of time)"
    )
    assert preparing_notice(load_settings(base_model=str(tiny_model_dir))) is None  # a local model: nothing to do


def test_prepare_with_a_local_model_only_loads(pipeline, monkeypatch, tiny_model_dir) -> None:
    monkeypatch.setenv("KUP_BASE_MODEL", str(tiny_model_dir))
    result = CliRunner().invoke(app, ["models", "prepare"])
    assert result.exit_code == 0, result.output
    assert f"language model {tiny_model_dir.resolve()}" in result.stdout and "ready, nothing to do" in result.stdout
    assert "embedding model: " in result.stdout and "384 dimensions" in result.stdout
    assert "preparing" not in result.output and "Traceback" not in result.output


def test_a_missing_local_model_is_one_sentence(pipeline, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("KUP_BASE_MODEL", str(tmp_path / "nowhere"))
    result = CliRunner().invoke(app, ["models", "prepare"])
    assert result.exit_code == 2 and "KUP_BASE_MODEL" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_prepare_dequantizes_smollm2_once_and_says_so(pipeline) -> None:
    first = CliRunner().invoke(app, ["models", "prepare"])
    assert first.exit_code == 0, first.output
    cache = pipeline.data_dir / "models" / "SmolLM2-135M-Instruct"
    assert f"preparing the language model once: de-quantizing SmolLM2-135M-Instruct.Q4_1.gguf into {cache}" in (
        first.stderr
    )
    assert f"language model smollm2: {cache} (5" in first.stdout and "prepared in" in first.stdout  # ~517 MB
    assert "de-quantizing GGUF tensors" not in first.output and "%|" not in first.output  # no other progress bar
    again = CliRunner().invoke(app, ["models", "prepare"])
    assert again.exit_code == 0 and "ready, nothing to do" in again.stdout and "preparing" not in again.output
