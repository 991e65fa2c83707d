"""Torch-free: one part of a scoring job, read, checked, scored and committed: the same code on
every engine (the local loop, a Ray actor, a Spark Python worker), so parts are the same files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.errors import DataError
from rec_edge.runtime import Classifier, Generator, Ranker, load
from rec_edge.runtime.outputs import softmax
from rec_edge.runtime.requests import RankRequest
from rec_edge.scoring.output import REJECTS, STATS, encode_rows, part_name, write_atomic
from rec_edge.scoring.parts import Part, Row, read_part

# texts handed to the Predictor at once: it sorts them by length into batches of batch_size
WINDOW = 2048


@dataclass(frozen=True)
class Job:
    """What every worker needs to score any part (JSON: it travels to Ray actors and Spark
    workers, and is saved in the output folder)."""

    bundle: str
    out: str
    task: str  # classify | rank
    out_format: str
    on_error: str
    batch_size: int
    threads: int | None
    text_field: str = "text"
    all_scores: bool = False
    embed: bool = False  # classify: each row's sentence vector as well (Predictor.embed)
    user_field: str = "user"
    prefix: str = ""  # classify: before the output fields' names (label, score, scores)
    candidates: list[str] | None = None  # rank: None: the bundle's catalog
    k: int = 10

    @property
    def output_fields(self) -> list[str]:
        return SCORED_TASKS[self.task].output_fields(self)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Job:
        return cls(**json.loads(text))


@dataclass
class PartStats:
    index: int
    rows: int = 0  # records read
    written: int = 0  # output rows (rank: up to k per user)
    rejected: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)  # on_error fail: why nothing was written

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> PartStats:
        return cls(**json.loads(text))


class PartScorer:
    """A Predictor and a job; ``run(part)`` scores a part and commits its files."""

    def __init__(self, job: Job, predictor: Classifier | Ranker | Generator | None = None):
        self.job = job
        self.rows = SCORED_TASKS[job.task](job, predictor or load(job.bundle, threads=job.threads))

    def run(self, part: Part, on_rows: Callable[[int], None] | None = None) -> PartStats:
        began = time.perf_counter()
        rows = read_part(part)
        checked = [(line, row, self._problem(row)) for line, row in rows]
        bad = [(line, row, problem) for line, row, problem in checked if problem]
        stats = PartStats(part.index, rows=len(rows), rejected=len(bad))
        if bad and self.job.on_error == "fail":
            stats.problems = [f"{part.path}:{line}: {problem}" for line, _, problem in bad]
            return stats
        good = [row for _, row, problem in checked if not problem]
        out = self._score(good, on_rows)  # type: ignore[arg-type]
        folder = Path(self.job.out)
        if bad:
            rejects = [
                {"file": part.path, "line": line, "error": problem, "row": row}
                for line, row, problem in bad
            ]
            write_atomic(
                folder / REJECTS / part_name(part.index, "jsonl"), encode_rows(rejects, "jsonl")
            )
        stats.written = len(out)
        stats.seconds = time.perf_counter() - began
        # the part file last: its presence is what says the part is done
        write_atomic(folder / STATS / f"{part_name(part.index, 'json')}", stats.to_json().encode())
        write_atomic(
            folder / part_name(part.index, self.job.out_format),
            encode_rows(out, self.job.out_format),
        )
        return stats

    def _problem(self, row: Row) -> str | None:
        """Why a row cannot be scored, or None."""
        return row if isinstance(row, str) else self.rows.problem(row)

    def _score(
        self, rows: list[dict[str, Any]], on_rows: Callable[[int], None] | None
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for start in range(0, len(rows), WINDOW):
            window = rows[start : start + WINDOW]
            out += self.rows.score(window)
            if on_rows is not None:
                on_rows(len(window))
        return out


class ClassifyRows:
    """classify: a row holds a text; out comes the row with the label, its probability (every
    label's with ``all_scores``, the sentence vector with ``embed``), under ``prefix``."""

    needs_candidates = False

    def __init__(self, job: Job, predictor: Any):
        self.job, self.predictor = job, predictor

    @staticmethod
    def output_fields(job: Job) -> list[str]:
        names = ("label", "score", "scores", *(("embedding",) if job.embed else ()))
        return [job.prefix + name for name in names]

    @staticmethod
    def fields_problem(job: Job, fields: list[str]) -> str | None:
        """What is wrong with the input's fields as a whole (read off its first row)."""
        taken = [name for name in job.output_fields if name in fields]
        if taken:
            return (
                f"the input has a field {taken[0]!r}, which the prediction would overwrite; pass "
                "--prefix (e.g. --prefix pred_) to name the outputs pred_label, pred_score."
            )
        if job.text_field not in fields:
            return f"no field {job.text_field!r} (fields: {', '.join(fields)}); pass --text-field NAME."
        return None

    def problem(self, row: dict[str, Any]) -> str | None:
        taken = [name for name in self.job.output_fields if name in row]
        if taken:
            return f"field {taken[0]!r} would be overwritten by the prediction; pass --prefix"
        return _text_problem(row, self.job.text_field)

    def score(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        field_ = self.job.text_field
        texts = [row[field_] if isinstance(row[field_], str) else str(row[field_]) for row in rows]
        vectors: list[Any] = []
        if self.job.embed:  # one pass gives both (a Classifier with the output: resolve_job)
            logits, embedded = self.predictor.logits_and_embeddings(texts, self.job.batch_size)
            vectors = embedded.tolist()
        else:
            logits = self.predictor.logits(texts, self.job.batch_size)
        probabilities = softmax(logits)
        best = probabilities.argmax(axis=-1)
        labels = self.predictor.labels
        name_label, name_score, name_scores = self.job.output_fields[:3]
        out = []
        for i, (row, b, p) in enumerate(
            zip(rows, best.tolist(), probabilities.tolist(), strict=True)
        ):
            scored = {**row, name_label: labels[b], name_score: p[b]}
            if self.job.all_scores:
                scored[name_scores] = dict(zip(labels, p, strict=True))
            if vectors:
                scored[self.job.output_fields[3]] = vectors[i]
            out.append(scored)
        return out


class RankRows:
    """rank: a row holds a user (``user_field``) and the titles they ``liked`` and
    ``disliked``; out come the user's ``k`` best candidates (``candidates``, or the bundle's
    catalog, less the titles of the history), a row each."""

    needs_candidates = True  # from --candidates or the bundle's item index

    def __init__(self, job: Job, predictor: Any):
        self.job, self.predictor = job, predictor
        self.candidates = job.candidates if job.candidates is not None else predictor.catalog

    @staticmethod
    def output_fields(job: Job) -> list[str]:
        return [job.user_field, "rank", "item", "score", "enjoy"]

    @staticmethod
    def fields_problem(job: Job, fields: list[str]) -> str | None:
        if job.user_field not in fields:
            return f"no field {job.user_field!r} (fields: {', '.join(fields)}); pass --user-field NAME."
        return None

    def problem(self, row: dict[str, Any]) -> str | None:
        if row.get(self.job.user_field) is None:
            return f"missing field {self.job.user_field!r} (fields: {', '.join(row) or 'none'})"
        for key in ("liked", "disliked"):
            value = row.get(key)
            if value is not None and (
                not isinstance(value, list) or not all(isinstance(t, str) for t in value)
            ):
                return f"field {key!r} must be a list of titles, got {type(value).__name__}"
        return None

    def score(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        requests = []
        for row in rows:
            liked, disliked = list(row.get("liked") or []), list(row.get("disliked") or [])
            seen = set(liked) | set(disliked)
            requests.append(
                RankRequest(
                    liked, disliked, [c for c in self.candidates if c not in seen], self.job.k
                )
            )
        answers = self.predictor.rank_batch(requests, self.job.batch_size)
        user = self.job.user_field
        return [
            {user: row[user], "rank": r, "item": a.item, "score": a.score, "enjoy": a.enjoy}
            for row, ranked in zip(rows, answers, strict=True)
            for r, a in enumerate(ranked, start=1)
        ]


# a bundle's task -> how its rows are checked and scored: the one place scoring branches on it
SCORED_TASKS: dict[str, type[ClassifyRows] | type[RankRows]] = {
    "classify": ClassifyRows,
    "rank": RankRows,
}


def _text_problem(row: dict[str, Any], name: str) -> str | None:
    value = row.get(name)
    if value is None:
        return f"missing field {name!r} (fields: {', '.join(row) or 'none'})"
    if isinstance(value, bool) or not isinstance(value, (str, int, float, np.integer, np.floating)):
        return f"field {name!r} must be a string, got {type(value).__name__}"
    return None


def raise_problems(stats: PartStats) -> None:
    if stats.problems:
        raise DataError(
            stats.problems
            + ["Fix these rows, or pass --on-error skip to write them to rejects/ and go on."]
        )
