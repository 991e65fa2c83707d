"""Torch-free: ``BatchPredictor``, a classify bundle as a function of a columnar batch (a dict of
numpy arrays, as Ray Data gives, or a pandas DataFrame, as Spark and Ray give), for pipelines
whose reading and writing belong to the engine."""

from __future__ import annotations

from typing import Any

import numpy as np

from rec_edge.errors import ConfigError, DataError
from rec_edge.runtime import load
from rec_edge.runtime.outputs import softmax
from rec_edge.tasks import task_spec


class BatchPredictor:
    """``predictor(batch)``: the batch with ``<prefix>label`` and ``<prefix>score`` added (and
    ``<prefix>score_<label>`` per label with ``all_scores``). One Predictor per instance."""

    def __init__(
        self,
        bundle: str,
        text_field: str = "text",
        all_scores: bool = False,
        prefix: str = "",
        threads: int | None = None,
        batch_size: int = 32,
    ):
        self.predictor = load(bundle, threads=threads)
        if not task_spec(self.predictor.manifest.task).labelled:
            raise ConfigError(
                f"{bundle} is a {self.predictor.manifest.task!r} bundle; BatchPredictor scores "
                "classify bundles (rank ones: rec_edge.score() or Predictor.rank_batch; generate ones: "
                "Generator.generate)."
            )
        self.text_field = text_field
        self.all_scores = all_scores
        self.prefix = prefix
        self.batch_size = batch_size

    def columns(self, texts: Any) -> dict[str, np.ndarray]:
        """The output columns for a column of texts."""
        values = list(texts)
        bad = [i for i, t in enumerate(values) if not isinstance(t, str)]
        if bad:
            raise DataError(
                f"column {self.text_field!r}: row {bad[0]} is "
                f"{type(values[bad[0]]).__name__}, not a string ({len(bad)} such rows)"
            )
        probabilities = softmax(self.predictor.logits(values, self.batch_size))
        best = probabilities.argmax(axis=-1)
        labels = np.asarray(self.predictor.labels, dtype=object)
        out = {
            f"{self.prefix}label": labels[best],
            f"{self.prefix}score": probabilities[np.arange(len(best)), best].astype(np.float64),
        }
        if self.all_scores:
            for j, label in enumerate(self.predictor.labels):
                out[f"{self.prefix}score_{label}"] = probabilities[:, j].astype(np.float64)
        return out

    def __call__(self, batch: Any) -> Any:
        if self.text_field not in batch:
            raise DataError(
                f"the batch has no column {self.text_field!r} (columns: {', '.join(batch)}); "
                "pass text_field="
            )
        columns = self.columns(batch[self.text_field])
        if isinstance(batch, dict):
            return {**batch, **columns}
        return batch.assign(**columns)  # a pandas DataFrame
