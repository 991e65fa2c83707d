"""Locust users for benchmarks/serve_load.py: each POSTs JSON bodies from a file in turn.

Set by the environment: SERVE_BODIES (a JSON list of bodies), SERVE_PATH (the endpoint),
SERVE_OUT (every request's latency and status are written there as JSON when the run ends),
SERVE_MAX (stop after this many requests), SERVE_RATE (requests/s per user; 0 = closed loop,
the next request as soon as the answer is in).
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path

from locust import constant, constant_throughput, events, task
from locust.contrib.fasthttp import FastHttpUser

BODIES = [json.dumps(b).encode() for b in json.loads(Path(os.environ["SERVE_BODIES"]).read_text())]
PATH = os.environ["SERVE_PATH"]
MAX = int(os.environ.get("SERVE_MAX", "0")) or None
RATE = float(os.environ.get("SERVE_RATE", "0"))
HEADERS = {"Content-Type": "application/json"}
_next = itertools.count()
_records: list[tuple[float, float, int]] = []  # (time sent, latency ms, status)


@events.request.add_listener
def _record(request_type, name, response_time, response_length, response=None, exception=None, **_):  # type: ignore[no-untyped-def]
    status = getattr(response, "status_code", 0) or 0
    _records.append((time.time() - response_time / 1000, response_time, int(status)))


@events.quitting.add_listener
def _dump(environment, **_):  # type: ignore[no-untyped-def]
    with open(os.environ["SERVE_OUT"], "w") as out:
        json.dump(_records, out)


class Client(FastHttpUser):
    wait_time = constant_throughput(RATE) if RATE else constant(0)
    connection_timeout = 10.0
    network_timeout = 30.0

    @task
    def post(self) -> None:
        n = next(_next)
        if MAX is not None and n >= MAX:
            self.environment.runner.quit()
            return
        request = (
            self.client.get if PATH in ("/healthz", "/readyz", "/metrics") else self.client.post
        )
        with request(
            PATH, data=BODIES[n % len(BODIES)], headers=HEADERS, catch_response=True
        ) as response:
            if response.status_code in (200, 503):
                response.success()  # a 503 is the shedding under test, not a client error
