"""The accuracy gate: evaluate candidate graphs with the real runtime, keep the one closest to fp32.

A candidate passes when it loses at most ``max_drop`` points of the gate's metric against fp32
(accuracy: plus the noise of the set, ``allowed_drop``) and its scores do not depend on batching (batch 1 vs 32 vs a seeded mix of 1..64: no label changes,
probabilities within ``INVARIANCE_ATOL``), unless batch variance is allowed. Among those that
pass, the gate keeps the one whose probabilities stay closest to fp32's on the evaluation texts
(the smallest mean shift), ties broken by the candidates' fixed order. The metric decides pass or
fail, not the choice: on a few-shot validation set one text is a point or more, and a recipe that
changes one label in eight can score the same as fp32 by luck (benchmarks/RESULTS.md, "int8 on
long inputs"); the shift is measured on every text and needs no labels. Timings are measured and
reported (with their spread) but never decide, so the same run, data and flags give the same
bundle on a quiet or a loaded machine."""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.bundle import Bundle, Manifest
from rec_edge.convert.quantize import (
    GATE_CANDIDATES,
    RECIPES,
    VARIANT_CANDIDATES,
    Recipe,
    quantizable_nodes,
    quantize,
)
from rec_edge.metrics import classification_report, pair_report
from rec_edge.runtime import Predictor, SessionConfig
from rec_edge.runtime.outputs import sigmoid, softmax
from rec_edge.runtime.ranker import pair_scores

SENSITIVITY_STEPS = (2, 4, 8, 16)
GATE_RUN_LENGTH = 64  # the longest session run the gate asks for
INVARIANCE_ATOL = 1e-3  # largest probability change allowed between batchings of the same text
CHOICE_RULE = (
    "closest to fp32 (smallest mean probability shift on the evaluation texts) among the "
    "candidates within max_accuracy_drop {metric} points of fp32 (accuracy: plus one standard "
    "error of the paired difference, 100 sqrt(texts right under one of the two) / texts, unless "
    "max_accuracy_drop is 0) and batch-invariant (batch 1 vs "
    "32 vs a mix of 1..64: same labels, probabilities within {atol:g}); ties: the first in the "
    "order tried; timings reported, never deciding"
)


