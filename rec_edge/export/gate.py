"""The accuracy gate: evaluate candidate graphs with the real runtime, keep the fastest that passes."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.bundle import Bundle, Manifest
from rec_edge.export.quantize import GATE_CANDIDATES, RECIPES, Recipe, quantizable_nodes, quantize
from rec_edge.metrics import classification_report, pair_report
from rec_edge.runtime import Predictor, SessionConfig
from rec_edge.runtime.predictor import pair_scores

SENSITIVITY_STEPS = (2, 4, 8, 16)


@dataclass
class Candidate:
    recipe: Recipe
    path: Path
    score: float  # the gate's metric: accuracy (classify) or AUC (rank)
    metrics: dict[str, float]  # the gate's metric first, then the others reported
    seconds_per_item: float
    size_bytes: int
    drop_points: float = 0.0
    passed: bool = True
    note: str = ""

    @property
    def metric(self) -> str:
        return next(iter(self.metrics))

    def row(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe.name,
            "metric": self.metric,
            **{k: round(self.score if k == self.metric else v, 4) for k, v in self.metrics.items()},
            "drop_points": round(self.drop_points, 2),
            "ms_per_item": round(self.seconds_per_item * 1e3, 3),
            "size_mb": round(self.size_bytes / 1e6, 2),
            "passed": self.passed,
            "note": self.note,
            "options": self.recipe.to_dict(),
        }


@dataclass
class Evaluator:
    """Evaluates a graph through the real Predictor on the gate's labelled texts."""

    work: Path
    manifest: Manifest
    tokenizer: Path
    texts: Sequence[str]
    label_ids: Sequence[int]
    candidates: Sequence[str] | None = None  # rank: the item scored against each text
    timing_texts: int = 128
    cache: dict[str, Candidate] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        return "auc" if self.candidates is not None else "accuracy"

    def report(self, predictor: Predictor) -> dict[str, float]:
        """The gate's metric first: accuracy and macro-F1, or for rank AUC and accuracy."""
        if self.candidates is None:
            logits = predictor.logits(self.texts, batch_size=32)
            report = classification_report(self.label_ids, logits.argmax(-1), self.manifest.labels)
            return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}
        unique = list(dict.fromkeys([*self.texts, *self.candidates]))
        rows = dict(zip(unique, predictor.logits(unique, batch_size=32), strict=True))
        scores = pair_scores(
            np.stack([rows[t] for t in self.texts]), np.stack([rows[c] for c in self.candidates])
        )
        yes = self.manifest.labels.index("yes")
        report = pair_report([int(i == yes) for i in self.label_ids], scores)
        return {"auc": report["auc"], "accuracy": report["accuracy"]}

    def predictor(self, model: Path) -> Predictor:
        folder = model.parent
        if not (folder / self.manifest.tokenizer_file).exists():
            shutil.copy(self.tokenizer, folder / self.manifest.tokenizer_file)
        manifest = Manifest(**{**self.manifest.__dict__, "model_file": model.name})
        return Predictor(Bundle(folder, manifest), SessionConfig(graph_optimization_level="all"))

    def evaluate(self, recipe: Recipe, model: Path, note: str = "") -> Candidate:
        predictor = self.predictor(model)
        report = self.report(predictor)
        sample = list(self.texts[: self.timing_texts])
        timings = []
        for _ in range(3):  # min of 3: the least disturbed pass on a shared machine
            start = time.perf_counter()
            predictor.logits(sample, batch_size=32)
            timings.append((time.perf_counter() - start) / len(sample))
        return Candidate(
            recipe,
            model,
            report[self.metric],
            report,
            min(timings),
            model.stat().st_size,
            note=note,
        )


def sensitivity(
    fp32_logits: np.ndarray,
    evaluate_logits: Callable[[list[str]], np.ndarray],
    nodes: Sequence[str],
) -> list[tuple[str, float]]:
    """Per node: the logits' mean squared error when only that node is quantized, worst first."""
    scores = []
    for node in nodes:
        error = float(np.mean((evaluate_logits([node]) - fp32_logits) ** 2))
        scores.append((node, error))
    return sorted(scores, key=lambda item: -item[1])


@dataclass
class Gate:
    """Quantizes the fused graph by recipes, evaluates each against fp32, and keeps the table."""

    evaluator: Evaluator
    fused: Path
    unfused: Path  # static (QDQ) quantization reads the plain graph
    fp32: Candidate
    max_drop: float  # points of the gate's metric (accuracy; AUC for rank)
    calibration: list[dict[str, np.ndarray]]
    log: Callable[[str], None] = print
    tried: list[Candidate] = field(default_factory=list)
    ranking: list[tuple[str, float]] = field(default_factory=list)  # sensitivity, worst first

    def __post_init__(self) -> None:
        self.tried = [self.fp32]

    def attempt(self, recipe: Recipe, note: str = "") -> Candidate:
        path = self.evaluator.work / recipe.name / "model.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        quantize(self.fused, path, recipe, self.calibration, unfused_src=self.unfused)
        candidate = self.evaluator.evaluate(recipe, path, note)
        candidate.drop_points = (self.fp32.score - candidate.score) * 100
        candidate.passed = candidate.drop_points <= self.max_drop
        self.log(
            f"  {recipe.name:<28} {candidate.metric} {candidate.score:.4f} (drop {candidate.drop_points:+.2f} pts) "
            f"{candidate.seconds_per_item * 1e3:.2f} ms/item {candidate.size_bytes / 1e6:.1f} MB "
            f"{'pass' if candidate.passed else 'FAIL'}"
        )
        self.tried.append(candidate)
        return candidate

    def run(
        self, names: Sequence[str] = GATE_CANDIDATES, sensitivity_texts: int = 64
    ) -> Candidate | None:
        """Every recipe in ``names``; if none passes, the sensitivity pass; the fastest that passed."""
        for name in names:
            self.attempt(RECIPES[name])
        if not any(c.passed for c in self.tried[1:]):
            self._sensitivity_pass(sensitivity_texts)
        return self.choose()

    def _sensitivity_pass(self, sensitivity_texts: int) -> None:
        nodes = quantizable_nodes(self.fused)
        self.log(f"  no recipe passed: sensitivity pass over {len(nodes)} nodes")
        sample = list(self.evaluator.texts[:sensitivity_texts])
        reference = self.evaluator.predictor(self.fp32.path).logits(sample)
        probe = self.evaluator.work / "probe" / "model.onnx"
        probe.parent.mkdir(parents=True, exist_ok=True)

        def only(nodes_in_int8: list[str]) -> np.ndarray:
            keep = tuple(n for n in nodes if n not in nodes_in_int8)
            quantize(self.fused, probe, Recipe("probe", "dynamic", per_channel=True, exclude=keep))
            return self.evaluator.predictor(probe).logits(sample)

        self.ranking = sensitivity(reference, only, nodes)
        base = RECIPES["dynamic-per-channel"]
        for k in SENSITIVITY_STEPS:
            if k >= len(nodes):
                break
            worst = [node for node, _ in self.ranking[:k]]
            if self.attempt(
                base.with_exclusions(worst), note=f"most sensitive {k} nodes in fp32"
            ).passed:
                break

    def choose(self) -> Candidate | None:
        """The fastest passing quantized candidate (ties: the smaller accuracy drop)."""
        passing = [c for c in self.tried if c.passed and c.recipe.kind != "fp32"]
        return (
            min(passing, key=lambda c: (round(c.seconds_per_item, 5), c.drop_points))
            if passing
            else None
        )
