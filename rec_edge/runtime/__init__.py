"""TORCH-FREE runtime: onnxruntime + tokenizers + numpy, nothing else. ``load`` opens any bundle
as its task's runtime: a ``Classifier`` or a ``Ranker`` (encoder bundles, both ``Predictor``s), a
``Generator``, ``GenerativeClassifier`` or ``GenerativeRanker`` (decoder bundles)."""

from rec_edge.runtime.classifier import Classifier
from rec_edge.runtime.generative import GenerativeClassifier, GenerativeRanker
from rec_edge.runtime.generator import Generator
from rec_edge.runtime.outputs import Prediction
from rec_edge.runtime.predictor import Predictor
from rec_edge.runtime.ranker import Ranked, Ranker
from rec_edge.runtime.session import PROVIDERS, SessionConfig
from rec_edge.runtime.tasks import load

__all__ = [
    "PROVIDERS",
    "Classifier",
    "GenerativeClassifier",
    "GenerativeRanker",
    "Generator",
    "Prediction",
    "Predictor",
    "Ranked",
    "Ranker",
    "SessionConfig",
    "load",
]
