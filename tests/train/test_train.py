"""Training with the real Trainer and peft on a tiny model (plumbing) and MiniLM (quality)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from rec_edge.errors import OutputExistsError, RunError
from rec_edge.train import train
from tests.helpers import tiny_train_config

pytestmark = pytest.mark.slow


def test_run_folder_contents(tiny_run) -> None:
    run_dir = tiny_run.run_dir
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "head.npz",
        "log.jsonl",
        "model",
        "run.json",
    ]
    run = json.loads((run_dir / "run.json").read_text())
    assert run["labels"] == ["finance", "sports", "weather"]
    assert run["templates"]["instruction"] == "Which topic is this?"
    assert run["config"]["seed"] == 42 and run["versions"]["torch"]
    assert run["metrics"]["test"]["n"] == 30
    assert (run_dir / "model" / "tokenizer.json").is_file()
    assert tiny_run.metrics["test"]["accuracy"] >= 0.6  # 3 keyword topics; chance is 0.33
    losses = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert any("loss" in row for row in losses) and any("eval_accuracy" in row for row in losses)


def test_lora_is_deterministic(tmp_path, tiny_model, topic_files) -> None:
    results = []
    for name in ("a", "b"):
        config = tiny_train_config(
            tiny_model, topic_files, tmp_path, name=name, method="lora", epochs=1
        )
        results.append(train(config))
    a, b = results
    assert a.metrics == b.metrics
    assert (a.run_dir / "adapter" / "adapter_config.json").is_file()
    loss = [
        [json.loads(r).get("loss") for r in (x.run_dir / "log.jsonl").read_text().splitlines()]
        for x in results
    ]
    assert loss[0] == loss[1]


def test_existing_run_needs_force(tmp_path, tiny_model, topic_files) -> None:
    config = tiny_train_config(tiny_model, topic_files, tmp_path, epochs=1)
    train(config)
    with pytest.raises(OutputExistsError, match="Pass --force to replace it"):
        train(config)
    with pytest.raises(RunError, match="Nothing to resume"):
        train(tiny_train_config(tiny_model, topic_files, tmp_path, epochs=1, resume=True))
    config.force = True
    assert train(config).run_dir == tmp_path / "tiny"
    (tmp_path / "tiny" / "run.json").unlink()  # now a folder of someone's files: not a run
    with pytest.raises(OutputExistsError, match="no run.json"):
        train(config)
    assert (tmp_path / "tiny").is_dir()


def test_kill_mid_run_then_resume(tmp_path, tiny_model, topic_files) -> None:
    args = [
        sys.executable,
        "-m",
        "rec_edge.cli",
        "train",
        str(topic_files["train"]),
        "--model",
        tiny_model,
        "--runs-dir",
        str(tmp_path),
        "--name",
        "killed",
        "--epochs",
        "12",
        "--batch-size",
        "4",
        "--early-stopping-patience",
        "0",
        "--max-length",
        "32",
        "--keep-checkpoints",
        "--no-compare-templates",  # one run (a comparison's resume: train/test_compare.py)
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "killed.partial" / "checkpoints"
    deadline = time.monotonic() + 240
    while not list(checkpoints.glob("checkpoint-*")) and time.monotonic() < deadline:
        assert process.poll() is None, "training ended before it could be killed"
        time.sleep(0.2)
    time.sleep(1.0)  # now mid-epoch, past the first checkpoint
    process.kill()
    process.wait()
    assert not (tmp_path / "killed").exists()
    first = sorted(checkpoints.glob("checkpoint-*"))[0].name
    done = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    run = json.loads((tmp_path / "killed" / "run.json").read_text())
    assert "checkpoint-" in run["resumed_from"] and first.startswith("checkpoint-")
    assert run["metrics"]["validation"]["n"] > 0


@pytest.mark.parametrize("pair_loss", [0.0, 1.0])
def test_minilm_learns_topics_few_shot(tmp_path, topic_files, pair_loss) -> None:
    config = tiny_train_config(
        None,
        topic_files,
        tmp_path,
        name="minilm",
        method="lora",
        shots=8,
        epochs=3,
        learning_rate=1e-3,
        pair_loss=pair_loss,
    )
    result = train(config)
    assert result.metrics["test"]["accuracy"] >= 0.9
    assert json.loads((result.run_dir / "run.json").read_text())["config"]["pair_loss"] == pair_loss


def test_cli_json_output_is_clean(tmp_path, tiny_model, topic_files) -> None:
    from click.testing import CliRunner

    from rec_edge.cli import main

    args = [
        "train",
        str(topic_files["train"]),
        "--model",
        tiny_model,
        "--runs-dir",
        str(tmp_path),
        "--name",
        "cli",
        "--epochs",
        "1",
        "--max-length",
        "32",
        "--json",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # the Trainer's own logs went to stderr
    assert summary["run_dir"] == str(tmp_path / "cli")
    assert summary["test"] is None and 0 <= summary["validation"]["accuracy"] <= 1
    assert summary["truncated_train_examples"] == 0

    short = ["--max-length", "4", "--force"]  # every topic text is longer than 4 tokens
    result = CliRunner().invoke(main, [*args[:-3], *short])
    assert result.exit_code == 0, result.output
    assert "training texts were cut at --max-length 4 tokens" in result.stdout


def test_resume_skips_a_checkpoint_cut_off_while_saving(tmp_path) -> None:
    from rec_edge.train.trainer import _last_checkpoint

    for step, complete in ((10, True), (20, True), (30, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    assert _last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-20")
    assert not (tmp_path / "checkpoint-30").exists()
    assert _last_checkpoint(tmp_path / "none") is None
