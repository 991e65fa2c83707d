"""Instructions that generalize: SmolLM2 + LoRA trained on a mixture of two tasks (BBC News topics,
drug-review sentiment), each with its own instruction, then asked zero-shot a task it never saw
(BANKING77's 77 intents) from an instruction and the label words alone, against its untuned self.

    python benchmarks/decoder_zeroshot.py --part untuned [--model gemma-3-270m-q4_k_m.gguf]
    python benchmarks/decoder_zeroshot.py --part tuned --seed 42
    python benchmarks/decoder_zeroshot.py --part options --seed 42 --max-steps 150

One part a call, each writing OUT/{part}[-seed{S}].json:
- untuned: SmolLM2 as a BANKING77 classify bundle (`rec-edge export --model smollm2 --task
  classify`, the intents' names as label words, the instruction below), scored on a seeded sample
  of --test-rows BANKING77 test texts;
- tuned: `rec-edge train MIX.toml --task generate --model smollm2` (the mixture: --shots per label
  of each task, LoRA, the defaults), then the run's model as the same BANKING77 bundle, scored on
  the same texts. The run's own validation (each part's held-out accuracy) is recorded too;
- options: the mixture made to teach choosing among listed options rather than a task's few
  labels: three tasks (BBC topics, drug-review sentiment, and MovieLens-100K's genres from a
  film's title and year: 18 labels), each row's option list its task's labels plus 0 to
  --distractors label words of the other tasks, shuffled per row, as Alpaca rows
  (`--task generate`); --max-steps steps. Then the same BANKING77 bundle and texts.
Bundles are fp32: the question is the model's, not the quantizer's. Label scoring is the
product's (each label's words scored by log-likelihood over the prompt's shared KV cache, less
the labels' prior: a bundle exported without a run subtracts it); the accuracy without the
prior is recorded beside it, from the same scores.
Data: `make data` (BBC, MovieLens-100K), `make data-drugs`, ../shared/data/banking77 (CC BY 4.0,
PolyAI). BANKING77 is never trained on.
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
OPTION_TASKS = {  # the options part: instruction, and where its rows come from
    "bbc": "What is this news article about? Answer with one of: {labels}.",
    "drugs": "How does this review of a drug feel? Answer with one of: {labels}.",
    "genres": "Which genre is this film? Answer with one of: {labels}.",
}
BANKING_INSTRUCTION = "What does the customer of this bank ask about? Answer with one of: {labels}."


def banking77(path: Path, rows: int, seed: int) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(label -> words, a seeded sample of (text, label) test rows)."""
    with (path / "test.csv").open(encoding="utf-8", newline="") as handle:
        test = [(r["text"], r["category"]) for r in csv.DictReader(handle)]
    words = {label: label.replace("_", " ").lower() for label in sorted({c for _, c in test})}
    return words, random.Random(seed).sample(test, min(rows, len(test)))


