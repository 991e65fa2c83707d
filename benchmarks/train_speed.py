"""Training throughput, side by side in one sitting: the defaults as they stood before (round 2's
issue 17) against each change alone and all of them together (today's defaults), then full-data
quality for the old and the new defaults.

Throughput rows run `train()` for a fixed number of optimizer steps (tiny validation, no test
file: what is timed is the training loop) in a fresh process each, interleaved over --rounds, so
every row gets its own peak RSS and no row inherits another's warm caches. Quality rows train on
all of BANKING77 (9,003 train texts, the instruction of benchmarks/banking77.sh) for --epochs and
report test accuracy on all 3,080 test texts.

    python benchmarks/train_speed.py --out benchmarks/results/train-speed            # all of it
    python benchmarks/train_speed.py --skip-quality --out /tmp/speed                 # throughput

BANKING77: Casanueva et al. 2020, CC BY 4.0. MovieLens-100K (rank rows): from the recbole wheel
(`make data`), never committed.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BANKING77 = Path("../shared/data/banking77")
INSTRUCTION = "Decide which banking intent this message expresses."
# the defaults until issue 17 (fp32: there was no --precision; `auto` is bf16 on a CPU with it)
BEFORE = {"dropout": None, "lora_dropout": 0.1, "lora_layers": 6, "precision": "fp32"}
# name -> overrides of TrainConfig's (new) defaults; each "+" row is the old defaults + one change
ROWS: dict[str, dict[str, Any]] = {
    "before (old defaults)": BEFORE,
    "+ model dropout 0": {**BEFORE, "dropout": 0.0},
    "+ LoRA dropout 0": {**BEFORE, "lora_dropout": 0.0},
    "+ LoRA in the upper half": {**BEFORE, "lora_layers": None},
    "+ bf16 autocast": {**BEFORE, "precision": "bf16"},
    "all together but bf16 (new defaults, --precision fp32)": {"precision": "fp32"},
    "all together (new defaults)": {},
}
RANK_ROWS: dict[str, dict[str, Any]] = {
    "rank: before (old defaults)": BEFORE,
    "rank: ml100k.py's settings before (dropout 0, LoRA dropout 0)": {
        **BEFORE,
        "dropout": 0.0,
        "lora_dropout": 0.0,
    },
    "rank: new defaults, --precision fp32": {"precision": "fp32"},
    "rank: new defaults": {},
}


def _config(name: str, steps: int | None, epochs: float, work: Path, banking77: Path) -> Any:
    from rec_edge import TrainConfig

    overrides = {**ROWS, **RANK_ROWS}[name]
    common: dict[str, Any] = {
        "runs_dir": str(work),
        "name": "run",
        "force": True,
        "early_stopping_patience": None,
        **overrides,
    }
    if name.startswith("rank:"):
        return TrainConfig(
            train_file="data/ml-100k",
            task="rank",
            collaborative=False,
            validation_limit=32,
            max_steps=steps,
            **common,
        )
    if steps is None:  # quality: all of it
        return TrainConfig(
            train_file=str(banking77 / "train.csv"),
            test_file=str(banking77 / "test.csv"),
            label_field="category",
            instruction=INSTRUCTION,
            epochs=epochs,
            **common,
        )
    return TrainConfig(
        train_file=str(banking77 / "train.csv"),
        label_field="category",
        instruction=INSTRUCTION,
        validation_limit=32,
        max_steps=steps,
        **common,
    )


def _tokens_per_example(config: Any) -> float:
    """Mean non-pad tokens of a training example (the template rendered, truncated)."""
    from transformers import AutoTokenizer

    from rec_edge.data.tasks import build_classification
    from rec_edge.models import resolve_model

    data = build_classification(config)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(config.model))
    texts = data.train.texts[:2000]
    ids = tokenizer(texts, truncation=True, max_length=config.max_length)["input_ids"]
    if data.train.candidates:  # rank: the item tower's text too
        items = data.train.candidates[:2000]
        ids += tokenizer(items, truncation=True, max_length=config.max_length)["input_ids"]
        return sum(map(len, ids)) / len(texts)
    return sum(map(len, ids)) / len(ids)


def one(name: str, steps: int | None, epochs: float, work: Path, banking77: Path) -> None:
    """A child process: train one row, print its figures as JSON on the last line."""
    from rec_edge import train

    config = _config(name, steps, epochs, work, banking77)
    started = time.perf_counter()
    result = train(config)
    wall = time.perf_counter() - started
    run = json.loads((result.run_dir / "run.json").read_text(encoding="utf-8"))
    examples = run["steps"] * config.batch_size * config.gradient_accumulation_steps
    figures = {
        "name": name,
        "steps": run["steps"],
        "examples": examples,
        "train_seconds": run["train_seconds"],
        "wall_seconds": round(wall, 1),
        "examples_per_second": round(examples / run["train_seconds"], 2),
        "tokens_per_example": round(_tokens_per_example(config), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "precision": run["precision"],
        "config": {k: run["config"][k] for k in ("dropout", "lora_dropout", "lora_layers")},
        "test": run["metrics"]["test"] and {
            k: run["metrics"]["test"].get(k) for k in ("accuracy", "macro_f1", "auc", "n")
        },
        "validation": {k: run["metrics"]["validation"].get(k) for k in ("accuracy", "auc", "n")},
    }
    figures["tokens_per_second"] = round(
        figures["examples_per_second"] * figures["tokens_per_example"]
    )
    print(json.dumps(figures))


def _child(name: str, steps: int | None, epochs: float, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--one", name, "--epochs", str(epochs)]
    command += ["--work", str(args.work), "--banking77", str(args.banking77)]
    if steps is not None:
        command += ["--steps", str(steps)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"{name:48s} {figures['examples_per_second']:7.2f} ex/s "
        f"{figures['tokens_per_second']:6d} tok/s {figures['peak_rss_mb']:5d} MB "
        f"{json.dumps(figures['test'])}",
        flush=True,
    )
    return figures


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _table(rows: list[dict[str, Any]], baseline: str) -> list[str]:
    by_name: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_name.setdefault(row["name"], []).append(row)
    base = _median([r["examples_per_second"] for r in by_name[baseline]])
    lines = [
        "| settings | examples/s (median) | each sitting | tokens/s | vs before | peak RSS MB |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name, runs in by_name.items():
        speed = _median([r["examples_per_second"] for r in runs])
        each = " / ".join(f"{r['examples_per_second']:.1f}" for r in runs)
        tokens = _median([r["tokens_per_second"] for r in runs])
        rss = max(r["peak_rss_mb"] for r in runs)
        lines.append(
            f"| {name} | {speed:.1f} | {each} | {tokens:.0f} | {speed / base:.2f}x | {rss} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/train-speed"))
    parser.add_argument("--work", type=Path, default=Path("runs/train-speed"))
    parser.add_argument("--banking77", type=Path, default=BANKING77)
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per throughput row")
    parser.add_argument(
        "--bf16-steps", type=int, default=None, help="steps of the bf16 row (emulated bf16 is slow)"
    )
    parser.add_argument("--rank-steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=float, default=2.0, help="quality rows")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--keep", action="store_true", help="add to the rows in OUT")
    parser.add_argument("--rows", help="comma-separated row names to run (default: all)")
    parser.add_argument("--skip-rank", action="store_true", help="no MovieLens rows (no data)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one, args.steps if "--steps" in sys.argv else None, args.epochs, args.work, args.banking77)
        return

    from rec_edge.versions import machine, versions

    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"machine": machine(), "versions": versions(), "throughput": []}
    kept = args.out / "train_speed.json"
    if args.keep and kept.is_file():  # add to an earlier sitting's rows (--rounds 0: quality)
        results = json.loads(kept.read_text())
    names = list(ROWS) + ([] if args.skip_rank else list(RANK_ROWS))
    if args.rows:
        names = [n for n in names if n in args.rows.split(",")]
    for round_ in range(args.rounds):  # interleaved; the order turns each round
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            bf16_row = ROWS.get(name, {}).get("precision") == "bf16"
            steps = args.bf16_steps if bf16_row and args.bf16_steps else args.steps
            steps = args.rank_steps if name.startswith("rank:") else steps
            results["throughput"].append({**_child(name, steps, args.epochs, args), "round": round_})
            (args.out / "train_speed.json").write_text(json.dumps(results, indent=2))
    if not args.skip_quality:
        results["quality"] = [
            _child(name, None, args.epochs, args)
            for name in ("before (old defaults)", "all together (new defaults)")
        ]
    (args.out / "train_speed.json").write_text(json.dumps(results, indent=2))
    lines = [f"machine: {json.dumps(results['machine'])}", f"versions: {json.dumps(results['versions'])}", ""]
    classify = [r for r in results["throughput"] if not r["name"].startswith("rank:")]
    rank = [r for r in results["throughput"] if r["name"].startswith("rank:")]
    if classify:
        lines += ["BANKING77 (instruction template), throughput:", ""]
        lines += _table(classify, "before (old defaults)")
    if rank:
        lines += ["", "MovieLens-100K (TALLRec pairs, two towers + batch negatives), throughput:", ""]
        lines += _table(rank, "rank: before (old defaults)")
    if "quality" in results:
        lines += ["", f"BANKING77 full data, {args.epochs:g} epochs, test accuracy (3,080):", ""]
        lines += ["| settings | test accuracy | macro-F1 | train s | examples/s |", "|---|---:|---:|---:|---:|"]
        for r in results["quality"]:
            lines.append(
                f"| {r['name']} | {r['test']['accuracy']:.4f} | {r['test']['macro_f1']:.4f} | "
                f"{r['train_seconds']:.0f} | {r['examples_per_second']:.1f} |"
            )
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
