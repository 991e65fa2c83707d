"""TORCH-FREE classification at run time: ``Classifier``, a classify bundle's ``Predictor``
(texts in, one label and every label's probability out)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rec_edge.runtime.outputs import Prediction, label_predictions, softmax
from rec_edge.runtime.predictor import Predictor


class Classifier(Predictor, task="classify"):
    """A classify bundle: ``predict``, ``predict_proba``, and ``embed`` (the sentence vector the
    label head reads). Loaded by ``Predictor.load`` (or ``rec_edge.load``) for a classify
    bundle. Safe to call from several threads at once."""

    def _renderer(self) -> Callable[[str], str]:
        return self.templates.renderer(self.manifest.labels)

    def _output_problems(self, width: Any) -> list[str]:
        labels = len(self.manifest.labels)
        if isinstance(width, int) and width != labels:
            return [f"the graph gives {width} scores for {labels} labels"]
        return []

    def predict_proba(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Probabilities, float32 [len(texts), len(labels)], columns in the order of ``labels``."""
        return softmax(self.logits(texts, batch_size))

    def predict(self, texts: Sequence[str], batch_size: int = 32) -> list[Prediction]:
        """One Prediction (label, its probability, every label's probability) per text."""
        return self.predictions(self.logits(texts, batch_size))

    def predictions(self, logits: np.ndarray) -> list[Prediction]:
        """One Prediction per row of ``logits`` (from ``logits``: servers batch the texts of
        several requests into one run and answer each from its own rows)."""
        return label_predictions(self.manifest.labels, logits)
