"""Few-shot and zero-shot: rec-edge against SetFit and a logistic probe, on the same examples and
the same MiniLM body, K examples per label, several seeds (``make bench-fewshot``).

For each data set, K and seed, one sample is drawn: K training and K validation examples per
label (disjoint, seeded), written under runs/fewshot/. Then, interleaved on that sample:

- ``rec-edge+compare``: ``rec-edge train`` as its defaults run a few-shot set (the description
  head; the raw text and the instruction templates each trained, the one with the higher
  validation accuracy kept), then ``rec-edge export`` (the int8 gate); test accuracy of PyTorch
  (train's report) and of the int8 bundle (the Predictor, onnxruntime). Its row holds both
  candidates' test figures (the instruction's ablation, in the same run), which the summary
  lists as rows of their own. At K=0 the default is the raw text alone: the raw candidate's row;
- ``rec-edge`` (not in the default set): the raw text alone (``--no-template``; the default
  until the comparison became it, and the ``rec-edge`` rows of earlier results);
- ``rec-edge+instruction`` (not in the default set): the built-in instruction templates alone;
- ``rec-edge+pairs`` (not in the default set): the raw text plus ``--pair-loss 1`` (SetFit's
  pair objective on each batch's texts beside the cross-entropy);
- ``rec-edge+lora`` (not in the default set): LoRA instead of the few-shot default, full
  fine-tuning (``--method auto``), on the raw text;
- ``setfit`` and ``probe`` (benchmarks/fewshot_peers.py, in .venv-peers): SetFit with its
  defaults, and logistic regression on frozen embeddings;
- ``setfit-20`` (not in the default set): SetFit with its paper's ``num_iterations=20`` (2 x 20
  pairs an example), where its defaults' pairs do not fit the machine.

K=0 is zero-shot: rec-edge only (``--shots 0``), from the label descriptions.
Every run appends one JSON line to OUT/runs.jsonl (so an interrupted benchmark resumes where it
stopped); OUT/summary.md gets mean, standard deviation and training seconds per cell.

    python benchmarks/fewshot.py --datasets bbc,banking77,drugs --shots 0,8,16,64 --seeds 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
# name -> (train file, test file, text field, label field)
DATASETS = {
    "bbc": ("data/bbc/train.jsonl", "data/bbc/test.jsonl", "text", "label"),
    "banking77": (
        os.environ.get("BANKING77", "../shared/data/banking77") + "/train.csv",
        os.environ.get("BANKING77", "../shared/data/banking77") + "/test.csv",
        "text",
        "category",
    ),
    "drugs": ("data/drugs/train.jsonl", "data/drugs/test.jsonl", "text", "label"),
}
SYSTEMS = ("rec-edge+compare", "setfit", "probe")
# benchmarks/fewshot_peers.py's peers; setfit-20 (not in the default set) is SetFit with its
# paper's num_iterations=20, for where its 1.x defaults do not fit the machine (BANKING77)
PEERS = ("setfit", "setfit-20", "probe")
# rec-edge's variants: system -> (run name suffix, TrainConfig fields beside the defaults)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "rec-edge": ("raw", {"use_templates": False}),
    "rec-edge+instruction": ("instr", {"use_templates": True}),
    "rec-edge+pairs": ("pairs", {"use_templates": False, "pair_loss": 1.0}),
    # the ablation of --method auto at few shots: LoRA (the default above 5,000 examples)
    "rec-edge+lora": ("lora", {"use_templates": False, "method": "lora"}),
    # the default at few shots: both of the above, the better on validation kept (ties: the raw
    # text); explicit, so that K=0 (where the default is the raw text alone) compares too
    "rec-edge+compare": ("cmp", {"compare_templates": True}),
}


def read_rows(path: str, text_field: str, label_field: str) -> list[dict[str, str]]:
    from rec_edge.data.readers import read_examples

    examples = read_examples(path, text_field, label_field, None, None).examples
    return [{"text": e.text, "label": str(e.label)} for e in examples]


def sample(rows: list[dict[str, str]], k: int, seed: int) -> tuple[list[dict], list[dict]]:
    """K training and K validation rows per label, disjoint, seeded."""
    by_label: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row)
    rng = random.Random(seed)
    train, validation = [], []
    for label in sorted(by_label):
        group = list(by_label[label])
        rng.shuffle(group)
        train += group[:k]
        validation += group[k : 2 * k]
    rng.shuffle(train)
    return train, validation


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def run_rec_edge(folder: Path, test_file: Path, k: int, seed: int, system: str) -> dict[str, Any]:
    """train (defaults) + export (the gate) + the int8 bundle's test accuracy. K=0: the sample
    gives the label set, and its texts (labels unused) calibrate int8."""
    from rec_edge import Predictor
    from rec_edge.config import ExportConfig, TrainConfig
    from rec_edge.export import export
    from rec_edge.train import train

    suffix, fields = VARIANTS[system]
    name = f"{folder.name}-{suffix}"
    config = TrainConfig(
        train_file=str(folder / "train.jsonl"),
        validation_file=str(folder / "validation.jsonl"),
        test_file=str(test_file),
        runs_dir=str(folder / "runs"),
        name=name,
        seed=seed,
        shots=0 if k == 0 else None,
        force=True,
        **fields,
    )
    started = time.perf_counter()
    result = train(config)
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    bundle = export(
        ExportConfig(
            run_dir=str(result.run_dir), out=str(folder / "bundles" / name), force=True, seed=seed
        ),
        log=lambda _: None,
    ).bundle_dir
    export_seconds = time.perf_counter() - started
    test = read_rows(str(test_file), "text", "label")
    predictor = Predictor.load(bundle)
    predicted = [p.label for p in predictor.predict([r["text"] for r in test])]
    int8 = sum(p == r["label"] for p, r in zip(predicted, test, strict=True)) / len(test)
    compared = result.metrics.get("templates_compared")
    return {
        "accuracy": result.metrics["test"]["accuracy"],  # PyTorch
        "macro_f1": result.metrics["test"]["macro_f1"],
        "int8_accuracy": int8,
        "recipe": predictor.manifest.recipe.get("name"),
        "train_seconds": round(train_seconds, 1),
        "export_seconds": round(export_seconds, 1),
        "steps": json.loads((result.run_dir / "run.json").read_text())["steps"],
        **({"templates_compared": compared} if compared else {}),
    }


def run_peers(folder: Path, test_file: Path, seed: int, peers: list[str]) -> dict[str, Any]:
    from rec_edge.models import resolve_model

    if not PEERS_PYTHON.is_file():
        raise SystemExit(f"{PEERS_PYTHON} is missing: run benchmarks/fewshot.sh (it makes it).")
    out = folder / "peers.json"
    subprocess.run(
        [
            str(PEERS_PYTHON),
            str(ROOT / "benchmarks" / "fewshot_peers.py"),
            resolve_model(None),
            str(folder / "train.jsonl"),
            str(test_file),
            str(seed),
            str(out),
            ",".join(peers),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    return json.loads(out.read_text())


def added_label(dataset: str, label: str, k: int, seed: int, work: Path) -> dict[str, Any]:
    """Train on K per label without ``label``, add it at export from its description alone, and
    score the bundle on the whole test set: how often the new label's texts get it, and the
    accuracy on the others (against a bundle that never had it)."""
    from rec_edge import Predictor
    from rec_edge.config import ExportConfig, TrainConfig
    from rec_edge.data.templates import DEFAULT_DESCRIPTION
    from rec_edge.export import export
    from rec_edge.train import train

    train_file, test_file, text_field, label_field = DATASETS[dataset]
    rows = [r for r in read_rows(train_file, text_field, label_field) if r["label"] != label]
    folder = work / dataset / f"add-{label}-k{k}-s{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    train_rows, validation = sample(rows, k, seed)
    config = TrainConfig(
        train_file=str(write_jsonl(folder / "train.jsonl", train_rows)),
        validation_file=str(write_jsonl(folder / "validation.jsonl", validation)),
        runs_dir=str(folder / "runs"),
        name="without",
        seed=seed,
        force=True,
    )
    run = train(config)
    description = DEFAULT_DESCRIPTION.format(label=label.replace("_", " "))
    bundles = {}
    for name, added in (("without", {}), ("with", {label: description})):
        bundles[name] = Predictor.load(
            export(
                ExportConfig(
                    run_dir=str(run.run_dir),
                    out=str(folder / name),
                    add_labels=added,
                    force=True,
                    seed=seed,
                ),
                log=lambda _: None,
            ).bundle_dir
        )
    test = read_rows(test_file, text_field, label_field)
    new = [r for r in test if r["label"] == label]
    old = [r for r in test if r["label"] != label]

    def accuracy(predictor: Any, rows: list[dict[str, str]]) -> float:
        predicted = predictor.predict([r["text"] for r in rows])
        return sum(p.label == r["label"] for p, r in zip(predicted, rows, strict=True)) / len(rows)

    return {
        "dataset": dataset,
        "added": label,
        "description": description,
        "k": k,
        "seed": seed,
        "new_label_recall": accuracy(bundles["with"], new),
        "old_labels_accuracy_with": accuracy(bundles["with"], old),
        "old_labels_accuracy_without": accuracy(bundles["without"], old),
        "all_accuracy_with": accuracy(bundles["with"], test),
        "n_new": len(new),
        "n_old": len(old),
    }


def candidates(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A compared run's candidates (raw text, instruction) as rows of their own: PyTorch test
    figures and training seconds (no int8: only the kept run is exported)."""
    compared = record.get("templates_compared")
    if not compared:
        return {}
    return {
        f"{name} candidate": {
            "accuracy": compared[name]["test"]["accuracy"],
            "macro_f1": compared[name]["test"]["macro_f1"],
            "train_seconds": compared[name]["train_seconds"],
        }
        for name in ("raw", "instruction")
    }


