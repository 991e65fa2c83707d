"""Load test of `rec-edge serve` against the servers a user would otherwise run (issue 16).

One sitting, one machine, loopback only, bounded in requests and time. Locust (headless,
FastHttpUser) is the client; every request's latency is recorded, not Locust's rounded buckets.

    .venv-serve/bin/python benchmarks/serve_load.py --out benchmarks/results/serve
    (make bench-serve builds .venv-serve from benchmarks/serve-constraints.txt)

Per endpoint (predict: BANKING77 int8 bundle, one real test sentence a request; rank: the
MovieLens bundle, a real user's last 10 ratings and 20 candidates a request):
1. in-process references: `rec-edge bench` (batch 1 latency, batch 32 items/s) for predict,
   Predictor.rank / rank_batch for rank;
2. closed loop at 1, 8, 32 (and 64) clients, each server in turn, rounds in rotated order:
   rec-edge serve (defaults), rec-edge serve --workers 2 --threads 1, the hand-written FastAPI
   server, LitServe with its batching (benchmarks/serve_peers.py);
3. overload on rec-edge serve: 8x the rate it sustained at 32 clients offered open loop, 50,000
   requests; status counts, p99 of the admitted, server RSS over the run, and how soon after the
   burst a request is answered at the nominal latency again.

With ``--pin SERVER_CPUS:CLIENT_CPUS`` (taskset lists, e.g. ``0:1``) every server and the
in-process references run on the server CPUs with as many onnxruntime threads, and Locust (and
this script) on the others: the client's work is not charged to the server. Without it all
share every core, as before.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCUSTFILE = ROOT / "benchmarks" / "serve_locustfile.py"


@dataclass
class Pin:
    server: str = ""  # taskset CPU lists; empty: no pinning
    client: str = ""

    @property
    def threads(self) -> int:
        return len(cpus(self.server))

    def prefix(self, side: str) -> list[str]:
        cores = getattr(self, side)
        return ["taskset", "-c", cores] if cores else []


PIN = Pin()
SERVE_VARIANTS: list[list[str]] = []  # --serve-variant: more rec-edge serve rows, extra flags


def cpus(spec: str) -> set[int]:
    """The CPUs of a taskset list ("0", "1-3", "0,2")."""
    found: set[int] = set()
    for part in filter(None, spec.split(",")):
        first, _, last = part.partition("-")
        found.update(range(int(first), int(last or first) + 1))
    return found


@dataclass
class Server:
    name: str
    argv: list[str]  # {port} and {bundle} are filled in
    path: str  # the endpoint, {name} filled in
    env: dict[str, str] = field(default_factory=dict)


def servers(kind: str, litserve_batch: tuple[int, float]) -> list[Server]:
    verb = "rank" if kind == "rank" else "predict"
    serve = [str(BIN / "rec-edge"), "serve", "--bundle", "m={bundle}", "--port", "{port}"]
    peers = [sys.executable, str(ROOT / "benchmarks" / "serve_peers.py")]
    size, timeout = litserve_batch
    threads = ["--threads", str(PIN.threads)] if PIN.server else []
    workers = [
        Server(
            "rec-edge serve --workers 2 --threads 1",
            [*serve, "--workers", "2", "--threads", "1"],
            f"/v1/models/m/{verb}",
        )
    ]
    variants = [
        Server(
            f"rec-edge serve {' '.join(flags)}", [*serve, *threads, *flags], f"/v1/models/m/{verb}"
        )
        for flags in SERVE_VARIANTS
    ]
    return [
        Server("rec-edge serve", [*serve, *threads], f"/v1/models/m/{verb}"),
        *variants,
        *(workers if not PIN.server or PIN.threads >= 2 else []),
        Server(
            "FastAPI, no batching",
            [*peers, "naive", "{bundle}", "--port", "{port}", *threads],
            f"/{verb}",
        ),
        Server(
            f"LitServe (batch {size}, {timeout * 1000:g} ms)",
            [
                *peers,
                "litserve",
                "{bundle}",
                "--port",
                "{port}",
                "--max-batch-size",
                str(size),
                "--batch-timeout",
                str(timeout),
                *threads,
            ],
            "/predict",
        ),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    server: Server, bundle: str, body: dict[str, Any], log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = PIN.prefix("server") + [a.format(port=port, bundle=bundle) for a in server.argv]
    proc = subprocess.Popen(
        argv, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.post(url + server.path, json=body, timeout=5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited: see {log}")
        time.sleep(0.25)
    stop(proc)
    raise RuntimeError(f"{server.name} did not answer within 120 s: see {log}")


def stop(proc: subprocess.Popen[bytes]) -> int:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()


def tree_rss(pid: int) -> int:
    try:
        parent = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])
    except psutil.Error:
        return 0


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.every, self.samples = pid, every, []  # type: ignore[var-annotated]
        self.done = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self.done.is_set():
            self.samples.append((time.monotonic() - start, tree_rss(self.pid)))
            self.done.wait(self.every)


def locust(
    url: str, path: str, bodies: Path, users: int, seconds: float, limit: int = 0, rate: float = 0.0
) -> list[tuple[float, float, int]]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        records = Path(out.name)
    env = {
        **os.environ,
        "SERVE_BODIES": str(bodies),
        "SERVE_PATH": path,
        "SERVE_OUT": str(records),
        "SERVE_MAX": str(limit),
        "SERVE_RATE": str(rate),
    }
    run = subprocess.run(
        [
            *PIN.prefix("client"),
            str(BIN / "locust"),
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--host",
            url,
            "-u",
            str(users),
            "-r",
            str(max(users, 1)),
            "--run-time",
            f"{int(seconds)}s",
            "--only-summary",
            "--loglevel",
            "ERROR",
            "--stop-timeout",
            "10",
        ],
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=seconds + 120,
    )
    if not records.stat().st_size:
        raise RuntimeError(f"locust wrote no records: {run.stderr.decode()[-2000:]}")
    data = json.loads(records.read_text())
    records.unlink()
    return [tuple(r) for r in data]  # type: ignore[misc]


def summarize(records: list[tuple[float, float, int]], skip_s: float = 1.0) -> dict[str, Any]:
    """Requests sent after the first ``skip_s`` seconds (users ramping up) are counted."""
    if not records:
        return {"n": 0}
    t0 = min(r[0] for r in records) + skip_s
    kept = [r for r in records if r[0] >= t0]
    span = max(r[0] + r[1] / 1000 for r in kept) - t0
    ok = np.array([r[1] for r in kept if r[2] == 200])
    statuses: dict[str, int] = {}
    for r in kept:
        statuses[str(r[2])] = statuses.get(str(r[2]), 0) + 1
    result: dict[str, Any] = {
        "n": len(kept),
        "seconds": round(span, 2),
        "statuses": statuses,
        "ok_per_s": round(len(ok) / span, 1),
        "offered_per_s": round(len(kept) / span, 1),
    }
    if len(ok):
        result.update({f"p{q}_ms": round(float(np.percentile(ok, q)), 2) for q in (50, 95, 99)})
    return result


def predict_bodies(csv_path: Path, n: int, seed: int) -> list[dict[str, Any]]:
    with csv_path.open(newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    random.Random(seed).shuffle(texts)
    return [{"texts": [t]} for t in texts[:n]]


def rank_bodies(ml_dir: Path, catalog: list[str], n: int, seed: int) -> list[dict[str, Any]]:
    """Real users: their last 10 ratings (liked: 4 or 5 stars), 20 catalog titles as candidates."""
    titles: dict[str, str] = {}
    with (ml_dir / "ml-100k.item").open(encoding="latin-1") as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            titles[parts[0]] = parts[1]
    ratings: dict[str, list[tuple[float, str, float]]] = {}
    with (ml_dir / "ml-100k.inter").open() as f:
        next(f)
        for line in f:
            user, item, rating, ts = line.split("\t")
            ratings.setdefault(user, []).append((float(ts), titles[item], float(rating)))
    rng = random.Random(seed)
    users = sorted(ratings)
    rng.shuffle(users)
    bodies = []
    for user in (users * (n // len(users) + 1))[:n]:
        last = sorted(ratings[user])[-10:]
        bodies.append(
            {
                "liked": [t for _, t, r in last if r >= 4],
                "disliked": [t for _, t, r in last if r < 4],
                "candidates": rng.sample(catalog, 20),
                "k": 10,
            }
        )
    return bodies


def in_process(
    kind: str, bundle: str, bodies: list[dict[str, Any]], text_file: Path, out: Path
) -> dict[str, Any]:
    """The references: batch-1 latency and batch-32 rate without HTTP."""
    if kind == "predict":
        folder = out / "bench-offline"
        subprocess.run(
            [
                *PIN.prefix("server"),
                str(BIN / "rec-edge"),
                "bench",
                *(["--threads", str(PIN.threads)] if PIN.server else []),
                bundle,
                "--engines",
                "onnx",
                "--batch-sizes",
                "1,32",
                "--text-file",
                str(text_file),
                "--iterations",
                "200",
                "--cold-start-runs",
                "0",
                "--no-peak",
                "--no-plot",
                "--out",
                str(folder),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        rows = json.loads((folder / "bench.json").read_text())["results"]
        by_batch = {r["batch_size"]: r["stats"] for r in rows}
        return {
            "source": "rec-edge bench (onnx engine)",
            "batch1_p50_ms": round(by_batch[1]["p50"] * 1000, 3),
            "batch32_items_per_s": round(by_batch[32]["throughput"], 1),
        }
    from rec_edge.runtime import Predictor

    mine = os.sched_getaffinity(0)
    if PIN.server:
        os.sched_setaffinity(0, cpus(PIN.server))
    try:
        return _rank_in_process(Predictor.load(bundle, threads=PIN.threads or None), bodies)
    finally:
        os.sched_setaffinity(0, mine)


def _rank_in_process(predictor: Any, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    from rec_edge.runtime.requests import RankRequest

    requests = [RankRequest(b["liked"], b["disliked"], b["candidates"], b["k"]) for b in bodies]
    for r in requests[:20]:
        predictor.rank(r.history, r.candidates, r.k)
    alone = []
    for r in requests[:500]:
        t = time.perf_counter()
        predictor.rank(r.history, r.candidates, r.k)
        alone.append(time.perf_counter() - t)
    t = time.perf_counter()
    done = 0
    for start in range(0, 1024, 32):
        done += len(predictor.rank_batch(requests[start : start + 32]))
    rate = done / (time.perf_counter() - t)
    return {
        "source": "Predictor.rank (1 request) and rank_batch (32)",
        "batch1_p50_ms": round(float(np.median(alone)) * 1000, 3),
        "batch32_items_per_s": round(rate, 1),
    }


def closed_loop(
    kind: str,
    bundle: str,
    bodies_file: Path,
    first: dict[str, Any],
    clients: list[int],
    seconds: float,
    rounds: int,
    litserve_batch: tuple[int, float],
    out: Path,
) -> dict[str, Any]:
    table: dict[str, dict[str, list[dict[str, Any]]]] = {}
    peers = servers(kind, litserve_batch)
    for round_ in range(rounds):
        order = peers[round_ % len(peers) :] + peers[: round_ % len(peers)]
        for server in order:
            proc, url = start(server, bundle, first, out / "servers.log")
            try:
                locust(url, server.path, bodies_file, 8, 3)  # warm-up, not counted
                for c in clients:
                    result = summarize(locust(url, server.path, bodies_file, c, seconds))
                    result["rss_mb"] = round(tree_rss(proc.pid) / 2**20, 1)
                    table.setdefault(server.name, {}).setdefault(str(c), []).append(result)
                    print(f"  {kind} round {round_} {server.name} c={c}: {result}", flush=True)
            finally:
                stop(proc)
    return table


def admitted_in_burst(log_lines: list[str]) -> dict[str, float] | None:
    """The server's own times (its JSON access log: from the request's arrival at the app to
    its answer) of the answers given between its first and last 503: how long the admitted
    requests waited inside the server, without the client's or the kernel's share."""
    rows = []
    for line in log_lines:
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    refused = [r["time"] for r in rows if r.get("status") == 503]
    if not refused:
        return None
    first, last = min(refused), max(refused)
    ms = [r["ms"] for r in rows if r.get("status") == 200 and first <= r["time"] <= last]
    if not ms:
        return None
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {
        "n": len(ms),
        "p50_ms": round(float(p50), 2),
        "p95_ms": round(float(p95), 2),
        "p99_ms": round(float(p99), 2),
        "max_ms": round(float(max(ms)), 2),
    }


def overload(
    kind: str,
    server: Server,
    bundle: str,
    bodies_file: Path,
    first: dict[str, Any],
    sustained: float,
    nominal_p50: float,
    requests: int,
    out: Path,
) -> dict[str, Any]:
    log = out / "servers.log"
    offset = log.stat().st_size if log.is_file() else 0
    proc, url = start(server, bundle, first, log)
    try:
        locust(url, server.path, bodies_file, 8, 3)
        sampler = RssSampler(proc.pid)
        sampler.start()
        users, offered = 256, 8 * sustained
        records = locust(
            url, server.path, bodies_file, users, 120, limit=requests, rate=offered / users
        )
        ended = time.monotonic()
        body = json.loads(bodies_file.read_text())[0]
        recovery = None
        with httpx.Client(base_url=url, timeout=10) as client:
            while time.monotonic() - ended < 10:
                t = time.perf_counter()
                status = client.post(server.path, json=body).status_code
                latency = (time.perf_counter() - t) * 1000
                if status == 200 and latency <= 2 * nominal_p50:
                    recovery = round(time.monotonic() - ended, 3)
                    break
                time.sleep(0.01)
        sampler.done.set()
        sampler.join()
        # after the probe, which must not wait for this script's reading of the log
        with log.open("rb") as f:
            f.seek(offset)
            inside = admitted_in_burst(f.read().decode("utf-8", "replace").splitlines())
        rss = [s for _, s in sampler.samples]
        third = max(len(rss) // 3, 1)
        result = summarize(records, skip_s=0.0)
        result.update(
            {
                "target_offered_per_s": round(offered, 1),
                "users": users,
                "rss_mb_first_third_max": round(max(rss[:third]) / 2**20, 1),
                "rss_mb_last_third_max": round(max(rss[-third:]) / 2**20, 1),
                "rss_mb_samples": [round(s / 2**20, 1) for s in rss],
                "seconds_to_nominal_after_burst": recovery,
                "server_side_admitted": inside,
            }
        )
        return result
    finally:
        stop(proc)


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    names = (
        "rec-edge",
        "onnxruntime",
        "tokenizers",
        "starlette",
        "uvicorn",
        "fastapi",
        "litserve",
        "locust",
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "versions": {n: version(n) for n in names},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predict-bundle", default="exports/banking77-invariance-auto1")
    parser.add_argument("--rank-bundle", default="exports/ml100k-demo")
    parser.add_argument("--banking77", default=str(ROOT.parent / "shared" / "data" / "banking77"))
    parser.add_argument("--ml100k", default="data/ml-100k")
    parser.add_argument("--clients", default="1,8,32,64")
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--overload-requests", type=int, default=50_000)
    parser.add_argument("--litserve-batch", default="32,0.005", help="max_batch_size,batch_timeout")
    parser.add_argument("--kinds", default="predict,rank")
    parser.add_argument("--out", default="benchmarks/results/serve")
    parser.add_argument(
        "--serve-variant",
        action="append",
        default=[],
        help="another rec-edge serve row with these flags (e.g. '--session-batch 1'); repeatable",
    )
    parser.add_argument(
        "--pin", default="", help="SERVER_CPUS:CLIENT_CPUS (taskset lists, e.g. 0:1); default: none"
    )
    args = parser.parse_args()
    if args.pin:
        PIN.server, PIN.client = args.pin.split(":")
    SERVE_VARIANTS.extend(v.split() for v in args.serve_variant)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size, timeout = args.litserve_batch.split(",")
    litserve_batch = (int(size), float(timeout))
    clients = [int(c) for c in args.clients.split(",")]
    report: dict[str, Any] = {"machine": machine(), "config": vars(args)}
    if PIN.client:
        os.sched_setaffinity(0, cpus(PIN.client))  # this script's own work is the client's
    for kind in args.kinds.split(","):
        text_file = Path(args.banking77) / "test.csv"
        if kind == "predict":
            bundle, bodies = args.predict_bundle, predict_bodies(text_file, 3000, seed=0)
        else:
            from rec_edge.runtime import Predictor

            bundle = args.rank_bundle
            bodies = rank_bodies(Path(args.ml100k), Predictor.load(bundle).catalog, 3000, seed=0)
        bodies_file = out / f"{kind}-bodies.json"
        bodies_file.write_text(json.dumps(bodies))
        reference = in_process(kind, bundle, bodies, text_file, out)
        print(f"{kind} in process: {reference}", flush=True)
        table = closed_loop(
            kind,
            bundle,
            bodies_file,
            bodies[0],
            clients,
            args.seconds,
            args.rounds,
            litserve_batch,
            out,
        )
        # the overload burst for rec-edge serve and each --serve-variant, each offered 8x the rate
        # it sustained at 32 clients
        bursts, nominal_p99 = {}, {}
        for server in servers(kind, litserve_batch)[: 1 + len(SERVE_VARIANTS)]:
            ours = table[server.name]["32"]
            sustained = float(np.median([r["ok_per_s"] for r in ours]))
            nominal_p50 = float(np.median([r["p50_ms"] for r in ours]))
            nominal_p99[server.name] = float(np.median([r["p99_ms"] for r in ours]))
            bursts[server.name] = overload(
                kind,
                server,
                bundle,
                bodies_file,
                bodies[0],
                sustained,
                nominal_p50,
                args.overload_requests,
                out,
            )
            shown = {k: v for k, v in bursts[server.name].items() if k != "rss_mb_samples"}
            print(f"{kind} overload, {server.name}: {shown}", flush=True)
        report[kind] = {
            "bundle": bundle,
            "in_process": reference,
            "closed_loop": table,
            "overload": bursts["rec-edge serve"],
            "nominal_p99_ms_at_32": nominal_p99["rec-edge serve"],
            "overload_by_server": bursts,
            "nominal_p99_ms_at_32_by_server": nominal_p99,
        }
        bodies_file.unlink()
        (out / "serve.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {out / 'serve.json'}")


if __name__ == "__main__":
    main()
