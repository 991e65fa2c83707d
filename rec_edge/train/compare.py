"""`train --compare-templates` (TORCH, through ``train``): is the instruction worth its tokens here?

Two runs on the same sample, seed and validation set: one on the raw text, one through the
instruction templates (the built-in ones, or --instruction / --template / --template-file). The
instruction costs tokens at every prediction, so it must earn them on this task's own validation
set: it becomes the run only with a strictly higher validation accuracy, else the raw text does
(measured: +2.3 points on binary sentiment at 64 examples a label, a tie or a loss on topics
and intents; benchmarks/RESULTS.md). run.json records both runs' figures under
``templates_compared``, with the paired counts that say how far the lead is from the noise. An
interrupted comparison resumes with the run it stopped in.

The default of a few-shot classify run that names no template (``TrainConfig.compare_templates``
None: ``resolved_compare_templates``): there a run takes minutes, and the measured comparison
was never behind the raw text by more than the noise and ahead on sentiment at 16 and 64
examples a label.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from rec_edge.config import TrainConfig
from rec_edge.data.tasks import run_name
from rec_edge.errors import OutputExistsError
from rec_edge.train.runs import RUN_FILE, TrainResult, load_run

# candidate -> use_templates; the first is the cheaper one, kept on a tie
CANDIDATES = (("raw", False), ("instruction", True))
KEPT = ("accuracy", "macro_f1", "n")


RULE = "the instruction only with a strictly higher validation accuracy"


def choose(validation: dict[str, dict[str, Any]]) -> str:
    """The candidate kept: the instruction only with a strictly higher validation accuracy.

    A stricter rule, a lead of more than one standard error of the paired difference (McNemar's
    z above 1, what the export gate allows), was measured on fresh samples and not adopted: on
    validation sets of K texts a label it almost never keeps the instruction, so it lost the
    instruction's real gain on sentiment at 64 a label (+2 to +4 points on test, a lead inside
    the noise on validation) and gained only noise elsewhere (benchmarks/RESULTS.md,
    benchmarks/template_rules.py)."""
    raw, instruction = (validation[name]["accuracy"] for name, _ in CANDIDATES)
    return "instruction" if instruction > raw else "raw"


def discordant(raw: dict[str, Any], instruction: dict[str, Any]) -> dict[str, int] | None:
    """The validation texts only one candidate gets right (``correct`` of each report), the
    counts a paired test of the two accuracies needs (McNemar; the difference's standard error is
    sqrt(b + c) / n to first order). None when a report lacks them (a run before they were kept)."""
    a, b = raw.get("correct"), instruction.get("correct")
    if not a or not b or len(a) != len(b):
        return None
    return {
        "raw_only": sum(x == "1" and y == "0" for x, y in zip(a, b, strict=True)),
        "instruction_only": sum(x == "0" and y == "1" for x, y in zip(a, b, strict=True)),
    }


def paired_log_prob(raw: dict[str, Any], instruction: dict[str, Any]) -> dict[str, float] | None:
    """The instruction's mean gain in the log-probability of each validation text's true label
    over the raw text's (``true_log_prob`` of each report), and that mean's standard error: a
    finer paired signal than the hits, recorded beside them (as a rule, a gain of more than one
    standard error, it was measured and not adopted: benchmarks/RESULTS.md). None when a report
    lacks them."""
    a, b = raw.get("true_log_prob"), instruction.get("true_log_prob")
    if not a or not b or len(a) != len(b):
        return None
    gains = [y - x for x, y in zip(a, b, strict=True)]
    mean = sum(gains) / len(gains)
    spread = sum((g - mean) ** 2 for g in gains) / max(len(gains) - 1, 1)
    return {
        "mean_gain": round(mean, 4),
        "standard_error": round((spread / len(gains)) ** 0.5, 4),
    }


def _candidates_dir(config: TrainConfig) -> tuple[Path, Path]:
    """The run's final folder and the folder its two candidates train in (beside it); with
    --force both are cleared, without it an existing run is refused as a single run would be."""
    final = Path(config.runs_dir) / run_name(config)
    folder = final.with_name(final.name + ".candidates")
    if final.exists() and not config.force:
        raise OutputExistsError(
            f"{final} holds a run already. Pass --force to replace it, or choose another --name."
        )
    if config.force:
        for path in (final, folder):
            if path.exists():
                shutil.rmtree(path)
    elif folder.exists() and not config.resume:
        raise OutputExistsError(
            f"{folder} holds an interrupted comparison. Pass --resume to continue it, or --force "
            "to start again."
        )
    return final, folder


def _train_candidate(
    config: TrainConfig, folder: Path, name: str, use_templates: bool, train_one: Callable
) -> Any:
    """One candidate's TrainResult (None: not the main process of a distributed run). With
    --resume a finished candidate is read back, an interrupted one continued."""
    if config.resume and (folder / name / RUN_FILE).is_file():
        return TrainResult.read_back(folder / name)
    candidate = replace(
        config,
        compare_templates=False,
        use_templates=use_templates,
        runs_dir=str(folder),
        name=name,
        force=False,
        resume=config.resume and (folder / f"{name}.partial").is_dir(),
    )
    result = train_one(candidate)
    return result if (folder / name / RUN_FILE).is_file() else None


def _summary(result: Any) -> dict[str, Any]:
    test = result.metrics.get("test")
    return {
        "validation": {k: result.metrics["validation"][k] for k in KEPT},
        "test": {k: test[k] for k in KEPT} if test else None,
        "train_seconds": round(result.train_seconds, 1),
    }


def train_compared(config: TrainConfig, train_one: Callable) -> Any:
    """Train both candidates, keep the better on validation as the run (its run.json gains
    ``templates_compared``), delete the other. Returns the kept run's TrainResult, with
    ``train_seconds`` the two runs together (what the comparison cost)."""
    final, folder = _candidates_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, use_templates in CANDIDATES:
        results[name] = _train_candidate(config, folder, name, use_templates, train_one)
        if results[name] is None:
            return None
    validation = {name: result.metrics["validation"] for name, result in results.items()}
    pairs = discordant(*(validation[name] for name, _ in CANDIDATES))
    kept = choose(validation)
    record = {
        "chosen": kept,
        "rule": RULE,
        "discordant": pairs,
        "log_prob": paired_log_prob(*(validation[name] for name, _ in CANDIDATES)),
        **{name: _summary(result) for name, result in results.items()},
    }
    run = load_run(folder / kept)
    # the kept candidate's config (its use_templates) under the run's own name and folder
    run.config.update(name=final.name, runs_dir=config.runs_dir)
    run.name = final.name
    run.extra["templates_compared"] = record
    run.save(folder / kept)
    (folder / kept).rename(final)
    shutil.rmtree(folder)
    return replace(
        results[kept],
        run_dir=final,
        metrics={**results[kept].metrics, "templates_compared": record},
        train_seconds=sum(result.train_seconds for result in results.values()),
    )
