"""`rec-edge score` on each engine, side by side in one sitting: rows/s and peak memory.

    python benchmarks/score_engines.py --rounds 2      (make bench-score)

1. BANKING77 texts (Casanueva et al. 2020, CC BY 4.0) repeated to --rows rows (200,000), scored by
   a classify bundle with each engine: local (one process, every core), local-threads (one
   process, a part per core at once in threads, 1 onnxruntime thread each), Ray (a local cluster,
   one actor per core, 1 thread each) and Spark (local[cores], a task per core, 1 thread each). The
   reference is `rec-edge bench` on the same bundle and texts, batch 32 (the Predictor's
   throughput with nothing around it); the local engine should keep >= 90% of it.
2. MovieLens-100K: all 943 users (their last 10 ratings as liked/disliked) against the whole
   catalog (1,682 titles, history excluded), top 10, with a rank bundle, on each engine.

Every engine runs as `rec-edge score` in a fresh process; wall time counts everything (start-up
of Ray or the JVM included), the job's rows/s counts from planning to the last commit. Peak RSS
is the largest sum of RSS over the process tree (driver, raylet and workers, JVM and Python
workers), sampled every 0.2 s: shared pages (Ray's object store, onnxruntime's mapped model) are
counted once per process, so it over-states. Engines are interleaved and rotated per round.
MovieLens-100K is read from `make data` (the recbole wheel), never committed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from rec_edge.versions import machine, versions

ROOT = Path(__file__).resolve().parents[1]
REC_EDGE = str(Path(sys.executable).with_name("rec-edge"))


def banking77_rows(folder: Path, rows: int, out: Path) -> Path:
    texts = [
        r["text"]
        for name in ("train.csv", "test.csv")
        for r in csv.DictReader((folder / name).open(encoding="utf-8"))
    ]
    with out.open("w", encoding="utf-8") as f:
        for i in range(rows):
            f.write(json.dumps({"id": i, "text": texts[i % len(texts)]}) + "\n")
    return out


def movielens_users(folder: Path, out: Path, history: int = 10) -> Path:
    from rec_edge.recommend.interactions import read_interactions

    data = read_interactions(folder)
    timelines: dict[str, list] = {}
    for row in data.interactions:
        timelines.setdefault(row.user, []).append(row)
    with out.open("w", encoding="utf-8") as f:
        for user, rows in sorted(timelines.items(), key=lambda kv: int(kv[0])):
            last = sorted(rows, key=lambda r: (r.timestamp, r.item))[-history:]
            liked = [data.titles[r.item] for r in last if r.rating > 3]
            disliked = [data.titles[r.item] for r in last if r.rating <= 3]
            f.write(json.dumps({"user": user, "liked": liked, "disliked": disliked}) + "\n")
    return out


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def run_measured(command: list[str], log: Path) -> dict[str, float]:
    """Wall seconds and peak tree RSS of ``command``; its stdout (JSON) parsed."""
    started = time.perf_counter()
    with log.open("w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
        peak = [0]
        watcher = psutil.Process(proc.pid)

        def sample() -> None:
            while proc.poll() is None:
                try:
                    peak[0] = max(peak[0], tree_rss(watcher))
                except psutil.Error:
                    break
                time.sleep(0.2)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        stdout, _ = proc.communicate()
        thread.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}); see {log}")
    return {
        "wall_seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mb": round(peak[0] / 2**20),
        "output": json.loads(stdout[stdout.index("{") :]) if "{" in stdout else {},
    }


def score_run(
    bundle: Path, source: Path, work: Path, engine: str, cores: int, extra: list[str]
) -> dict:
    out = work / f"out-{engine}"
    shutil.rmtree(out, ignore_errors=True)
    command = [
        REC_EDGE,
        "score",
        str(bundle),
        str(source),
        "--out",
        str(out),
        "--engine",
        engine.removesuffix("-threads"),
        "--no-progress",
        *extra,
    ]
    if engine != "local":  # local-threads: parts in one thread per core, 1 onnxruntime thread each
        command += ["--workers", str(cores), "--threads", "1"]
    result = run_measured(command, work / f"{engine}.log")
    summary = json.loads((out / "_SUCCESS.json").read_text())
    rows = summary["rows"]
    return {
        "engine": engine,
        "rows": rows,
        "job_seconds": summary["seconds"],
        "job_rows_per_second": summary["rows_per_second"],
        "wall_seconds": result["wall_seconds"],
        "wall_rows_per_second": round(rows / result["wall_seconds"], 1),
        "peak_rss_mb": result["peak_rss_mb"],
    }


def bench_run(bundle: Path, texts: Path, work: Path) -> dict:
    out = work / "bench"
    shutil.rmtree(out, ignore_errors=True)
    command = [
        REC_EDGE,
        "bench",
        str(bundle),
        "--engines",
        "onnx",
        "--batch-sizes",
        "32",
        "--text-file",
        str(texts),
        "--max-texts",
        "4096",
        "--iterations",
        "100",
        "--cold-start-runs",
        "0",
        "--no-peak",
        "--no-plot",
        "--out",
        str(out),
    ]
    run_measured(command, work / "bench.log")
    report = json.loads((out / "bench.json").read_text())
    row = next(r for r in report["results"] if r["batch_size"] == 32)
    return {"engine": "bench", "texts_per_second": round(row["stats"]["throughput"], 1)}


PREDICT = """
import json, sys, time
from rec_edge import Predictor
texts = [json.loads(line)["text"] for line in open(sys.argv[2], encoding="utf-8")]
predictor = Predictor.load(sys.argv[1])
predictor.predict(texts[:256])
started = time.perf_counter()
predictor.predict(texts, batch_size=32)
print(json.dumps({"texts": len(texts), "seconds": time.perf_counter() - started}))
"""


def predictor_run(bundle: Path, texts: Path, work: Path) -> dict:
    """The Predictor alone over the same texts in one call (length-sorted batches of 32): the
    ceiling for a job that also reads, checks and writes."""
    result = run_measured(
        [sys.executable, "-c", PREDICT, str(bundle), str(texts)], work / "predictor.log"
    )
    output = result["output"]
    return {
        "engine": "predictor",
        "texts_per_second": round(output["texts"] / output["seconds"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--classify-bundle", type=Path, default=Path("exports/banking77-invariance-auto1")
    )
    parser.add_argument("--rank-bundle", type=Path, default=Path("exports/ml100k-demo"))
    parser.add_argument(
        "--banking77", type=Path, default=ROOT.parent / "shared" / "data" / "banking77"
    )
    parser.add_argument("--movielens", type=Path, default=Path("data/ml-100k"))
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--engines", default="local,ray,spark")
    parser.add_argument("--skip-rank", action="store_true")
    parser.add_argument("--work", type=Path, default=Path("runs/score-bench"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/score"))
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    cores = len(psutil.Process().cpu_affinity() or []) or psutil.cpu_count()
    texts = banking77_rows(args.banking77, args.rows, args.work / "banking77.jsonl")
    sample = banking77_rows(args.banking77, 4096, args.work / "banking77-4096.jsonl")
    predictor_sample = banking77_rows(args.banking77, 20_000, args.work / "banking77-20000.jsonl")
    users = None if args.skip_rank else movielens_users(args.movielens, args.work / "users.jsonl")
    engines = args.engines.split(",")
    runs: list[dict] = []
    for round_ in range(args.rounds):
        order = engines[round_ % len(engines) :] + engines[: round_ % len(engines)]
        for engine in ["bench", "predictor", *order]:
            if engine == "bench":
                row = bench_run(args.classify_bundle, sample, args.work)
            elif engine == "predictor":
                row = predictor_run(args.classify_bundle, predictor_sample, args.work)
            else:
                row = score_run(
                    args.classify_bundle, texts, args.work, engine, cores, ["--prefix", "pred_"]
                )
            row.update(task="classify", round=round_)
            runs.append(row)
            print(json.dumps(row), flush=True)
        for engine in order if users else []:
            row = score_run(args.rank_bundle, users, args.work, engine, cores, ["--k", "10"])
            row.update(task="rank", round=round_)
            runs.append(row)
            print(json.dumps(row), flush=True)
    results = {
        "rows": args.rows,
        "cores": cores,
        "runs": runs,
        "machine": machine(),
        "versions": versions(),
        "classify_bundle": str(args.classify_bundle),
        "rank_bundle": str(args.rank_bundle),
    }
    (args.out / "score_engines.json").write_text(json.dumps(results, indent=2))
    (args.out / "summary.md").write_text(summary(runs, results))
    print((args.out / "summary.md").read_text())


def summary(runs: list[dict], results: dict) -> str:
    bench = [r["texts_per_second"] for r in runs if r["engine"] == "bench"]
    reference = statistics.median(bench) if bench else None
    alone = [r["texts_per_second"] for r in runs if r["engine"] == "predictor"]
    lines = [
        "| task | engine | rounds | job rows/s (median) | wall rows/s | wall s | peak RSS MB | vs bench batch 32 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task in ("classify", "rank"):
        for engine in ("local", "local-threads", "ray", "spark"):
            rows = [r for r in runs if r["task"] == task and r["engine"] == engine]
            if not rows:
                continue
            job = statistics.median(r["job_rows_per_second"] for r in rows)
            ratio = f"{job / reference:.2f}" if reference and task == "classify" else "-"
            lines.append(
                f"| {task} | {engine} | {len(rows)} | {job:.1f} | "
                f"{statistics.median(r['wall_rows_per_second'] for r in rows):.1f} | "
                f"{statistics.median(r['wall_seconds'] for r in rows):.1f} | "
                f"{max(r['peak_rss_mb'] for r in rows)} | {ratio} |"
            )
    if bench:
        lines.append(
            f"\n`rec-edge bench` batch 32 (median of {len(bench)}): {reference:.1f} texts/s"
        )
    if alone:
        lines.append(
            f"`Predictor.predict` on 20,000 texts in one call, length-sorted batches of 32 (median "
            f"of {len(alone)}): {statistics.median(alone):.1f} texts/s"
        )
    lines.append(
        f"\nmachine: {json.dumps(results['machine'])}\nversions: {json.dumps(results['versions'])}\n"
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