def labelled(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return [(r["text"], r["label"]) for r in map(json.loads, handle) if r.get("text")]


def film_genres(item_file: Path) -> list[tuple[str, str]]:
    """(title (year), genre) of the films that have exactly one genre (MovieLens-100K)."""
    rows = []
    with item_file.open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            _, title, year, genres = line.rstrip("\n").split("\t")
            if len(genres.split()) == 1 and genres != "unknown":
                rows.append((f"{title} ({year})" if year else title, genres.lower()))
    return rows


def option_rows(
    tasks: dict[str, list[tuple[str, str]]], shots: int, distractors: int, seed: int
) -> list[dict[str, str]]:
    """Alpaca rows: up to ``shots`` texts per label of each task, each asked with its task's
    labels and 0 to ``distractors`` label words of the other tasks, shuffled per row."""
    rng = random.Random(seed)
    words = {name: sorted({label for _, label in rows}) for name, rows in tasks.items()}
    out = []
    for name, rows in tasks.items():
        others = sorted(
            {w for other, ws in words.items() if other != name for w in ws} - set(words[name])
        )
        by_label: dict[str, list[str]] = {}
        for text, label in rows:
            by_label.setdefault(label, []).append(text)
        for label, texts in sorted(by_label.items()):
            for text in rng.sample(texts, min(shots, len(texts))):
                options = words[name] + rng.sample(
                    others, rng.randint(0, min(distractors, len(others)))
                )
                rng.shuffle(options)
                instruction = OPTION_TASKS[name].replace("{labels}", ", ".join(options))
                out.append({"instruction": instruction, "input": text, "output": label})
    rng.shuffle(out)
    return out


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


def _train(train_file: Path, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """``rec-edge train train_file --task generate --model smollm2``: what the run recorded."""
    started = time.perf_counter()
    run = train(
        TrainConfig(
            train_file=str(train_file),
            task="generate",
            model="smollm2",
            runs_dir=str(Path(args.work) / "runs"),
            name=f"{kind}-seed{args.seed}",
            seed=args.seed,
            max_length=args.max_length,
            max_steps=args.max_steps,
            validation_limit=200,
            force=True,
        )
    )
    record = json.loads((run.run_dir / "run.json").read_text())
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "steps": record["steps"],
        "examples": record["examples"],
        "loss": record["loss"],
        "truncated": record["truncated"],
        "validation": record["metrics"]["validation"],
        "precision": record["precision"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["untuned", "tuned", "options"], required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--shots", type=int, default=64, help="per label of each mixture task")
    parser.add_argument("--test-rows", type=int, default=400)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--banking77", default="../shared/data/banking77")
    parser.add_argument("--bbc", default="data/bbc/train.jsonl")
    parser.add_argument("--drugs", default="data/drugs/train.jsonl")
    parser.add_argument("--films", default="data/ml-100k/ml-100k.item")
    parser.add_argument(
        "--model", default="smollm2", help="untuned part: an alias, folder or .gguf file"
    )
    parser.add_argument("--distractors", type=int, default=16, help="options part")
    parser.add_argument("--max-steps", type=int, default=None, help="default: the run's schedule")
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
        tag = "" if args.model == "smollm2" else "-" + Path(args.model).stem
        result["model"] = args.model
        result["banking77"] = zero_shot(args.model, work / f"untuned{tag}", words, rows)
        name = f"untuned{tag}.json"
    elif args.part == "options":
        tasks = {
            "bbc": labelled(Path(args.bbc)),
            "drugs": labelled(Path(args.drugs)),
            "genres": film_genres(Path(args.films)),
        }
        rows_file = work / f"options-seed{args.seed}.jsonl"
        written = option_rows(tasks, args.shots, args.distractors, args.seed)
        rows_file.write_text("".join(json.dumps(r) + "\n" for r in written), encoding="utf-8")
        result["mixture"] = {
            "tasks": {name: OPTION_TASKS[name] for name in tasks},
            "rows": len(written),
            "shots_per_label": args.shots,
            "distractors_up_to": args.distractors,
            "labels": {name: len({label for _, label in rows}) for name, rows in tasks.items()},
        }
        result["train"] = _train(rows_file, "options", args)
        model = str(work / "runs" / f"options-seed{args.seed}" / "model")
        result["banking77"] = zero_shot(model, work / "tuned-options", words, rows)
        name = f"options-seed{args.seed}.json"
    else:
        mixture = work / f"mix-seed{args.seed}.toml"
        mixture.write_text(
            MIXTURE.format(
                bbc=Path(args.bbc).resolve(), drugs=Path(args.drugs).resolve(), shots=args.shots
            ),
            encoding="utf-8",
        )
        result["mixture"] = MIXTURE.format(bbc=args.bbc, drugs=args.drugs, shots=args.shots)
        result["train"] = _train(mixture, "mix", args)
        model = str(work / "runs" / f"mix-seed{args.seed}" / "model")
        result["banking77"] = zero_shot(model, work / "tuned", words, rows)
        name = f"tuned-seed{args.seed}.json"
    (out / name).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["banking77"]))


if __name__ == "__main__":
    main()