def summarize(records: list[dict[str, Any]]) -> str:
    cells: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        cells[(r["dataset"], r["k"], r["system"])].append(r)
        for name, figures in candidates(r).items():  # the comparison's two runs, as rows
            cells[(r["dataset"], r["k"], f"{r['system']}: {name}")].append(figures)
    lines = [
        "| data set | K | system | seeds | accuracy mean | std | int8 accuracy | macro-F1 | train s (mean) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (dataset, k, system), rows in sorted(cells.items()):
        acc = [r["accuracy"] for r in rows]
        int8 = [r["int8_accuracy"] for r in rows if r.get("int8_accuracy") is not None]
        std = statistics.stdev(acc) if len(acc) > 1 else 0.0
        int8_text = f"{statistics.mean(int8):.4f}" if int8 else "-"
        seconds = statistics.mean(r["train_seconds"] for r in rows)
        f1 = statistics.mean(r["macro_f1"] for r in rows)
        lines.append(
            f"| {dataset} | {k} | {system} | {len(rows)} | {statistics.mean(acc):.4f} | "
            f"{std:.4f} | {int8_text} | {f1:.4f} | {seconds:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="bbc,banking77,drugs")
    parser.add_argument("--shots", default="0,8,16,64")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds FIRST, FIRST+1, ... (a missing cell's seed)"
    )
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--skip", default="", help="dataset:K:system triples to leave out")
    parser.add_argument("--out", default="benchmarks/results/fewshot")
    parser.add_argument("--work", default="runs/fewshot")
    parser.add_argument(
        "--add-labels",
        help="instead: per label of --datasets (comma-separated, or 'all'), train without it at "
        "the first K and add it at export from its description",
    )
    args = parser.parse_args()
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    if args.add_labels:
        k = int(args.shots.split(",")[0])
        with (out / "added_labels.jsonl").open("a", encoding="utf-8") as f:
            for dataset in args.datasets.split(","):
                train_file, _, text_field, label_field = DATASETS[dataset]
                every = sorted({r["label"] for r in read_rows(train_file, text_field, label_field)})
                chosen = every if args.add_labels == "all" else args.add_labels.split(",")
                for label in chosen:
                    for seed in range(args.seeds):
                        record = added_label(dataset, label, k, seed, work)
                        f.write(json.dumps(record) + "\n")
                        f.flush()  # an interrupted run keeps what it measured
                        print(json.dumps(record), flush=True)
        return
    log = out / "runs.jsonl"
    done = (
        {
            (r["dataset"], r["k"], r["seed"], r["system"])
            for r in (json.loads(line) for line in log.read_text().splitlines() if line)
        }
        if log.is_file()
        else set()
    )
    skip = {tuple(s.split(":")) for s in args.skip.split(",") if s}
    systems = args.systems.split(",")
    unknown = sorted(set(systems) - set(VARIANTS) - set(PEERS))
    if unknown:
        parser.error(f"--systems: unknown {unknown} (known: {sorted(VARIANTS)}, {PEERS})")
    for dataset in args.datasets.split(","):
        train_file, test_file, text_field, label_field = DATASETS[dataset]
        rows = read_rows(train_file, text_field, label_field)
        folder_root = work / dataset
        folder_root.mkdir(parents=True, exist_ok=True)
        test = write_jsonl(
            folder_root / "test.jsonl", read_rows(test_file, text_field, label_field)
        )
        for k in (int(x) for x in args.shots.split(",")):
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                folder = folder_root / f"k{k}-s{seed}"
                folder.mkdir(parents=True, exist_ok=True)
                train, validation = (
                    sample(rows, max(k, 8), seed) if k == 0 else sample(rows, k, seed)
                )
                write_jsonl(folder / "train.jsonl", train)
                write_jsonl(folder / "validation.jsonl", validation)
                todo = [
                    s
                    for s in systems
                    if (dataset, k, seed, s) not in done
                    and (dataset, str(k), s) not in skip
                    and (k > 0 or s.startswith("rec-edge"))
                ]
                peers = [s for s in todo if s in PEERS]
                results: dict[str, Any] = {}
                for system in todo:
                    if system.startswith("rec-edge"):
                        results[system] = run_rec_edge(folder, test, k, seed, system)
                if peers:
                    results.update(run_peers(folder, test, seed, peers))
                with log.open("a", encoding="utf-8") as f:
                    for system, figures in results.items():
                        record = {
                            "dataset": dataset,
                            "k": k,
                            "seed": seed,
                            "system": system,
                            **figures,
                        }
                        f.write(json.dumps(record) + "\n")
                        f.flush()  # an interrupted run keeps what it measured
                        print(json.dumps(record), flush=True)
    records = [json.loads(line) for line in log.read_text().splitlines() if line]
    from rec_edge.versions import machine, versions

    (out / "summary.md").write_text(
        summarize(records)
        + f"\nmachine: {json.dumps(machine())}\nversions: {json.dumps(versions())}\n",
        "utf-8",
    )
    print(summarize(records))


if __name__ == "__main__":
    sys.exit(main())
