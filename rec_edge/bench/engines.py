"""The engines a user might pick, each loaded inside its own worker process.

onnx      the rec-edge Predictor: text in, label out (template, tokenize, batch, run, softmax)
ort-raw   a bare onnxruntime session.run on pre-tokenized, padded inputs: our overhead's floor
torch     transformers eager PyTorch on the fp32 source model: tokenize + forward + argmax
optimum   optimum's ORTModelForSequenceClassification in a transformers pipeline, same ONNX file

With a rank bundle each text is a JSON request (liked, disliked, candidates) and a call ranks
every candidate of its requests: the user's text and the candidates are encoded (two runs, no
item cache) and scored; predict() returns each request's top item.

torch and optimum are imported only inside their worker (they need the [train] extra).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.bundle import load_bundle
from rec_edge.data.templates import TemplateSet
from rec_edge.runtime.collab import (
    CollaborativeTables,
    add_tables,
    history_similarity,
    load_tables,
    rank_values,
)
from rec_edge.runtime.ranker import ITEM_BATCH, pair_scores
from rec_edge.runtime.requests import RankRequest, parse_rank_request

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
    manifest = load_bundle(bundle, verify=False).manifest
    shutil.copy(bundle / manifest.model_file, folder / "model.onnx")
    if manifest.task == "classify":  # a description head's encoder config names no labels
        config = json.loads((folder / "config.json").read_text())
        config["id2label"] = dict(enumerate(manifest.labels))
        config["label2id"] = {label: i for i, label in enumerate(manifest.labels)}
        (folder / "config.json").write_text(json.dumps(config))
    return folder


class Engine:
    def __init__(self, bundle: Path, threads: int):
        self.bundle = load_bundle(bundle)
        self.threads = threads
        self.templates = TemplateSet.from_dict(self.bundle.manifest.templates)
        self.labels = self.bundle.manifest.labels
        self.rank = self.bundle.manifest.task == "rank"
        self.collaborative: CollaborativeTables | None = None
        if self.rank:
            self._user_text = self.templates.preference_renderer()
            if self.bundle.manifest.items_file:  # rank as the bundle does: with its tables
                self.collaborative = load_tables(self.bundle.path / self.bundle.manifest.items_file)
        else:
            self._render = self.templates.renderer(self.labels)
        self.batches: list[Any] = []

    @property
    def stacked(self) -> bool:
        """A rank bundle with a stack: its requests also encode the liked history titles."""
        return self.collaborative is not None and self.collaborative.stack is not None

    def render(self, texts: Sequence[str]) -> list[str]:
        return [self._render(t) for t in texts]

    def prepare(self, batches: list[list[str]]) -> None:
        self.batches = batches

    def run(self, index: int) -> None:
        self.predict(self.batches[index])

    def predict(self, texts: list[str]) -> list[str]:
        if not self.rank:
            return self.classify(texts)
        return [self.top_item(parse_rank_request(text)) for text in texts]

    def classify(self, texts: list[str]) -> list[str]:
        raise NotImplementedError

    def top_item(self, request: RankRequest) -> str:
        n = len(request.candidates)
        history = list(request.liked) if self.stacked else []  # the stack's similarity reads them
        outputs = self.outputs(
            [self._user_text(request.liked, request.disliked), *request.candidates, *history]
        )
        similarity = history_similarity(outputs[1 + n :], outputs[1 : 1 + n]) if history else None
        like, exposure = add_tables(
            self.collaborative,
            request.liked,
            request.disliked,
            request.candidates,
            pair_scores(outputs[0], outputs[1 : 1 + n]),
            similarity,
        )
        return request.candidates[int(np.argmax(rank_values(like, exposure)))]

    def outputs(self, texts: list[str]) -> np.ndarray:
        """Rank bundles: the raw output rows of the user's text (first) and the candidates."""
        raise NotImplementedError


