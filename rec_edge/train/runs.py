"""The run folder: runs/NAME/{run.json, model/, adapter/, log.jsonl} (torch-free)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rec_edge.config import TRAIN_TASKS, TrainConfig
from rec_edge.errors import ConfigError, OutputExistsError, RunError
from rec_edge.overwrite import check_replaceable
from rec_edge.train.precision import Precision

RUN_FILE = "run.json"
PARTIAL_SUFFIX = ".partial"


FAMILIES = ("encoder", "decoder")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _labels(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value))


_OBJECT = (lambda v: isinstance(v, dict), "an object")
# field -> (check, what it must be); the others are objects
_CHECKS: dict[str, tuple[Any, str]] = {
    "task": (lambda v: v in TRAIN_TASKS, f"one of {', '.join(TRAIN_TASKS)}"),
    "family": (lambda v: v in FAMILIES, f"one of {', '.join(FAMILIES)}"),
    "name": (lambda v: isinstance(v, str) and bool(v), "a name"),
    "labels": (_labels, "null or a list of strings"),
    "max_length": (_positive_int, "a positive integer"),
    "train_seconds": (lambda v: isinstance(v, (int, float)), "a number"),
    "source_model": (lambda v: isinstance(v, str), "a string"),
    "source_model_path": (lambda v: isinstance(v, str), "a string"),
    "instruction": (lambda v: v is None or isinstance(v, str), "null or a string"),
    "skipped": (lambda v: isinstance(v, list), "a list"),
    "collaborative": (lambda v: v is None or isinstance(v, dict), "null or an object"),
}


@dataclass
class RunRecord:
    """run.json: what ``rec-edge export`` and a reader need of a finished run, checked on read
    (``load_run``) as a bundle's Manifest is. A field a task adds of its own (a decoder's label
    words, a mixture's parts, a comparison's record) is kept in ``extra`` as written."""

    task: str  # classify | rank | generate
    name: str
    labels: list[str]  # a generate run: none (run.json: null)
    templates: dict[str, Any]  # TemplateSet.to_dict() (encoders; a decoder's: {})
    max_length: int
    config: dict[str, Any] = field(default_factory=dict)  # the TrainConfig: train_config()
    family: str = "encoder"  # encoder | decoder
    source_model: str = ""
    source_model_path: str = ""  # the model folder the run started from
    head: dict[str, Any] = field(default_factory=dict)  # the encoder's head: kind, dim
    metrics: dict[str, Any] = field(default_factory=dict)  # {"validation": ..., "test": ...}
    precision: dict[str, Any] = field(default_factory=dict)
    truncated: dict[str, Any] = field(default_factory=dict)  # split -> inputs cut
    skipped: list[Any] = field(default_factory=list)
    train_seconds: float = 0.0
    instruction: str | None = None  # decoders: the instruction the run asked with
    collaborative: dict[str, Any] | None = None  # rank: the collaborative stage's record
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, source: str | Path = RUN_FILE) -> RunRecord:
        """The record of run.json's object ``data``; every problem at once in one RunError."""
        if not isinstance(data, dict):
            raise RunError(f"{source} holds {type(data).__name__}, not an object. Re-run training.")
        names = [f.name for f in fields(cls) if f.name != "extra"]
        required = [f.name for f in fields(cls) if f.default is f.default_factory is MISSING]
        problems = [f"field {n!r} is missing" for n in required if n not in data]
        for name in (n for n in names if n in data):
            check, what = _CHECKS.get(name, _OBJECT)
            if not check(data[name]):
                problems.append(f"field {name!r} is {data[name]!r:.60}, not {what}")
        if problems:
            raise RunError(
                f"{source}: "
                + "; ".join(problems)
                + ". Re-run training with this version of rec-edge."
            )
        known = {k: v for k, v in data.items() if k in names}
        known["labels"] = known["labels"] or []
        return cls(**known, extra={k: v for k, v in data.items() if k not in names})

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        return {**record.pop("extra"), **record}

    def save(self, run_dir: Path) -> None:
        (Path(run_dir) / RUN_FILE).write_text(
            json.dumps(self.to_dict(), indent=2), encoding="utf-8"
        )

    def train_config(self) -> TrainConfig:
        """The run's TrainConfig, as it trained."""
        try:
            return TrainConfig(**self.config)
        except (TypeError, ConfigError) as error:
            raise RunError(
                f"run {self.name!r}: its config does not load in this version of rec-edge "
                f"({error}). Re-run training."
            ) from None


