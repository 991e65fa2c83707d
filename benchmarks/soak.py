"""Soak run of `rec-edge serve` (issue 44): 100,000 requests, a reload every 10,000, nothing lost.

Loopback only, bounded in requests and time. One `rec-edge serve` process serves a bundle through
a symlink; every ``--reload-every`` requests the link is pointed at the next ``--bundle`` (two
bundles with different label sets exercise the reload that changes labels) and
``POST /v1/models/NAME/reload`` is sent while the clients keep going. The server's RSS, open file
descriptors and threads are sampled throughout. Every request must be answered 200 (or 503,
shed load) and every 200 must carry labels of one of the bundles, one per text.

    .venv/bin/python benchmarks/soak.py --bundle exports/bbc --bundle exports/drugs \\
        --out benchmarks/results/soak/xeon.json

Growth is judged after the first reload cycle (warm-up): RSS and descriptors at each
checkpoint of 10,000 requests, the least-squares slope over the checkpoints after the first
two, in MB (or descriptors) per 10,000 requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

SENTENCES = [
    "the markets rallied after the central bank held rates",
    "a late goal won the cup final for the home side",
    "this medicine gave me terrible headaches for a week",
    "the new phone's battery lasts two full days",
    "parliament passed the budget after a long night",
    "i felt much better after the second dose",
    "the film's soundtrack was nominated for an award",
    "shares in the chip maker fell sharply on weak guidance",
]


def start_server(link: Path, threads: int | None, log: Path) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "rec_edge.cli", "serve", "--bundle", f"soak={link}"]
    command += ["--port", "0", "--no-access-log"]
    command += ["--threads", str(threads)] if threads else []
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "serving ... on http://127.0.0.1:PORT ..."
    if "serving" not in line:
        proc.kill()
        raise SystemExit(f"the server did not start: {line!r}\n{log.read_text()[-2000:]}")
    return proc, line.split(" on ")[1].split()[0]


class Sampler(threading.Thread):
    """RSS (MB), open descriptors and threads of the server every ``every`` seconds."""

    def __init__(self, pid: int, every: float):
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.every = every
        self.samples: list[dict[str, float]] = []
        self.started = time.monotonic()
        self.done = threading.Event()

    def sample(self) -> dict[str, float]:
        return {
            "t": round(time.monotonic() - self.started, 2),
            "rss_mb": round(self.process.memory_info().rss / 1e6, 1),
            "fds": self.process.num_fds(),
            "threads": self.process.num_threads(),
        }

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.samples.append(self.sample())


class Soak:
    def __init__(self, url: str, bundles: list[Path], link: Path, labels: list[set[str]], args):
        self.url, self.bundles, self.link, self.labels, self.args = url, bundles, link, labels, args
        self.statuses: Counter[int] = Counter()
        self.wrong: list[str] = []
        self.latencies: list[float] = []
        self.sent = 0
        self.reloads: list[dict[str, Any]] = []
        self.checkpoints: list[dict[str, Any]] = []

    async def client(self, http: httpx.AsyncClient, rng: random.Random, sampler: Sampler) -> None:
        while self.sent < self.args.requests:
            self.sent += 1
            number = self.sent
            texts = rng.sample(SENTENCES, rng.randint(1, 4))
            started = time.perf_counter()
            response = await http.post(f"{self.url}/v1/models/soak/predict", json={"texts": texts})
            self.latencies.append(time.perf_counter() - started)
            self.statuses[response.status_code] += 1
            if response.status_code == 200:
                self.check(response.json(), len(texts), number)
            elif response.status_code != 503:
                self.wrong.append(f"request {number}: {response.status_code} {response.text[:200]}")
            if number % self.args.reload_every == 0:
                self.checkpoints.append({"requests": number, **sampler.sample()})
                if number < self.args.requests:
                    await self.reload(http, number // self.args.reload_every)

    def check(self, body: dict[str, Any], count: int, number: int) -> None:
        predictions = body.get("predictions", [])
        labels = [p.get("label") for p in predictions]
        if len(labels) != count or not any(set(labels) <= known for known in self.labels):
            self.wrong.append(f"request {number}: {labels} for {count} texts")

    async def reload(self, http: httpx.AsyncClient, index: int) -> None:
        target = self.bundles[index % len(self.bundles)]
        swap = self.link.with_name(self.link.name + ".new")
        swap.unlink(missing_ok=True)
        swap.symlink_to(target.resolve())
        os.replace(swap, self.link)  # atomic: a reload reads one bundle or the other
        started = time.perf_counter()
        response = await http.post(f"{self.url}/v1/models/soak/reload", timeout=120)
        self.reloads.append(
            {
                "after": index * self.args.reload_every,
                "bundle": target.name,
                "status": response.status_code,
                "seconds": round(time.perf_counter() - started, 3),
            }
        )


def slope(points: list[tuple[float, float]]) -> float:
    x, y = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    return float(np.polyfit(x, y, 1)[0]) if len(points) > 1 else 0.0


async def drive(soak: Soak, sampler: Sampler) -> None:
    limits = httpx.Limits(max_connections=soak.args.clients)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        await asyncio.gather(
            *(soak.client(http, random.Random(i), sampler) for i in range(soak.args.clients))
        )


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    names = ("rec-edge", "onnxruntime", "tokenizers", "starlette", "uvicorn", "httpx")
    return {
        "cpu": cpu,
        "usable_cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "versions": {n: version(n) for n in names},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", action="append", required=True, type=Path)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--reload-every", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--threads", type=int, help="the server's onnxruntime threads")
    parser.add_argument("--limit-s", type=float, default=1800, help="give up after this long")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    labels = [set(json.loads((b / "rec_edge.json").read_text())["labels"]) for b in args.bundle]
    with tempfile.TemporaryDirectory() as work:
        link = Path(work) / "current"
        link.symlink_to(args.bundle[0].resolve())
        proc, url = start_server(link, args.threads, Path(work) / "server.log")
        sampler = Sampler(proc.pid, every=1.0)
        soak = Soak(url, args.bundle, link, labels, args)
        try:
            sampler.samples.append(sampler.sample())
            sampler.start()
            started = time.monotonic()
            asyncio.run(asyncio.wait_for(drive(soak, sampler), args.limit_s))
            seconds = time.monotonic() - started
        finally:
            sampler.done.set()
            proc.terminate()
            proc.wait(30)
            server_log = (Path(work) / "server.log").read_text()[-4000:]
    after_warmup = soak.checkpoints[2:]  # the first cycle of both bundles loads and warms up
    latency_ms = np.array(soak.latencies) * 1e3
    result = {
        "machine": machine(),
        "settings": json.loads(json.dumps(vars(args), default=str)),
        "bundles": [str(b) for b in args.bundle],
        "seconds": round(seconds, 1),
        "requests_per_s": round(len(soak.latencies) / seconds, 1),
        "statuses": {str(k): v for k, v in sorted(soak.statuses.items())},
        "answered": sum(soak.statuses.values()),
        "wrong": soak.wrong[:50],
        "wrong_count": len(soak.wrong),
        "latency_ms": {
            "p50": round(float(np.percentile(latency_ms, 50)), 2),
            "p95": round(float(np.percentile(latency_ms, 95)), 2),
            "p99": round(float(np.percentile(latency_ms, 99)), 2),
            "max": round(float(latency_ms.max()), 2),
        },
        "reloads": soak.reloads,
        "checkpoints": soak.checkpoints,
        "growth_per_10k": {
            key: round(
                slope([(c["requests"] / 1e4, c[key]) for c in after_warmup]),
                3,
            )
            for key in ("rss_mb", "fds", "threads")
        },
        "samples": sampler.samples,
        "server_exit": proc.returncode,
        "server_log_tail": server_log,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in list(result)[3:13]}, indent=1))


if __name__ == "__main__":
    main()
