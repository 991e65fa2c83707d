"""One declaration per option: the options of `rec-edge train`, `export`, `score`, `serve` and `bench` are
built from their configs' fields (``config.option``), so a field's name, default, choices, bound
and help reach the command line as declared, and what it passes builds the same config."""

from __future__ import annotations

import dataclasses

import click
import pytest
from click.testing import CliRunner

from rec_edge.cli import main
from rec_edge.cli.bench import command as bench_command
from rec_edge.cli.export import command as export_command
from rec_edge.cli.score import command as score_command
from rec_edge.cli.serve import command as serve_command
from rec_edge.cli.train import command as train_command
from rec_edge.config import (
    BenchConfig,
    DecoderExportConfig,
    ExportConfig,
    ScoreConfig,
    ServeConfig,
    TrainConfig,
)

# fields that the command line sets otherwise (use_templates: --no-template / --with-template;
# early_stopping_patience: 0 is off) or leaves to the Python API
NOT_OPTIONS = {
    TrainConfig: {
        "train_file",
        "use_templates",
        "early_stopping_patience",
        "weight_decay",
        "warmup_ratio",
    },
    ExportConfig: {"run_dir", "seed"},
    ScoreConfig: {"bundle", "input", "progress"},  # BUNDLE INPUT, --no-progress
    ServeConfig: {"bundles"},  # BUNDLE... and --bundle NAME=PATH
    BenchConfig: {"bundles"},  # BUNDLE...
}


def _params(command: click.Command) -> dict[str, click.Parameter]:
    return {p.name: p for p in command.params if p.name}


@pytest.mark.parametrize(
    ("config", "command"),
    [
        (TrainConfig, train_command),
        (ExportConfig, export_command),
        (ScoreConfig, score_command),
        (ServeConfig, serve_command),
        (BenchConfig, bench_command),
    ],
)
def test_every_option_field_is_an_option_with_its_default_and_help(config, command) -> None:
    params = _params(command)
    for f in dataclasses.fields(config):
        if f.name in NOT_OPTIONS[config]:
            assert "help" not in f.metadata
            continue
        assert f.metadata.get("help"), f"{config.__name__}.{f.name} declares no help"
        param = params[f.name]
        assert param.help == f.metadata["help"] if isinstance(param, click.Option) else True
        if f.default is not dataclasses.MISSING and f.default is not None:
            assert param.default == f.default, f.name
        if f.metadata["parse"] in ("names", "ints"):  # a list: its default list, comma-separated
            assert param.default == ",".join(map(str, f.default_factory())), f.name
        if f.metadata["choices"]:
            assert isinstance(param.type, click.Choice)
            assert list(param.type.choices) == list(f.metadata["choices"])


def test_decoder_options_convert_to_the_declared_types() -> None:
    params = _params(export_command)
    context = click.Context(export_command)
    assert params["block_size"].type_cast_value(context, "64") == 64  # an int choice stays an int
    assert params["accuracy_level"].type_cast_value(context, "0") == 0
    assert params["labels"].callback is not None  # LABEL=WORDS pairs
    for name in ("task", "weights", "min_agreement"):
        f = {f.name: f for f in dataclasses.fields(DecoderExportConfig)}[name]
        assert params[name].default == f.default


def test_the_command_line_builds_the_config_it_declares(monkeypatch, tmp_path) -> None:
    seen: list[TrainConfig] = []

    def fake_train(config: TrainConfig) -> None:
        seen.append(config)
        raise SystemExit(0)  # stop before any training

    import rec_edge.train

    monkeypatch.setattr(rec_edge.train, "train", fake_train)
    args = [
        "train", "data.jsonl", "--task", "rank", "--history", "5", "--no-collaborative",
        "--template", "a {text}", "--template", "b {text}", "--label-name", "pos=good",
        "--target-modules", "query, value", "--format", "csv", "--early-stopping-patience", "0",
        "--no-template", "--max-steps", "7",
    ]  # fmt: skip
    CliRunner().invoke(main, args)
    (config,) = seen
    assert (config.task, config.history, config.collaborative) == ("rank", 5, False)
    assert config.templates == ["a {text}", "b {text}"] and config.label_names == {"pos": "good"}
    assert config.target_modules == ["query", "value"] and config.file_format == "csv"
    assert config.early_stopping_patience is None and config.use_templates is False
    assert config.max_steps == 7 and config.lora_r == 16  # an untouched option: its default


def test_bounds_and_choices_are_refused_by_the_command_line() -> None:
    result = CliRunner().invoke(main, ["train", "x.jsonl", "--lora-r", "0"])
    assert result.exit_code == 2 and "0 is not in the range x>=1" in result.output
    result = CliRunner().invoke(main, ["train", "x.jsonl", "--precision", "fp16"])
    assert result.exit_code == 2 and "'fp16' is not one of" in result.output
    with pytest.raises(Exception, match="lora_r=0 \\(must be >= 1\\)"):
        TrainConfig(train_file="x", lora_r=0)  # the same bound, declared once, in Python


def test_bench_lists_parse_to_the_declared_types(monkeypatch) -> None:
    seen: list[BenchConfig] = []

    def fake_run(config: BenchConfig, **_: object) -> None:
        seen.append(config)
        raise SystemExit(0)

    import rec_edge.bench

    monkeypatch.setattr(rec_edge.bench, "run_benchmark", fake_run)
    monkeypatch.setattr("rec_edge.bundle.load_bundle", lambda *a, **k: None)
    args = ["bench", "b", "--batch-sizes", "1, 8", "--engines", "onnx,fastembed", "--no-peak"]
    CliRunner().invoke(main, args)
    (config,) = seen
    assert config.batch_sizes == [1, 8] and config.engines == ["onnx", "fastembed"]
    assert config.threads == [] and config.peak is False and config.whole_list == 3


def test_export_passes_the_decoder_options_to_its_config(monkeypatch) -> None:
    """`rec-edge export --model M --symmetric ...` builds the DecoderExportConfig it says."""
    seen: list[DecoderExportConfig] = []

    def fake_export(config: DecoderExportConfig) -> None:
        seen.append(config)
        raise SystemExit(0)  # stop before any export

    import rec_edge.export.decoder

    monkeypatch.setattr(rec_edge.export.decoder, "export_decoder", fake_export)
    args = ["export", "--model", "m", "--out", "o", "--symmetric", "--block-size", "64"]
    CliRunner().invoke(main, args)
    assert seen and (seen[0].symmetric, seen[0].block_size) == (True, 64)
    seen.clear()
    CliRunner().invoke(main, ["export", "--model", "m", "--out", "o"])
    assert seen and seen[0].symmetric is None  # zero points at 4 bits, none at 8