@dataclass
class TrainResult:
    """What a finished training run returns: its folder, metrics and what it read."""

    run_dir: Path
    metrics: dict[str, Any]  # {"validation": report, "test": report or None}
    train_seconds: float
    skipped: int
    truncated: int
    precision: Precision
    max_length: int  # the tokens read of each input (the default resolved)

    @classmethod
    def read_back(cls, run_dir: Path) -> TrainResult:
        """A finished run's result, from its run.json (--resume of a comparison)."""
        run = load_run(run_dir)
        return cls(
            run_dir,
            run.metrics,
            float(run.train_seconds),
            len(run.skipped),
            run.truncated.get("train", 0),
            Precision(**run.precision),
            run.max_length,
        )


def prepare_run_dir(
    final: Path, force: bool, resume: bool, inputs: Sequence[str | None] = ()
) -> Path:
    """Return the working folder (final + '.partial'); training renames it into place at the end.
    ``force`` replaces a run (never a folder that holds one of ``inputs``: overwrite)."""
    partial = final.with_name(final.name + PARTIAL_SUFFIX)
    if resume:
        if not partial.is_dir():
            hint = f" (the finished run {final} cannot be resumed)" if final.exists() else ""
            raise RunError(
                f"Nothing to resume: {partial} does not exist{hint}. Run without --resume."
            )
        return partial
    if final.exists() or partial.exists():
        if not force:
            existing = final if final.exists() else partial
            what = "an interrupted run" if existing == partial else "a run"
            raise OutputExistsError(
                f"{existing} holds {what} already. Pass --force to replace it"
                + (
                    ", or --resume to continue it."
                    if existing == partial
                    else ", or choose another --name."
                )
            )
        given = [p for p in inputs if p]
        check_replaceable(final, RUN_FILE, given, option="--name or --runs-dir")
        if partial.exists():  # an interrupted run: no run.json yet, but its name says whose
            check_replaceable(partial, None, given, option="--name or --runs-dir")
        for path in (final, partial):
            if path.exists():
                shutil.rmtree(path)
    partial.mkdir(parents=True)
    return partial


def run_inputs(config: Any) -> list[str | None]:
    """The files a run reads (a TrainConfig's): --force never deletes a folder holding one."""
    names = ("train_file", "validation_file", "test_file", "items_file", "template_file", "model")
    return [getattr(config, name, None) for name in names]


def finish_run_dir(partial: Path, final: Path) -> None:
    if final.exists():  # only reachable with --force racing another writer
        shutil.rmtree(final)
    partial.rename(final)


def load_run(run_dir: str | Path) -> RunRecord:
    """Read and check run.json; every problem is a RunError that names the file."""
    run_dir = Path(run_dir)
    path = run_dir / RUN_FILE
    if not run_dir.is_dir():
        raise RunError(f"Run folder {run_dir} does not exist. Train one with `rec-edge train`.")
    if not path.is_file():
        partial = run_dir.name.endswith(PARTIAL_SUFFIX)
        raise RunError(
            f"{path} is missing: {run_dir} is not a finished run"
            + (
                " (it is an interrupted one: resume it with `rec-edge train --resume`)."
                if partial
                else "."
            )
        )
    try:
        run = RunRecord.from_dict(json.loads(path.read_text("utf-8")), path)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunError(f"{path} is corrupt ({error}). Re-run training to recreate it.") from None
    if (
        not (run_dir / "model" / "config.json").is_file()
        and not (run_dir / "adapter" / "adapter_config.json").is_file()
    ):
        raise RunError(
            f"{run_dir} holds neither a merged model (model/config.json) nor a LoRA adapter "
            "(adapter/adapter_config.json). Re-run training."
        )
    return run
