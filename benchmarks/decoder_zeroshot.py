"""Instructions that generalize: SmolLM2 + LoRA trained on a mixture of two tasks (BBC News topics,
drug-review sentiment), each with its own instruction, then asked zero-shot a task it never saw
(BANKING77's 77 intents) from an instruction and the label words alone, against its untuned self.

    python benchmarks/decoder_zeroshot.py --part untuned
    python benchmarks/decoder_zeroshot.py --part tuned --seed 42

One part a call, each writing OUT/{part}[-seed{S}].json:
- untuned: SmolLM2 as a BANKING77 classify bundle (`rec-edge export --model smollm2 --task
  classify`, the intents' names as label words, the instruction below), scored on a seeded sample
  of --test-rows BANKING77 test texts;
- tuned: `rec-edge train MIX.toml --task generate --model smollm2` (the mixture: --shots per label
  of each task, LoRA, the defaults), then the run's model as the same BANKING77 bundle, scored on
  the same texts. The run's own validation (each part's held-out accuracy) is recorded too.
Bundles are fp32: the question is the model's, not the quantizer's. Label scoring is the
product's (each label's words scored by log-likelihood over the prompt's shared KV cache, less
the labels' prior: a bundle exported without a run subtracts it); the accuracy without the
prior is recorded beside it, from the same scores.
Data: `make data` (BBC), `make data-drugs`, ../shared/data/banking77 (CC BY 4.0, PolyAI).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.config import DecoderExportConfig, TrainConfig
from rec_edge.export.decoder import export_decoder
from rec_edge.runtime import GenerativeClassifier, Generator
from rec_edge.train import train
from rec_edge.versions import machine, versions

MIXTURE = """\
[[parts]]
file = "{bbc}"
task = "classify"
instruction = "What is this news article about? Answer with one of: {{labels}}."
shots = {shots}

[[parts]]
file = "{drugs}"
task = "classify"
instruction = "Is this review of a drug positive or negative? Answer with one of: {{labels}}."
shots = {shots}
"""
BANKING_INSTRUCTION = "What does the customer of this bank ask about? Answer with one of: {labels}."


def banking77(path: Path, rows: int, seed: int) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(label -> words, a seeded sample of (text, label) test rows)."""
    with (path / "test.csv").open(encoding="utf-8", newline="") as handle:
        test = [(r["text"], r["category"]) for r in csv.DictReader(handle)]
    words = {label: label.replace("_", " ").lower() for label in sorted({c for _, c in test})}
    return words, random.Random(seed).sample(test, min(rows, len(test)))


def zero_shot(
    model: str, out: Path, words: dict[str, str], rows: list[tuple[str, str]]
) -> dict[str, Any]:
    bundle = out / "bundle"
    export_decoder(
        DecoderExportConfig(
            model=model,
            out=str(bundle),
            task="classify",
            labels=words,
            instruction=BANKING_INSTRUCTION,
            weights="fp32",
            force=True,
        )
    )
    generator = Generator.load(bundle, threads=2)
    assert isinstance(generator, GenerativeClassifier) and generator.prior is not None
    started = time.perf_counter()
    scores = generator.answer_logprobs([text for text, _ in rows])
    seconds = time.perf_counter() - started
    truth = np.array([generator.labels.index(label) for _, label in rows])
    plain, calibrated = scores.argmax(1), (scores - generator.prior).argmax(1)
    return {
        "accuracy": round(float((calibrated == truth).mean()), 4),  # as the bundle answers
        "accuracy_without_prior": round(float((plain == truth).mean()), 4),
        "predicted": [generator.labels[i] for i in calibrated],
        "predicted_without_prior": [generator.labels[i] for i in plain],
        "n": len(rows),
        "labels": len(words),
        "ms_per_row": round(1000 * seconds / len(rows), 1),
        "truncated": generator.truncated,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["untuned", "tuned"], required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--shots", type=int, default=64, help="per label of each mixture task")
    parser.add_argument("--test-rows", type=int, default=400)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--banking77", default="../shared/data/banking77")
    parser.add_argument("--bbc", default="data/bbc/train.jsonl")
    parser.add_argument("--drugs", default="data/drugs/train.jsonl")
    parser.add_argument("--work", default="runs/decoder-zeroshot")
    parser.add_argument("--out", default="benchmarks/results/decoder-zeroshot")
    args = parser.parse_args()
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    words, rows = banking77(Path(args.banking77), args.test_rows, seed=0)  # one sample for all
    result: dict[str, Any] = {
        "protocol": __doc__.split("\n\n")[0],
        "instruction": BANKING_INSTRUCTION,
        "test_sample_seed": 0,
        "machine": machine(),
        "versions": versions(),
    }
    if args.part == "untuned":
        result["banking77"] = zero_shot("smollm2", work / "untuned", words, rows)
        name = "untuned.json"
    else:
        mixture = work / f"mix-seed{args.seed}.toml"
        mixture.write_text(
            MIXTURE.format(
                bbc=Path(args.bbc).resolve(), drugs=Path(args.drugs).resolve(), shots=args.shots
            ),
            encoding="utf-8",
        )
        started = time.perf_counter()
        run = train(
            TrainConfig(
                train_file=str(mixture),
                task="generate",
                model="smollm2",
                runs_dir=str(work / "runs"),
                name=f"mix-seed{args.seed}",
                seed=args.seed,
                max_length=args.max_length,
                validation_limit=200,
                force=True,
            )
        )
        record = json.loads((run.run_dir / "run.json").read_text())
        result["mixture"] = MIXTURE.format(bbc=args.bbc, drugs=args.drugs, shots=args.shots)
        result["train"] = {
            "seconds": round(time.perf_counter() - started, 1),
            "steps": record["steps"],
            "examples": record["examples"],
            "loss": record["loss"],
            "truncated": record["truncated"],
            "validation": record["metrics"]["validation"],
            "precision": record["precision"],
        }
        result["banking77"] = zero_shot(str(run.run_dir / "model"), work / "tuned", words, rows)
        name = f"tuned-seed{args.seed}.json"
    (out / name).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["banking77"]))


if __name__ == "__main__":
    main()
