"""run_benchmark end to end on the tiny bundle: every engine in its worker, the reports, the skips."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from rec_edge.bench import BenchConfig, run_benchmark
from rec_edge.bench.report import terminal, write_reports
from rec_edge.cli import main
from tests.helpers import BLOCK_TORCH, make_examples, write_jsonl

pytestmark = pytest.mark.slow


def test_all_engines_and_reports(tiny_bundle, tmp_path) -> None:
    texts = write_jsonl(tmp_path / "texts.jsonl", make_examples(5, seed=3))
    config = BenchConfig(
        bundles=[str(tiny_bundle)],
        engines=["onnx", "ort-raw", "torch", "optimum"],
        batch_sizes=[1, 4],
        text_file=str(texts),
        label_field="label",
        warmup=1,
        iterations=5,
        whole_list=2,
        cold_start_runs=1,
    )
    data = run_benchmark(config).data
    assert data["schema"] == "rec-edge-bench/1" and data["baseline"] == "torch"
    assert {
        "machine",
        "versions",
        "engines",
        "results",
        "cold_start",
        "peak",
        "notes",
        "config",
    } <= set(data)
    assert data["machine"]["cores"] and data["versions"]["onnxruntime"]
    assert set(data["engines"]) == {"onnx:tiny", "ort-raw:tiny", "torch:tiny-fp32", "optimum:tiny"}
    assert len(data["results"]) == 12  # 4 engines x (2 batch sizes + the whole list)
    for row in data["results"]:
        whole = row["workload"] == "whole list"
        assert len(row["samples"]) == (2 if whole else 5)
        assert not whole or row["batch_size"] == len(texts.read_text().splitlines())
        assert row["stats"]["p50"] > 0 and row["stats"]["p99"] >= row["stats"]["p50"]
        assert row["speedup_vs_baseline"] > 0
        assert row["fraction_of_peak"] > 0
    torch_rows = [r for r in data["results"] if r["kind"] == "torch"]
    assert all(r["speedup_vs_baseline"] == 1.0 for r in torch_rows)
    for name, engine in data["engines"].items():
        assert 0 <= engine["accuracy"] <= 1, name
        assert data["cold_start"][name]["process_seconds_p50"] > 0, name
    # the Predictor and optimum's pipeline run the same int8 graph on the same texts
    assert data["engines"]["onnx:tiny"]["accuracy"] == data["engines"]["optimum:tiny"]["accuracy"]
    assert data["peak"]["2" if "2" in data["peak"] else next(iter(data["peak"]))]["fp32_macs"] > 1e8
    written = write_reports(data, tmp_path / "out")
    assert [p.name for p in written] == ["bench.json", "bench.md", "bench.png"]
    assert json.loads(written[0].read_text())["results"][0]["samples"]
    assert "## Latency" in written[1].read_text()
    assert "onnx:tiny" in terminal(data)


def test_peer_engines(tiny_bundle, tmp_path) -> None:
    """fastembed on the bundle's own graph answers as the Predictor does, sentence-transformers'
    ONNX export of the fp32 model with the run's head as PyTorch does, alone and in a list."""
    texts = write_jsonl(tmp_path / "texts.jsonl", make_examples(6, seed=4))
    config = BenchConfig(
        bundles=[str(tiny_bundle)],
        engines=["onnx", "fastembed", "st-onnx", "torch"],
        batch_sizes=[3],
        text_file=str(texts),
        label_field="label",
        warmup=0,
        iterations=3,
        whole_list=1,
        cold_start_runs=1,
        peak=False,
    )
    data = run_benchmark(config).data
    engines = data["engines"]
    assert set(engines) == {"onnx:tiny", "fastembed:tiny", "st-onnx:tiny", "torch:tiny-fp32"}
    assert engines["fastembed:tiny"]["accuracy"] == engines["onnx:tiny"]["accuracy"]
    assert engines["st-onnx:tiny"]["accuracy"] == engines["torch:tiny-fp32"]["accuracy"]
    assert engines["st-onnx:tiny"]["recipe"].startswith("fp32")
    whole = [r for r in data["results"] if r["workload"] == "whole list"]
    assert len(whole) == 4 and all(r["stats"]["p50"] > 0 for r in whole)
    for name in ("fastembed:tiny", "st-onnx:tiny"):  # a fresh process loads and answers once
        assert data["cold_start"][name]["process_seconds_p50"] > 0, data["cold_start"][name]


def test_missing_extra_is_skipped_with_a_note(tiny_bundle) -> None:
    code = BLOCK_TORCH + (
        "from rec_edge.bench import BenchConfig, run_benchmark\n"
        f"config = BenchConfig(bundles=[{str(tiny_bundle)!r}], engines=['onnx', 'torch', 'optimum'],"
        " batch_sizes=[1], seq_lengths=[24], warmup=0, iterations=3, cold_start_runs=0, peak=False)\n"
        "result = run_benchmark(config)\n"
        "print(sorted(result.data['engines']))\nprint(*result.notes, sep='\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "['onnx:tiny']"
    assert any(
        line.startswith("engine 'torch' skipped: torch") and "rec-edge[train]" in line
        for line in lines
    )
    assert any(line.startswith("engine 'optimum' skipped") for line in lines)


def test_cli_bench_error(tmp_path) -> None:
    result = CliRunner().invoke(main, ["bench", str(tmp_path / "missing")])
    assert result.exit_code == 1 and result.output.startswith("error: Bundle folder")
    result = CliRunner().invoke(main, ["bench", "x", "--batch-sizes", "1,a"])
    assert result.exit_code == 2 and "comma-separated integers" in result.output
