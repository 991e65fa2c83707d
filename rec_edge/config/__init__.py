"""TORCH-FREE: the *Config dataclasses, stdlib only, validated in __post_init__, saved beside
every artifact: ``train`` (TrainConfig), ``export`` (ExportConfig, DecoderExportConfig),
``runtime`` (BenchConfig, ServeConfig, ScoreConfig, GenerationConfig). A field that is a
command-line option is declared once, with its help (``option``)."""

from rec_edge.config._base import config_to_dict, option, option_problems, template_fields
from rec_edge.config.export import (
    GENERATIVE_TASKS,
    WEIGHT_FORMATS,
    DecoderExportConfig,
    ExportConfig,
)
from rec_edge.config.runtime import (
    BENCH_ENGINES,
    SCORE_ENGINES,
    SCORE_FORMATS,
    BenchConfig,
    GenerationConfig,
    ScoreConfig,
    ServeConfig,
)
from rec_edge.config.train import FULL_FINE_TUNING_MAX_EXAMPLES, TRAIN_TASKS, TrainConfig

__all__ = [
    "BENCH_ENGINES",
    "FULL_FINE_TUNING_MAX_EXAMPLES",
    "GENERATIVE_TASKS",
    "SCORE_ENGINES",
    "SCORE_FORMATS",
    "TRAIN_TASKS",
    "WEIGHT_FORMATS",
    "BenchConfig",
    "DecoderExportConfig",
    "ExportConfig",
    "GenerationConfig",
    "ScoreConfig",
    "ServeConfig",
    "TrainConfig",
    "config_to_dict",
    "option",
    "option_problems",
    "template_fields",
]
