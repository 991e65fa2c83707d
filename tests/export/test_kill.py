"""kill -9 in the middle of export and of train, in real child processes: no half bundle, no
litter, and the next export (or `train --resume`) ends as an uninterrupted one does."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rec_edge.config import ExportConfig
from rec_edge.export import export
from tests.helpers import tiny_train_config

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _kill_when(command: list[str], ready: Callable[[], bool], env: dict[str, str], cwd: Path):  # type: ignore[no-untyped-def]
    """Start ``command``, SIGKILL it as soon as ``ready()`` holds; the child's return code."""
    child = subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while not ready():
        if child.poll() is not None:
            raise AssertionError(
                f"finished before the kill: {child.stderr.read().decode()[-2000:]}"
            )  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            child.kill()
            raise AssertionError("the moment to kill never came")
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    return child.returncode


def test_export_killed_leaves_nothing(tiny_run, tmp_path: Path) -> None:
    temp, cwd, exports = tmp_path / "tmp", tmp_path / "cwd", tmp_path / "exports"
    for folder in (temp, cwd, exports):
        folder.mkdir()
    out = exports / "tiny"
    code = _kill_when(
        [sys.executable, "-m", "rec_edge.cli", "export", str(tiny_run.run_dir), "--out", str(out)],
        lambda: any(temp.glob("rec-edge-export-*/candidates/*/model.onnx")),  # in the gate
        {"TMPDIR": str(temp), "PYTHONPATH": str(ROOT)},
        cwd,
    )
    assert code == -signal.SIGKILL
    assert not out.exists() and list(cwd.iterdir()) == []
    assert [p.name for p in exports.iterdir() if p.name.endswith(".partial")]  # what a kill leaves

    os.environ["TMPDIR"], before = str(temp), os.environ.get("TMPDIR")
    import tempfile

    tempfile.tempdir = None  # re-read TMPDIR
    try:
        result = export(
            ExportConfig(run_dir=str(tiny_run.run_dir), out=str(out)), log=lambda _: None
        )
    finally:
        os.environ.pop("TMPDIR") if before is None else os.environ.update(TMPDIR=before)
        tempfile.tempdir = None
    assert result.bundle_dir == out and (out / "rec_edge.json").is_file()
    assert [p.name for p in exports.iterdir()] == ["tiny"]  # the killed export's staging removed
    assert list(temp.glob("rec-edge-export-*")) == []  # and its work folder


def test_train_killed_then_resumed_ends_as_uninterrupted(
    tiny_run, tiny_model: str, topic_files, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    config = tiny_train_config(tiny_model, topic_files, runs)  # the tiny_run fixture's settings
    partial = runs / "tiny.partial"
    script = (
        "import json, sys; from rec_edge.config import TrainConfig; from rec_edge.train import train; "
        "train(TrainConfig(**json.loads(sys.argv[1])))"
    )
    code = _kill_when(
        [sys.executable, "-c", script, json.dumps(dataclasses.asdict(config))],
        lambda: len(list(partial.glob("checkpoints/checkpoint-*/trainer_state.json"))) >= 2,
        {"PYTHONPATH": str(ROOT)},
        tmp_path,
    )
    assert code == -signal.SIGKILL and partial.is_dir() and not (runs / "tiny").exists()

    from rec_edge.train import train

    resumed = train(dataclasses.replace(config, resume=True))
    run = json.loads((resumed.run_dir / "run.json").read_text())
    assert run["resumed_from"] and "checkpoint-" in run["resumed_from"]
    for split in ("validation", "test"):
        assert resumed.metrics[split]["accuracy"] == pytest.approx(
            tiny_run.metrics[split]["accuracy"],
            abs=0.034,  # one example of 30
        ), split
