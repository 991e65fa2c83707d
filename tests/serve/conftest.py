"""A real `rec-edge serve` in a child process (torch blocked in it) on a loopback port."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.test_package import BLOCK_TORCH

SERVE = BLOCK_TORCH + "from rec_edge.cli import main\nmain(sys.argv[1:], prog_name='rec-edge')\n"


class LiveServer:
    def __init__(self, proc: subprocess.Popen[str], url: str, log: Path):
        self.proc = proc
        self.url = url
        self.log = log

    def client(self, **options: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **options)  # type: ignore[arg-type]

    def async_client(self, **options: object) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        return httpx.AsyncClient(base_url=self.url, timeout=30, limits=limits, **options)  # type: ignore[arg-type]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@contextmanager
def live_server(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[LiveServer]:
    """`rec-edge serve ARGS --port 0`; the URL from its first line of output."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, "serve", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    line = ""
    while not line and time.monotonic() < deadline and proc.poll() is None:
        if select.select([proc.stdout], [], [], 0.5)[0]:
            line = proc.stdout.readline()
    if "serving" not in line:
        proc.kill()
        raise AssertionError(f"the server did not start: {line!r}\n{log.read_text()}")
    server = LiveServer(proc, line.split(" on ")[1].split()[0], log)
    try:
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path, rank_bundle: Path
) -> Iterator[LiveServer]:
    """Both tiny bundles under names; a batch waits up to 20 ms so that concurrent requests
    share runs."""
    log = tmp_path_factory.mktemp("serve") / "server.log"
    args = ["--bundle", f"topics={tiny_bundle}", "--bundle", f"movies={rank_bundle}"]
    options = [
        "--max-wait-ms",
        "20",
        "--max-texts",
        "16",
        "--max-queue",
        "1024",
        "--max-queue-ms",
        "600000",
    ]
    with live_server([*args, *options], log) as live:
        yield live
