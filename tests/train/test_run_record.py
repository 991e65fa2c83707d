"""run.json as a typed record: checked on read (every problem named at once), round-tripped
with the fields a task adds of its own, and turned back into the run's TrainConfig."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rec_edge.config import TrainConfig
from rec_edge.errors import RunError
from rec_edge.train.runs import RunRecord, load_run

RECORD = {
    "task": "classify",
    "name": "tiny",
    "labels": ["neg", "pos"],
    "templates": {"templates": []},
    "max_length": 64,
    "config": {"train_file": "train.jsonl", "shots": 4},
    "metrics": {"validation": {"accuracy": 0.5}, "test": None},
    "counts": {"train": 8},  # a field of its own: kept as written
}


def _run_dir(tmp_path: Path, record: dict) -> Path:
    (tmp_path / "model").mkdir(parents=True)
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "run.json").write_text(json.dumps(record))
    return tmp_path


def test_a_run_reads_as_a_record_and_writes_back_the_same(tmp_path: Path) -> None:
    run = load_run(_run_dir(tmp_path, RECORD))
    assert (run.task, run.labels, run.max_length, run.family) == (
        "classify",
        ["neg", "pos"],
        64,
        "encoder",
    )
    assert run.extra == {"counts": {"train": 8}} and run.head == {} and run.collaborative is None
    config = run.train_config()
    assert isinstance(config, TrainConfig) and config.shots == 4
    run.collaborative = {"encoder": "int8"}
    run.save(tmp_path)
    written = json.loads((tmp_path / "run.json").read_text())
    assert written == {**RECORD, **{k: v for k, v in written.items() if k not in RECORD}}
    assert load_run(tmp_path).collaborative == {"encoder": "int8"}


def test_a_generate_run_has_no_labels(tmp_path: Path) -> None:
    run = RunRecord.from_dict({**RECORD, "task": "generate", "labels": None, "family": "decoder"})
    assert run.labels == [] and run.family == "decoder"


def test_every_problem_is_named_with_the_file(tmp_path: Path) -> None:
    bad = {**RECORD, "task": "sort", "labels": [1], "max_length": 0, "head": []}
    del bad["templates"]
    with pytest.raises(RunError) as raised:
        load_run(_run_dir(tmp_path, bad))
    message = str(raised.value)
    assert str(tmp_path / "run.json") in message
    for problem in (
        "field 'templates' is missing",
        "field 'task' is 'sort'",
        "field 'labels' is [1], not null or a list of strings",
        "field 'max_length' is 0, not a positive integer",
        "field 'head' is [], not an object",
    ):
        assert problem in message
    (tmp_path / "run.json").write_text("[]")
    with pytest.raises(RunError, match="holds list, not an object"):
        load_run(tmp_path)


def test_a_config_this_version_cannot_read_is_a_run_error() -> None:
    run = RunRecord.from_dict({**RECORD, "config": {"train_file": "x", "no_such_option": 1}})
    with pytest.raises(RunError, match="its config does not load in this version"):
        run.train_config()
