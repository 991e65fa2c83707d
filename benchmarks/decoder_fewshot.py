"""Few-shot classification with the language model: SmolLM2 + LoRA against its untuned self.

    python benchmarks/decoder_fewshot.py --dataset drugs --shots 16 --seed 0

One part per (data set, K, seed), on the same seeded sample as benchmarks/fewshot.py (K training
and K validation examples per label), so the encoder's published rows compare directly:
1. the untuned model as a classify bundle (`rec-edge export --model smollm2 --task classify`,
   the same instruction and label words), test accuracy (zero-shot, once per data set);
2. `rec-edge train --model smollm2` on the sample (LoRA, the defaults), `rec-edge export RUN`
   (the gate), test accuracy of the bundle the gate kept, through the torch-free Generator.
Writes one JSON per part into --out (the run's times, the gate, every accuracy). Each test
accuracy is given as the bundle answers and the other way round its labels' prior (a bundle
subtracts it where the export chose to: always zero-shot, where it helped a run's validation
rows tuned). `--part zero-shot` (re)writes the untuned part alone; `--part prior` reads a
tuned part's kept bundle again: its test and validation accuracy with and without the prior.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fewshot import DATASETS, sample, write_jsonl  # noqa: E402

from rec_edge.config import DecoderExportConfig, TrainConfig  # noqa: E402
from rec_edge.export.decoder import export_decoder  # noqa: E402
from rec_edge.runtime import GenerativeClassifier, Generator  # noqa: E402
from rec_edge.versions import machine, versions  # noqa: E402

INSTRUCTIONS = {
    "drugs": "Is this drug review positive or negative?",
    "bbc": "Which section of the news does this article belong to?",
}


def read(path: str, text: str, label: str) -> list[dict[str, str]]:
    rows = [json.loads(line) for line in Path(path).read_text("utf-8").splitlines() if line]
    return [{"text": r[text], "label": str(r[label])} for r in rows]


def accuracy(bundle: Path, rows: list[dict[str, str]]) -> dict:
    """Accuracy as the bundle answers, and the other way round its labels' prior."""
    generator = Generator.load(bundle)
    assert isinstance(generator, GenerativeClassifier)
    started = time.perf_counter()
    scores = generator.answer_logprobs([r["text"] for r in rows])
    seconds = time.perf_counter() - started
    truth = np.array([generator.labels.index(r["label"]) for r in rows])
    prior = generator.content_free_prior() if generator.prior is None else generator.prior
    plain, calibrated = (
        round(float(((scores - p).argmax(1) == truth).mean()), 4) for p in (0, prior)
    )
    return {
        "accuracy": plain if generator.prior is None else calibrated,
        "label_prior": generator.prior is not None,
        "accuracy_without_prior": plain,
        "accuracy_with_prior": calibrated,
        "n": len(rows),
        "ms_per_text": round(1000 * seconds / len(rows), 1),
        "truncated": generator.truncated,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="drugs")
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--max-steps", type=int, default=100)
    parser.add_argument("--work", default="runs/decoder-fewshot")
    parser.add_argument("--out", default="benchmarks/results/decoder-fewshot")
    parser.add_argument("--part", choices=("all", "zero-shot", "prior"), default="all")
    args = parser.parse_args()
    train_path, test_path, text, label = DATASETS[args.dataset]
    rows, test = read(train_path, text, label), read(test_path, text, label)
    labels = sorted({r["label"] for r in rows})
    words = {name: name.replace("_", " ") for name in labels}
    instruction = INSTRUCTIONS.get(args.dataset, "Answer with one of: " + ", ".join(words) + ".")
    work, out = Path(args.work) / args.dataset, Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "dataset": args.dataset,
        "model": args.model,
        "machine": machine(),
        "versions": versions(),
    }

    if args.part == "prior":
        part = work / f"k{args.shots}-s{args.seed}"
        prior = {
            "shots": args.shots,
            "seed": args.seed,
            "bundle": json.loads((part / "bundle" / "rec_edge.json").read_text())["recipe"],
            "validation": accuracy(
                part / "bundle", read(str(part / "valid.jsonl"), "text", "label")
            ),
            "test": accuracy(part / "bundle", test),
        }
        name = f"{args.dataset}-k{args.shots}-s{args.seed}-prior.json"
        (out / name).write_text(json.dumps({**meta, **prior}, indent=2))
        print("prior", json.dumps({k: prior[k] for k in ("validation", "test")}), flush=True)
        return
    zero_file = out / f"{args.dataset}-zero-shot.json"
    if not zero_file.is_file() or args.part == "zero-shot":
        bundle = work / "zero-shot"
        started = time.perf_counter()
        result = export_decoder(
            DecoderExportConfig(
                model=args.model,
                out=str(bundle),
                task="classify",
                labels=words,
                instruction=instruction,
                force=True,
            )
        )
        zero = {
            "export_seconds": round(time.perf_counter() - started, 1),
            "weights": result.weights,
        }
        zero["test"] = accuracy(bundle, test)
        zero["calibration"] = result.calibration
        zero_file.write_text(json.dumps({**meta, **zero, "gate": result.gate}, indent=2))
        print("zero-shot", json.dumps(zero), flush=True)
    if args.part == "zero-shot":
        return

    train_rows, validation = sample(rows, args.shots, args.seed)
    part = work / f"k{args.shots}-s{args.seed}"
    part.mkdir(exist_ok=True)
    from rec_edge.train import train

    started = time.perf_counter()
    run = train(
        TrainConfig(
            train_file=str(write_jsonl(part / "train.jsonl", train_rows)),
            validation_file=str(write_jsonl(part / "valid.jsonl", validation)),
            model=args.model,
            runs_dir=str(part / "runs"),
            name="run",
            instruction=instruction,
            label_names=words,
            max_steps=args.max_steps,
            batch_size=8,
            seed=args.seed,
            force=True,
        )
    )
    train_seconds = time.perf_counter() - started
    record = json.loads((run.run_dir / "run.json").read_text())
    started = time.perf_counter()
    result = export_decoder(
        DecoderExportConfig(
            model=str(run.run_dir / "model"),
            out=str(part / "bundle"),
            task="classify",
            labels=words,
            instruction=instruction,
            run_dir=str(run.run_dir),  # the gate on the run's validation accuracy
            force=True,
        )
    )
    tuned = {
        "shots": args.shots,
        "seed": args.seed,
        "steps": record["steps"],
        "loss": record["loss"],
        "precision": record["precision"],
        "train_seconds": round(train_seconds, 1),
        "export_seconds": round(time.perf_counter() - started, 1),
        "weights": result.weights,
        "gate": result.gate,
        "calibration": result.calibration,
        "validation_pytorch": record["metrics"]["validation"],
        "test": accuracy(part / "bundle", test),
    }
    name = f"{args.dataset}-k{args.shots}-s{args.seed}.json"
    (out / name).write_text(json.dumps({**meta, **tuned}, indent=2))
    print(
        "tuned", json.dumps({k: tuned[k] for k in ("train_seconds", "weights", "test")}), flush=True
    )


if __name__ == "__main__":
    main()
