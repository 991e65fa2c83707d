"""TORCH-FREE runtime: onnxruntime + tokenizers + numpy, nothing else."""

from rec_edge.runtime.generator import Generator
from rec_edge.runtime.predictor import Prediction, Predictor, Ranked
from rec_edge.runtime.session import PROVIDERS, SessionConfig

__all__ = ["PROVIDERS", "Generator", "Prediction", "Predictor", "Ranked", "SessionConfig"]
