"""What a protocol costs over the native endpoint: one `rec-edge serve` of a classify bundle, the
same texts asked through POST /v1/models/NAME/predict (native), POST /v2/models/NAME/infer
(KServe v2) and POST /v1/embeddings (OpenAI), at 1 and 32 concurrent clients, rounds in rotated
order, one sitting, loopback only, bounded in requests.

    python benchmarks/serve_protocols.py --bundle runs/embed-retrieval/bundles/k8-seed42

Each request carries one BANKING77 test sentence (they cycle). Per endpoint and concurrency:
requests/s and latency p50/p95/p99 (ms) over the rounds' requests; the overhead is the
protocol's p50 over the native's at 1 client and its requests/s under the native's at 32.
/v1/embeddings fetches the sentence vector (a different output of the same graph) and is not
micro-batched: each request is its own session run. Writes OUT/protocols.json.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from rec_edge.versions import machine, versions

NAME = "intents"


def bodies(endpoint: str, texts: list[str]) -> list[dict[str, Any]]:
    if endpoint == "native":
        return [{"texts": [t]} for t in texts]
    if endpoint == "kserve":
        tensor = {"name": "text", "datatype": "BYTES", "shape": [1]}
        return [{"inputs": [{**tensor, "data": [t]}], "outputs": [{"name": "label"}]} for t in texts]
    return [{"model": NAME, "input": t, "encoding_format": "float"} for t in texts]


PATHS = {
    "native": f"/v1/models/{NAME}/predict",
    "kserve": f"/v2/models/{NAME}/infer",
    "openai-embeddings": "/v1/embeddings",
}


async def load(url: str, path: str, payloads: list[dict[str, Any]], clients: int, total: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def worker() -> None:
            for n in counter:
                started = time.perf_counter()
                response = await client.post(path, json=payloads[n % len(payloads)])
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        seconds = time.perf_counter() - began
    return {"latencies": latencies, "statuses": statuses, "seconds": seconds}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = np.array([x for r in runs for x in r["latencies"]])
    requests = sum(len(r["latencies"]) for r in runs)
    return {
        "requests": requests,
        "requests_per_second": round(requests / sum(r["seconds"] for r in runs), 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p95_ms": round(float(np.percentile(latencies, 95)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "statuses": {str(k): sum(r["statuses"].get(k, 0) for r in runs) for k in (200, 503)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--data", default="../shared/data/banking77/test.csv")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=600, help="per round, endpoint, load")
    parser.add_argument("--out", default="benchmarks/results/serve-protocols")
    args = parser.parse_args()
    with open(args.data, encoding="utf-8", newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)][:1000]
    server = subprocess.Popen(
        [sys.executable, "-m", "rec_edge.cli", "serve", "--bundle", f"{NAME}={args.bundle}",
         "--host", "127.0.0.1", "--port", "0", "--no-access-log", "--max-queue", "1024"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        url = line.split(" on ")[1].split()[0]
        endpoints = list(PATHS)
        results: dict[str, dict[int, list[dict[str, Any]]]] = {e: {1: [], 32: []} for e in endpoints}
        for _ in range(2):  # warm every path
            for endpoint in endpoints:
                asyncio.run(load(url, PATHS[endpoint], bodies(endpoint, texts), 4, 64))
        for r in range(args.rounds):
            order = endpoints[r % len(endpoints):] + endpoints[: r % len(endpoints)]
            for clients in (1, 32):
                for endpoint in order:
                    run = asyncio.run(
                        load(url, PATHS[endpoint], bodies(endpoint, texts), clients, args.requests)
                    )
                    results[endpoint][clients].append(run)
        table = {e: {c: summary(results[e][c]) for c in (1, 32)} for e in endpoints}
        native = table["native"]
        overhead = {
            e: {
                "p50_at_1_client": round(table[e][1]["p50_ms"] / native[1]["p50_ms"] - 1, 3),
                "throughput_at_32_clients": round(
                    1 - table[e][32]["requests_per_second"] / native[32]["requests_per_second"], 3
                ),
            }
            for e in endpoints
            if e != "native"
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "protocol": __doc__.split("\n\n")[0],
        "bundle": str(args.bundle),
        "rounds": args.rounds,
        "requests_per_round": args.requests,
        "table": table,
        "overhead": overhead,
        "machine": machine(),
        "versions": versions(),
        "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (out / "protocols.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({"table": table, "overhead": overhead}, indent=1))


if __name__ == "__main__":
    main()
