"""rec-edge: instruction-tuned small transformers, exported to ONNX, served torch-free.

Importing this package never imports torch: the build-side functions (``train``, ``export``)
load their dependencies when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rec_edge._version import __version__
from rec_edge.errors import (
    AccuracyGateError,
    BundleError,
    ConfigError,
    DataError,
    ExportError,
    MissingDependencyError,
    ModelNotFoundError,
    OutputExistsError,
    ProviderError,
    RecEdgeError,
    RunError,
)

if TYPE_CHECKING:
    from rec_edge.config import ExportConfig, ScoreConfig, TrainConfig
    from rec_edge.export import ExportResult
    from rec_edge.scoring import ScoreResult
    from rec_edge.train import TrainResult

__all__ = [
    "AccuracyGateError",
    "BundleError",
    "Classifier",
    "ConfigError",
    "DataError",
    "DecoderExportConfig",
    "ExportConfig",
    "ExportError",
    "GenerationConfig",
    "GenerativeClassifier",
    "GenerativeRanker",
    "Generator",
    "MissingDependencyError",
    "ModelNotFoundError",
    "OutputExistsError",
    "Predictor",
    "ProviderError",
    "Ranker",
    "RecEdgeError",
    "RunError",
    "ScoreConfig",
    "TrainConfig",
    "__version__",
    "export",
    "load",
    "load_bundle",
    "ray_batch_predictor",
    "score",
    "spark_predict_udf",
    "train",
]


def train(config: TrainConfig) -> TrainResult:
    """Fine-tune a model with LoRA through instruction templates (needs the [train] extra)."""
    from rec_edge.train import train as _train

    return _train(config)


def export(config: ExportConfig) -> ExportResult:
    """Merge, export to ONNX, optimize, quantize and write a bundle (needs the [train] extra)."""
    from rec_edge.export import export as _export

    return _export(config)


def score(config: ScoreConfig) -> ScoreResult:
    """Score a file or folder of any size with a bundle, locally, on Ray or on Spark (torch-free;
    Ray and Spark need the [ray] and [spark] extras)."""
    from rec_edge.scoring import score as _score

    return _score(config)


RUNTIME_NAMES = (
    "Predictor",
    "Classifier",
    "Ranker",
    "Generator",
    "GenerativeClassifier",
    "GenerativeRanker",
    "load",
)


def __getattr__(name: str) -> Any:
    # Lazy so that `import rec_edge` stays cheap; none of these import torch.
    if name in RUNTIME_NAMES:
        from rec_edge import runtime

        return getattr(runtime, name)
    if name == "load_bundle":
        from rec_edge.bundle import load_bundle

        return load_bundle
    if name in ("ray_batch_predictor", "spark_predict_udf"):
        from rec_edge import scoring

        return getattr(scoring, name)
    if name in (
        "TrainConfig",
        "ExportConfig",
        "ScoreConfig",
        "DecoderExportConfig",
        "GenerationConfig",
    ):
        from rec_edge import config

        return getattr(config, name)
    raise AttributeError(f"module 'rec_edge' has no attribute {name!r}")
