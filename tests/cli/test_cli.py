"""CLI: --help of every command, --version, and errors as one line without a traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from rec_edge import __version__
from rec_edge.cli import COMMANDS, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_of_every_command(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: main {command}" in result.output or f"{command} [OPTIONS]" in result.output


def test_root_help_lists_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_rec_edge_error_is_one_line(tmp_path) -> None:
    missing = tmp_path / "missing.jsonl"
    result = CliRunner().invoke(main, ["train", str(missing), "--runs-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {missing}: file not found"
    assert "Traceback" not in result.output


def test_debug_shows_the_exception(tmp_path) -> None:
    from rec_edge.errors import DataError

    result = CliRunner().invoke(main, ["--debug", "train", str(tmp_path / "x.jsonl")])
    assert isinstance(result.exception, DataError)


def test_bad_label_name_option(tmp_path) -> None:
    result = CliRunner().invoke(main, ["train", "x.jsonl", "--label-name", "nolabel"])
    assert result.exit_code == 2
    assert "expected LABEL=WORDS" in result.output


def test_description_and_template_options(tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["export", "runs/x", "--add-label", "refund"])
    assert result.exit_code == 2 and "expected LABEL=WORDS" in result.output
    result = runner.invoke(main, ["train", "x.jsonl", "--description", "refund= "])
    assert result.exit_code == 2 and "expected LABEL=WORDS" in result.output
    result = runner.invoke(main, ["train", "x.jsonl", "--no-template", "--with-template"])
    assert result.exit_code == 2 and "contradict" in result.output
    result = runner.invoke(main, ["train", "x.jsonl", "--compare-templates", "--with-template"])
    assert result.exit_code == 2 and "drop --no-template / --with-template" in result.output
    result = runner.invoke(main, ["train", "x.jsonl", "--shots", "0", "--head", "linear"])
    assert result.exit_code == 1 and "zero-shot" in result.output


def test_templates_only_when_asked() -> None:
    from rec_edge.config import TrainConfig

    assert TrainConfig(train_file="x").resolved_use_templates({}) is False  # measured: raw text
    assert TrainConfig(train_file="x", instruction="Which topic?").resolved_use_templates({})
    assert TrainConfig(train_file="x").resolved_use_templates({"templates": ["Q: {text}"]})
    assert TrainConfig(train_file="x", task="rank").resolved_use_templates({})
    assert not TrainConfig(
        train_file="x", instruction="Q", use_templates=False
    ).resolved_use_templates({})
