"""TORCH-FREE: the one place that maps a bundle to its runtime object.

``load(path)`` reads the manifest and returns what the bundle is: a ``Predictor`` for an encoder
bundle (classify: ``predict``; rank: ``rank``), a ``Generator`` for a decoder bundle (generate;
classify bundles also ``predict``). Both answer a classify bundle's ``logits``,
``predictions``, ``predict`` and ``predict_proba`` alike, so ``predict``, ``score`` and
``serve`` take either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rec_edge.bundle import load_bundle
from rec_edge.runtime.generator import Generator
from rec_edge.runtime.predictor import Predictor

RUNTIMES: dict[str, type[Predictor] | type[Generator]] = {
    "encoder": Predictor,
    "decoder": Generator,
}
ENCODER_ONLY = ("item_cache", "catalog", "run_length")  # a decoder runs one text a run


def load(
    path: str | Path, provider: str = "cpu", threads: int | None = None, **options: Any
) -> Any:
    """The runtime object for the bundle at ``path`` (checked as its class's ``load`` checks it):
    a ``Predictor`` (encoder bundles) or a ``Generator`` (decoder bundles). ``options`` are
    those of ``Predictor.load``; a decoder bundle ignores the encoder-only ``item_cache``,
    ``catalog`` and ``run_length``."""
    family = load_bundle(path, verify=False).manifest.family  # its files: checked by the runtime
    runtime = RUNTIMES[family]
    if runtime is Generator:
        options = {k: v for k, v in options.items() if k not in ENCODER_ONLY}
    return runtime.load(path, provider, threads, **options)
