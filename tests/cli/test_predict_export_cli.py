"""`rec-edge predict` and `rec-edge export` through CliRunner: outputs and one error path each."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rec_edge.cli import main

pytestmark = pytest.mark.slow


def test_predict_texts_and_files(tiny_bundle, tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["predict", str(tiny_bundle), "goal match", "rain storm"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if "\t" in line]
    assert len(lines) == 2 and lines[0].split("\t")[0] in ("finance", "sports", "weather")

    (tmp_path / "in.txt").write_text("goal match\n\nrain storm\n")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        main,
        ["predict", str(tiny_bundle), "--input", str(tmp_path / "in.txt"), "--output", str(out)],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in rows] == ["goal match", "rain storm"]
    assert abs(sum(rows[0]["scores"].values()) - 1) < 1e-3
    assert "2 texts in" in result.stderr


def test_predict_errors(tiny_bundle, tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["predict", str(tmp_path / "none"), "x"])
    assert result.exit_code == 1 and result.output.startswith("error: Bundle folder")
    (tmp_path / "bad.txt").write_bytes(b"fine\n\xff\xfe\n")
    result = runner.invoke(
        main, ["predict", str(tiny_bundle), "--input", str(tmp_path / "bad.txt")]
    )
    assert result.exit_code == 1 and f"{tmp_path / 'bad.txt'}:2: not valid UTF-8" in result.output
    result = runner.invoke(main, ["predict", str(tiny_bundle)])
    assert result.exit_code == 2 and "Give TEXTS or --input FILE" in result.output


def test_export_error_is_one_line(tmp_path) -> None:
    result = CliRunner().invoke(main, ["export", str(tmp_path / "missing-run")])
    assert result.exit_code == 1
    assert (
        result.output.strip().startswith("error: Run folder") and "Traceback" not in result.output
    )