@dataclass
class Candidate:
    recipe: Recipe
    path: Path
    score: float  # the gate's metric: accuracy (classify) or AUC (rank)
    metrics: dict[str, float]  # the gate's metric first, then the others reported
    seconds_per_item: float
    size_bytes: int
    timing_spread: float = 0.0  # (slowest - fastest) / fastest of the timed passes
    batch_variance: float = 0.0  # largest probability change between batchings of one text
    label_changes: int = 0  # texts whose label changed between batchings
    drop_points: float = 0.0
    allowed_drop: float = 0.0  # points: max_drop, and for accuracy the noise of the set
    passed: bool = True
    note: str = ""
    # the evaluation texts' probabilities (classify: [texts, labels]; rank: P(yes) [pairs, 1])
    probabilities: np.ndarray = field(default_factory=lambda: np.zeros((0, 1)), repr=False)
    fp32_shift: float = 0.0  # mean over the evaluation texts of the largest change against fp32
    fp32_label_changes: int = 0  # evaluation texts whose label differs from fp32's

    @property
    def batch_invariant(self) -> bool:
        return self.label_changes == 0 and self.batch_variance <= INVARIANCE_ATOL

    @property
    def metric(self) -> str:
        return next(iter(self.metrics))

    def row(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe.name,
            "metric": self.metric,
            **{k: round(self.score if k == self.metric else v, 4) for k, v in self.metrics.items()},
            "drop_points": round(self.drop_points, 2),
            "allowed_drop": round(self.allowed_drop, 2),
            "fp32_shift": float(f"{self.fp32_shift:.3g}"),
            "fp32_label_changes": self.fp32_label_changes,
            "batch_variance": float(f"{self.batch_variance:.3g}"),
            "label_changes": self.label_changes,
            "batch_invariant": self.batch_invariant,
            "ms_per_item": round(self.seconds_per_item * 1e3, 3),
            "timing_spread": round(self.timing_spread, 3),
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
    invariance_texts: int = 64
    seed: int = 0

    @property
    def metric(self) -> str:
        return "auc" if self.candidates is not None else "accuracy"

    def report(self, predictor: Predictor) -> tuple[dict[str, float], np.ndarray]:
        """The gate's metric first (accuracy and macro-F1, or for rank AUC and accuracy), and the
        probabilities they come from: each text's label probabilities, or each pair's P(yes)."""
        if self.candidates is None:
            logits = predictor.logits(self.texts, batch_size=32)
            report = classification_report(self.label_ids, logits.argmax(-1), self.manifest.labels)
            return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}, softmax(logits)
        unique = list(dict.fromkeys([*self.texts, *self.candidates]))
        rows = dict(zip(unique, predictor.logits(unique, batch_size=32), strict=True))
        scores = pair_scores(
            np.stack([rows[t] for t in self.texts]), np.stack([rows[c] for c in self.candidates])
        )
        yes = self.manifest.labels.index("yes")
        report = pair_report([int(i == yes) for i in self.label_ids], scores)
        return {"auc": report["auc"], "accuracy": report["accuracy"]}, sigmoid(scores)[:, None]

    def batch_variance(self, predictor: Predictor) -> tuple[float, int]:
        """The largest probability change and the number of label changes of the first
        ``invariance_texts`` examples between batch 1, batch 32 and a seeded mix of batches of 1
        to 64 in shuffled order."""
        n = self.invariance_texts
        if self.candidates is None:
            texts = list(self.texts[:n])
        else:  # both towers' texts of the first pairs
            texts = list(dict.fromkeys([*self.texts[: n // 2], *self.candidates[: n // 2]]))
        order = list(range(len(texts)))
        random.Random(self.seed).shuffle(order)
        mixed = np.zeros((len(texts), 0), dtype=np.float32)
        start = 0
        rng = random.Random(self.seed + 1)
        while start < len(order):
            chunk = order[start : start + rng.randint(1, 64)]
            rows = predictor.logits([texts[i] for i in chunk], batch_size=64)
            if mixed.shape[1] == 0:
                mixed = np.zeros((len(texts), rows.shape[1]), dtype=np.float32)
            mixed[chunk] = rows
            start += len(chunk)
        batchings = [
            self._probabilities(texts, rows)
            for rows in (
                np.concatenate([predictor.logits([t], batch_size=1) for t in texts]),
                predictor.logits(texts, batch_size=32),
                mixed,
            )
        ]
        reference = batchings[0]
        variance = max(float(np.abs(p - reference).max()) for p in batchings[1:])
        labels = [_labels(p) for p in batchings]
        changes = int(sum(np.any([lab != labels[0] for lab in labels[1:]], axis=0)))
        return variance, changes

    def _probabilities(self, texts: list[str], rows: np.ndarray) -> np.ndarray:
        """Classify: the label probabilities; rank: P(yes) of each of the sample's pairs."""
        if self.candidates is None:
            return softmax(rows)
        index = {t: i for i, t in enumerate(texts)}
        pairs = [
            (index[t], index[c])
            for t, c in zip(self.texts, self.candidates, strict=True)
            if t in index and c in index
        ]
        users, items = zip(*pairs, strict=True) if pairs else ((), ())
        return sigmoid(pair_scores(rows[list(users)], rows[list(items)]))[:, None]

    def predictor(self, model: Path) -> Predictor:
        folder = model.parent
        if not (folder / self.manifest.tokenizer_file).exists():
            shutil.copy(self.tokenizer, folder / self.manifest.tokenizer_file)
        manifest = Manifest(**{**self.manifest.__dict__, "model_file": model.name})
        config = SessionConfig(graph_optimization_level="all")
        # runs of the batch sizes asked, never shorter: the invariance check must batch for real
        return Predictor(Bundle(folder, manifest), config, run_length=GATE_RUN_LENGTH)

    def evaluate(self, recipe: Recipe, model: Path, note: str = "") -> Candidate:
        predictor = self.predictor(model)
        report, probabilities = self.report(predictor)
        variance, changes = self.batch_variance(predictor)
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
            timing_spread=(max(timings) - min(timings)) / min(timings),
            batch_variance=variance,
            label_changes=changes,
            note=note,
            probabilities=probabilities,
        )


def _labels(probabilities: np.ndarray) -> np.ndarray:
    """The label of each row (rank: yes when P(yes) > 0.5)."""
    if probabilities.shape[1] == 1:
        return probabilities[:, 0] > 0.5
    return probabilities.argmax(-1)


def allowed_drop(
    reference: np.ndarray, probabilities: np.ndarray, label_ids: Sequence[int], max_drop: float
) -> float:
    """Accuracy points a candidate may lose against fp32 (``reference``) on these texts:
    ``max_drop`` plus one standard error of the paired difference, 100 sqrt(d) / n for the d of
    n texts that exactly one of the two gets right (McNemar's). On a few-shot validation set one
    text is several points: without it a recipe fails on one changed label, which the set cannot
    tell from chance. ``max_drop`` 0 asks for no loss at all: no allowance then."""
    n = len(label_ids)
    if max_drop == 0 or n == 0:
        return max_drop
    truth = np.asarray(label_ids)
    discordant = int(((_labels(reference) == truth) != (_labels(probabilities) == truth)).sum())
    return max_drop + 100 * float(np.sqrt(discordant)) / n


def fidelity(reference: np.ndarray, probabilities: np.ndarray) -> tuple[float, int]:
    """How far a candidate's probabilities are from fp32's on the same texts: the mean over texts
    of the largest change of one probability, and the number of texts whose label changed."""
    if len(reference) == 0:
        return 0.0, 0
    shift = float(np.abs(probabilities - reference).max(axis=1).mean())
    return shift, int((_labels(probabilities) != _labels(reference)).sum())


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
    allow_batch_variance: bool = False
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
        candidate.fp32_shift, candidate.fp32_label_changes = fidelity(
            self.fp32.probabilities, candidate.probabilities
        )
        candidate.allowed_drop = (
            allowed_drop(
                self.fp32.probabilities,
                candidate.probabilities,
                self.evaluator.label_ids,
                self.max_drop,
            )
            if candidate.metric == "accuracy"
            else self.max_drop
        )
        invariant = candidate.batch_invariant or self.allow_batch_variance
        candidate.passed = candidate.drop_points <= candidate.allowed_drop and invariant
        if not invariant:
            candidate.note = (
                f"{candidate.note}; " if candidate.note else ""
            ) + "batch-variant (--allow-batch-variance to accept)"
        self.log(
            f"  {recipe.name:<28} {candidate.metric} {candidate.score:.4f} "
            f"(drop {candidate.drop_points:+.2f} pts, allowed {candidate.allowed_drop:.2f}) "
            f"shift {candidate.fp32_shift:.3f}, {candidate.fp32_label_changes} labels changed, "
            f"batch variance {candidate.batch_variance:.1e} "
            f"{candidate.seconds_per_item * 1e3:.2f} ms/item (±{candidate.timing_spread:.0%}) "
            f"{candidate.size_bytes / 1e6:.1f} MB {'pass' if candidate.passed else 'FAIL'}"
        )
        self.tried.append(candidate)
        return candidate

    @property
    def candidates(self) -> tuple[str, ...]:
        return GATE_CANDIDATES + (VARIANT_CANDIDATES if self.allow_batch_variance else ())

    def run(self, sensitivity_texts: int = 64) -> Candidate | None:
        """Every candidate recipe; if none passes, the sensitivity pass; then ``choose``."""
        for name in self.candidates:
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
        base = RECIPES[GATE_CANDIDATES[0]]
        for k in SENSITIVITY_STEPS:
            if k >= len(nodes):
                break
            worst = [node for node, _ in self.ranking[:k]]
            if self.attempt(
                base.with_exclusions(worst), note=f"most sensitive {k} nodes in fp32"
            ).passed:
                break

    def choose(self) -> Candidate | None:
        """The passing quantized candidate closest to fp32 (the smallest shift); ties: the first
        tried (``CHOICE_RULE``). Timings never decide: they move with the machine's load."""
        passing = [c for c in self.tried if c.passed and c.recipe.kind != "fp32"]
        return min(passing, key=lambda c: c.fp32_shift) if passing else None  # min keeps the first

    @property
    def rule(self) -> str:
        return CHOICE_RULE.format(metric=self.fp32.metric, atol=INVARIANCE_ATOL)
