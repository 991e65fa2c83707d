"""The engines a user might pick, each loaded inside its own worker process.

onnx      the rec-edge Predictor: text in, label out (template, tokenize, batch, run, softmax)
ort-raw   a bare onnxruntime session.run on pre-tokenized, padded inputs: our overhead's floor
torch     transformers eager PyTorch on the fp32 source model: tokenize + forward + argmax
optimum   optimum's ORTModelForSequenceClassification in a transformers pipeline, same ONNX file
fastembed fastembed's TextEmbedding on the same ONNX file (its output: the logits), argmax
st-onnx   sentence-transformers' ONNX backend on the fp32 source encoder (the ONNX file it
          exports itself), then the run's label head in numpy

The "whole list" workload times each engine on every text in one call, as its library takes a
list (``Engine.whole``): rec-edge's ``predict(texts)``, fastembed's ``embed(texts)``,
sentence-transformers' ``encode(texts)`` and optimum's pipeline with their default batch sizes;
PyTorch and bare onnxruntime in length-sorted runs of 32 (the best fixed run on BANKING77).

With a rank bundle each text is a JSON request (liked, disliked, candidates) and a call ranks
every candidate of its requests: the user's text and the candidates are encoded (two runs, no
item cache) and scored; predict() returns each request's top item.

torch, optimum, fastembed and sentence-transformers are imported only inside their worker
(the [train] and [peers] extras).
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
from rec_edge.recommend.tables import (
    CollaborativeTables,
    add_tables,
    history_similarity,
    load_tables,
    rank_values,
)
from rec_edge.runtime.ranker import ITEM_BATCH, pair_scores
from rec_edge.runtime.requests import RankRequest, parse_rank_request
from rec_edge.tasks import task_spec

NEEDS = {
    "torch": ("torch", "transformers"),
    "optimum": ("optimum.onnxruntime", "transformers", "torch"),
    "fastembed": ("fastembed",),
    "st-onnx": ("sentence_transformers", "optimum.onnxruntime", "torch"),
}
SOURCE_MODEL = ("torch", "optimum", "st-onnx")  # engines that read the run's fp32 model
RUN = 32  # the fixed run of the engines that batch a whole list themselves (torch, ort-raw)


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package missing, or blocked
        return False


def unavailable_reason(kind: str, bundle: Path) -> str | None:
    """Why an engine cannot run here (None: it can)."""
    missing = [m for m in NEEDS.get(kind, ()) if not _importable(m)]
    if missing:
        extra = "peers" if kind in ("fastembed", "st-onnx") else "train"
        return f"engine '{kind}' skipped: {', '.join(missing)} not installed (pip install 'rec-edge[{extra}]')"
    if kind in SOURCE_MODEL and not source_model_dir(bundle).is_dir():
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
    if task_spec(manifest.task).labelled:  # a description head's encoder config names no labels
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
        self.rank = task_spec(self.bundle.manifest.task).ranks
        self.collaborative: CollaborativeTables | None = None
        if self.rank:
            self._user_text = self.templates.preference_renderer()
            if self.bundle.manifest.items_file:  # rank as the bundle does: with its tables
                self.collaborative = load_tables(self.bundle.path / self.bundle.manifest.items_file)
        else:
            self._render = self.templates.renderer(self.labels)
        self.batches: list[Any] = []
        self.whole_list = False  # prepare(..., whole=True): each batch is the user's whole list

    @property
    def stacked(self) -> bool:
        """A rank bundle with a stack: its requests also encode the liked history titles."""
        return self.collaborative is not None and self.collaborative.stack is not None

    def render(self, texts: Sequence[str]) -> list[str]:
        return [self._render(t) for t in texts]

    def prepare(self, batches: list[list[str]], whole: bool = False) -> None:
        self.batches, self.whole_list = batches, whole

    def run(self, index: int) -> None:
        if self.whole_list:
            self.whole(self.batches[index])
        else:
            self.predict(self.batches[index])

    def whole(self, texts: list[str]) -> list[str]:
        """Every text in one call, as the engine's library takes a list (classify bundles)."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        labels: list[str] = [""] * len(texts)
        for start in range(0, len(order), RUN):
            run = order[start : start + RUN]
            for i, label in zip(run, self.classify([texts[i] for i in run]), strict=True):
                labels[i] = label
        return labels

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

    def whole(self, texts: list[str]) -> list[str]:
        return [p.label for p in self.predictor.predict(texts)]

    def top_item(self, request: RankRequest) -> str:
        return self.predictor.rank(request.history, request.candidates, k=1)[0].item


class OrtRawEngine(OnnxEngine):
    """Pre-tokenized and padded outside the timed call: session.run alone."""

    def prepare(self, batches: list[list[str]], whole: bool = False) -> None:
        from rec_edge.runtime.tokenize import pad_batch

        p = self.predictor

        def feed(encodings: list[Any]) -> dict[str, Any]:
            batch = pad_batch(encodings, p.tokenizer.pad_id)
            return {name: batch[name] for name in p.input_names}

        if whole:  # pre-tokenized, sorted by length, runs of RUN: the floor of a whole list
            self.batches = []
            for texts in batches:
                encodings = sorted(p.tokenizer.encode(p.render(texts)), key=lambda e: len(e.ids))
                runs = [encodings[i : i + RUN] for i in range(0, len(encodings), RUN)]
                self.batches.append([feed(run) for run in runs])
            return

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

    def whole(self, texts: list[str]) -> list[str]:  # the pipeline's own batch size (1)
        out = self.pipe(self.render(texts), truncation=True, max_length=self.max_length)
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