class OnnxEngine(Engine):
    def __init__(self, bundle: Path, threads: int):
        super().__init__(bundle, threads)
        from rec_edge.runtime import Predictor

        # no item index or cache: every engine encodes every candidate, as on a first request
        self.predictor: Any = Predictor.load(
            bundle, threads=threads, spinning=False, item_cache=0, catalog=False
        )

    def classify(self, texts: list[str]) -> list[str]:
        return [p.label for p in self.predictor.predict(texts, batch_size=max(1, len(texts)))]

    def top_item(self, request: RankRequest) -> str:
        return self.predictor.rank(request.history, request.candidates, k=1)[0].item


class OrtRawEngine(OnnxEngine):
    """Pre-tokenized and padded outside the timed call: session.run alone."""

    def prepare(self, batches: list[list[str]]) -> None:
        from rec_edge.runtime.tokenize import pad_batch

        p = self.predictor

        def feed(encodings: list[Any]) -> dict[str, Any]:
            batch = pad_batch(encodings, p.tokenizer.pad_id)
            return {name: batch[name] for name in p.input_names}

        self.batches = []
        for texts in batches:
            if not self.rank:
                self.batches.append([feed(p.tokenizer.encode(p.render(texts)))])
                continue
            feeds = []
            for text in texts:  # per request: the user's text, then its candidates as Predictor
                r = parse_rank_request(text)  # batches them: sorted by length, ITEM_BATCH a run
                feeds.append(feed(p.tokenizer.encode([self._user_text(r.liked, r.disliked)])))
                texts_ = [*r.candidates, *(r.liked if self.stacked else [])]
                items = sorted(p.tokenizer.encode(texts_), key=lambda e: len(e.ids))
                feeds += [feed(items[i : i + ITEM_BATCH]) for i in range(0, len(items), ITEM_BATCH)]
            self.batches.append(feeds)

    def run(self, index: int) -> None:
        for feed in self.batches[index]:
            self.predictor.session.run([self.predictor.output_name], feed)


class TorchEngine(Engine):
    def __init__(self, bundle: Path, threads: int):
        super().__init__(bundle, threads)
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        torch.set_num_threads(threads)
        self.torch = torch
        model_dir = source_model_dir(bundle)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.max_length = self.bundle.manifest.max_length
        head = self.bundle.manifest.source.get("head", {})
        if head.get("kind") == "descriptions":  # the encoder and the run's head, as trained
            from transformers import AutoModel

            from rec_edge.modeling.heads import LabelHead, description_classifier

            self.model = description_classifier(
                AutoModel.from_pretrained(model_dir),
                LabelHead.load(model_dir.parent / head["file"]),
            ).eval()
        else:
            self.model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()

    def _logits(self, texts: list[str]) -> Any:
        with self.torch.inference_mode():
            inputs = self.tokenizer(
                texts,
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            )
            return self.model(**inputs)["logits"]

    def classify(self, texts: list[str]) -> list[str]:
        return [self.labels[i] for i in self._logits(self.render(texts)).argmax(-1).tolist()]

    def outputs(self, texts: list[str]) -> np.ndarray:
        # as a user of PyTorch would: the user's text alone, then the candidates in one batch
        user, items = self._logits(texts[:1]), self._logits(texts[1:])
        return self.torch.cat([user, items]).float().numpy()


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
        self.width = model.config.num_labels

    def classify(self, texts: list[str]) -> list[str]:
        out = self.pipe(
            self.render(texts), batch_size=len(texts), truncation=True, max_length=self.max_length
        )
        return [row["label"] for row in out]

    def outputs(self, texts: list[str]) -> np.ndarray:
        # the pipeline's raw scores (no softmax), every output, put back in the model's order
        index: dict[str, int] = dict(self.pipe.model.config.label2id or {})
        rows = []
        for batch in (texts[:1], texts[1:]):
            out: Any = self.pipe(
                batch,
                batch_size=len(batch),
                truncation=True,
                max_length=self.max_length,
                function_to_apply="none",
                top_k=None,
            )
            for scores in out:
                row = np.empty(self.width, dtype=np.float32)
                for entry in scores:
                    row[index[entry["label"]]] = entry["score"]
                rows.append(row)
        return np.stack(rows)

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
