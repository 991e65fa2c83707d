"""The run folder: runs/NAME/{run.json, model/, adapter/, log.jsonl} (torch-free)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rec_edge.errors import OutputExistsError, RunError
from rec_edge.overwrite import check_replaceable
from rec_edge.train.precision import Precision

RUN_FILE = "run.json"
PARTIAL_SUFFIX = ".partial"


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
            run["metrics"],
            float(run["train_seconds"]),
            len(run["skipped"]),
            run["truncated"]["train"],
            Precision(**run["precision"]),
            run["max_length"],
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


def load_run(run_dir: str | Path) -> dict[str, Any]:
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
        run = json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunError(f"{path} is corrupt ({error}). Re-run training to recreate it.") from None
    missing = [key for key in ("labels", "templates", "max_length", "task") if key not in run]
    if missing:
        raise RunError(
            f"{path} lacks the fields {missing}. Re-run training with this version of rec-edge."
        )
    if (
        not (run_dir / "model" / "config.json").is_file()
        and not (run_dir / "adapter" / "adapter_config.json").is_file()
    ):
        raise RunError(
            f"{run_dir} holds neither a merged model (model/config.json) nor a LoRA adapter "
            "(adapter/adapter_config.json). Re-run training."
        )
    return dict(run)
