"""TORCH-FREE runtime: onnxruntime + tokenizers + numpy, nothing else. ``load`` opens any bundle."""

from rec_edge.runtime.generator import Generator
from rec_edge.runtime.predictor import Prediction, Predictor, Ranked
from rec_edge.runtime.session import PROVIDERS, SessionConfig
from rec_edge.runtime.tasks import load

__all__ = ["PROVIDERS", "Generator", "Prediction", "Predictor", "Ranked", "SessionConfig", "load"]
