"""The engines a user might pick, each loaded inside its own worker process.

onnx      the rec-edge Predictor: text in, label out (template, tokenize, batch, run, softmax)
ort-raw   a bare onnxruntime session.run on pre-tokenized, padded inputs: our overhead's floor
torch     transformers eager PyTorch on the fp32 source model: tokenize + forward + argmax
optimum   optimum's ORTModelForSequenceClassification in a transformers pipeline, same ONNX file

torch and optimum are imported only inside their worker (they need the [train] extra).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rec_edge.bundle import load_bundle
from rec_edge.data.templates import TemplateSet

NEEDS = {
    "torch": ("torch", "transformers"),
    "optimum": ("optimum.onnxruntime", "transformers", "torch"),
}


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package missing, or blocked
        return False


def unavailable_reason(kind: str, bundle: Path) -> str | None:
    """Why an engine cannot run here (None: it can)."""
    missing = [m for m in NEEDS.get(kind, ()) if not _importable(m)]
    if missing:
        return f"engine '{kind}' skipped: {', '.join(missing)} not installed (pip install 'rec-edge[train]')"
    if kind in ("torch", "optimum") and not source_model_dir(bundle).is_dir():
        return f"engine '{kind}' skipped: the source model {source_model_dir(bundle)} of {bundle} is not on this machine"
    return None


def source_model_dir(bundle: Path) -> Path:
    return Path(load_bundle(bundle, verify=False).manifest.source.get("run", "")) / "model"


def optimum_folder(bundle: Path) -> Path:
    """A temporary folder as optimum wants it: config.json and tokenizer files beside the ONNX file."""
    folder = Path(tempfile.mkdtemp(prefix="rec-edge-optimum-"))
    for file in source_model_dir(bundle).iterdir():
        if file.suffix in (".json", ".txt") and file.is_file():
            shutil.copy(file, folder / file.name)
    shutil.copy(load_bundle(bundle, verify=False).model_path, folder / "model.onnx")
    return folder


class Engine:
    def __init__(self, bundle: Path, threads: int):
        self.bundle = load_bundle(bundle)
        self.threads = threads
        self.templates = TemplateSet.from_dict(self.bundle.manifest.templates)
        self.labels = self.bundle.manifest.labels
        self._render = self.templates.renderer(self.labels)
        self.batches: list[Any] = []

    def render(self, texts: Sequence[str]) -> list[str]:
        return [self._render(t) for t in texts]

    def prepare(self, batches: list[list[str]]) -> None:
        self.batches = batches

    def run(self, index: int) -> None:
        self.predict(self.batches[index])

    def predict(self, texts: list[str]) -> list[str]:
        raise NotImplementedError


class OnnxEngine(Engine):
    def __init__(self, bundle: Path, threads: int):
        super().__init__(bundle, threads)
        from rec_edge.runtime import Predictor

        self.predictor = Predictor.load(bundle, threads=threads, spinning=False)

    def predict(self, texts: list[str]) -> list[str]:
        return [p.label for p in self.predictor.predict(texts, batch_size=max(1, len(texts)))]


class OrtRawEngine(OnnxEngine):
    """Pre-tokenized and padded outside the timed call: session.run alone."""

    def prepare(self, batches: list[list[str]]) -> None:
        from rec_edge.runtime.tokenize import pad_batch

        p = self.predictor
        self.batches = []
        for texts in batches:
            feed = pad_batch(p.tokenizer.encode(p.render(texts)), p.tokenizer.pad_id)
            self.batches.append({name: feed[name] for name in p.input_names})

    def run(self, index: int) -> None:
        self.predictor.session.run([self.predictor.output_name], self.batches[index])


class TorchEngine(Engine):
    def __init__(self, bundle: Path, threads: int):
        super().__init__(bundle, threads)
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        torch.set_num_threads(threads)
        self.torch = torch
        model_dir = source_model_dir(bundle)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
        self.max_length = self.bundle.manifest.max_length

    def predict(self, texts: list[str]) -> list[str]:
        with self.torch.inference_mode():
            inputs = self.tokenizer(
                self.render(texts),
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            )
            best = self.model(**inputs).logits.argmax(-1).tolist()
        return [self.labels[i] for i in best]


class OptimumEngine(Engine):
    def __init__(self, bundle: Path, threads: int):
        super().__init__(bundle, threads)
        import onnxruntime as ort
        from optimum.onnxruntime import ORTModelForSequenceClassification
        from transformers import AutoTokenizer, pipeline

        self.folder = optimum_folder(bundle)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        model = ORTModelForSequenceClassification.from_pretrained(
            self.folder,
            file_name="model.onnx",
            session_options=options,
            provider="CPUExecutionProvider",
        )
        self.pipe = pipeline(
            "text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(self.folder)
        )
        self.max_length = self.bundle.manifest.max_length

    def predict(self, texts: list[str]) -> list[str]:
        out = self.pipe(
            self.render(texts), batch_size=len(texts), truncation=True, max_length=self.max_length
        )
        return [row["label"] for row in out]

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


ENGINES: dict[str, type[Engine]] = {
    "onnx": OnnxEngine,
    "ort-raw": OrtRawEngine,
    "torch": TorchEngine,
    "optimum": OptimumEngine,
}


def isolate_threads(threads: int) -> None:
    """Before any engine import: no spinning threads that would steal the next engine's cores."""
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