def _no_spinning(session: Any, threads: int) -> Any:
    """The same model file in a session without spinning threads (the bench's isolation: a
    spinning pool would take the next engine's cores between interleaved calls)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(session._model_path, options, providers=["CPUExecutionProvider"])


class FastembedEngine(Engine):
    """fastembed's TextEmbedding over the bundle's own ONNX file, registered as a custom model
    whose "embedding" is the classify output (no pooling, no normalization): a label is its
    argmax. Classify bundles only; fastembed tokenizes and batches as it does for any model."""

    def __init__(self, bundle: Path, threads: int):
        super().__init__(bundle, threads)
        if self.rank:
            raise ValueError("fastembed runs classify bundles only")
        from fastembed import TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType

        self.folder = _model_folder(bundle)
        name = f"rec-edge/{bundle.name}"
        if name not in {m["model"] for m in TextEmbedding.list_supported_models()}:
            TextEmbedding.add_custom_model(
                name,
                pooling=PoolingType.DISABLED,
                normalization=False,
                sources=ModelSource(hf=name),
                dim=len(self.labels),
                model_file="model.onnx",  # its first output, read as the Predictor reads it
            )
        self.model = TextEmbedding(name, specific_model_path=str(self.folder), threads=threads)
        inner: Any = self.model.model
        inner.model = _no_spinning(inner.model, threads)

    def classify(self, texts: list[str]) -> list[str]:
        return self.whole(texts) if len(texts) <= 256 else self._labels(texts, len(texts))

    def whole(self, texts: list[str]) -> list[str]:  # embed()'s own batch size (256)
        return self._labels(texts, None)

    def _labels(self, texts: list[str], batch_size: int | None) -> list[str]:
        kwargs = {} if batch_size is None else {"batch_size": batch_size}
        rows = np.stack(list(self.model.embed(self.render(texts), **kwargs)))
        return [self.labels[i] for i in rows.argmax(-1)]

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class SentenceTransformersEngine(Engine):
    """sentence-transformers with its ONNX backend on the run's fp32 encoder (the ONNX file it
    exports itself, at load), mean-pooled unit vectors as the bundle's graph computes them, then
    the run's label head (numpy). Classify bundles with a description head only."""

    def __init__(self, bundle: Path, threads: int):
        super().__init__(bundle, threads)
        head = self.bundle.manifest.source.get("head", {})
        if self.rank or head.get("kind") != "descriptions":
            raise ValueError("st-onnx runs classify bundles with a description head only")
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.models import Normalize, Pooling, Transformer

        from rec_edge.modeling.heads import LabelHead

        self.folder = Path(tempfile.mkdtemp(prefix="rec-edge-st-"))
        shutil.copytree(source_model_dir(bundle), self.folder, dirs_exist_ok=True)
        options = {"provider": "CPUExecutionProvider"}
        encoder = Transformer(
            str(self.folder),
            max_seq_length=self.bundle.manifest.max_length,
            backend="onnx",
            model_args=options,
        )
        pooling = Pooling(encoder.get_embedding_dimension(), "mean")
        self.model = SentenceTransformer(
            modules=[encoder, pooling, Normalize()], device="cpu", backend="onnx"
        )
        ort_model = encoder.auto_model
        ort_model.model = _no_spinning(ort_model.model, threads)
        self.head = LabelHead.load(source_model_dir(bundle).parent / head["file"])

    def classify(self, texts: list[str]) -> list[str]:
        return self._labels(texts, len(texts))

    def whole(self, texts: list[str]) -> list[str]:  # encode()'s own batch size (32)
        return self._labels(texts, None)

    def _labels(self, texts: list[str], batch_size: int | None) -> list[str]:
        kwargs = {} if batch_size is None else {"batch_size": batch_size}
        vectors = self.model.encode(self.render(texts), convert_to_numpy=True, **kwargs)
        return [self.labels[i] for i in self.head.logits(vectors).argmax(-1)]

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _model_folder(bundle: Path) -> Path:
    """A temporary folder as fastembed reads a local model: the bundle's ONNX file (linked),
    its tokenizer.json, and a tokenizer_config.json with the bundle's max_length."""
    loaded = load_bundle(bundle, verify=False)
    folder = Path(tempfile.mkdtemp(prefix="rec-edge-fastembed-"))
    (folder / "model.onnx").symlink_to(loaded.model_path.resolve())
    shutil.copy(loaded.tokenizer_path, folder / "tokenizer.json")
    source = source_model_dir(bundle)
    config = json.loads((source / "tokenizer_config.json").read_text()) if source.is_dir() else {}
    config["model_max_length"] = loaded.manifest.max_length
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    for name in ("config.json", "special_tokens_map.json"):
        if (source / name).is_file():
            shutil.copy(source / name, folder / name)
    return folder


ENGINES: dict[str, type[Engine]] = {
    "onnx": OnnxEngine,
    "ort-raw": OrtRawEngine,
    "torch": TorchEngine,
    "optimum": OptimumEngine,
    "fastembed": FastembedEngine,
    "st-onnx": SentenceTransformersEngine,
}


def isolate_threads(threads: int) -> None:
    """Before any engine import: no spinning threads that would steal the next engine's cores."""
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
