"""Builders shared by the tests (data, configs, a torch-blocking interpreter). Fixtures stay in
conftest.py; a test imports what it builds from here, never from another test module."""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

BANKING77 = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"

TOPICS = {
    "weather": ["sunny", "rain", "storm", "forecast", "cloudy", "snow"],
    "sports": ["goal", "match", "striker", "league", "tennis", "race"],
    "finance": ["bank", "money", "shares", "profit", "loan", "market"],
}
FILLER = ["the", "today", "we", "saw", "a", "lot", "of", "news", "about", "and", "it", "was"]


def make_examples(n_per_class: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for label, words in TOPICS.items():
        for _ in range(n_per_class):
            tokens = rng.sample(FILLER, 5) + rng.sample(words, 2)
            rng.shuffle(tokens)
            rows.append({"text": " ".join(tokens), "label": label})
    rng.shuffle(rows)
    return rows


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


BLOCK_TORCH = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('torch', 'transformers', 'peft', 'optimum'):\n"
    "            raise ImportError(f'{name} is blocked in this test')\n"
    "sys.meta_path.insert(0, Block())\n"
)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def synthetic(
    users: int = 6, items: int = 40, per_user: int = 15, seed: int = 0
) -> list[tuple[str, str, int, int]]:
    rng = random.Random(seed)
    rows = []
    for u in range(users):
        for t, item in enumerate(rng.sample(range(items), per_user)):
            rows.append((f"u{u}", f"i{item}", rng.randint(1, 5), 1000 * t + u))
    return rows


def write_interactions(folder: Path, users: int, items: int, per_user: int, seed: int) -> Path:
    """``synthetic`` interactions as ``folder/inter.jsonl`` and their titles ("Movie N") as
    ``folder/items.jsonl``; returns the interactions' path."""
    rows = synthetic(users=users, items=items, per_user=per_user, seed=seed)
    (folder / "inter.jsonl").write_text(
        "".join(
            json.dumps({"user": u, "item": i, "rating": r, "timestamp": t}) + "\n"
            for u, i, r, t in rows
        )
    )
    (folder / "items.jsonl").write_text(
        "".join(json.dumps({"item": f"i{i}", "title": f"Movie {i}"}) + "\n" for i in range(items))
    )
    return folder / "inter.jsonl"


def tiny_train_config(
    tiny_model: str, topic_files: dict[str, Path], runs_dir: Path, **overrides: Any
) -> Any:
    from rec_edge.config import TrainConfig

    options = dict(
        train_file=str(topic_files["train"]),
        test_file=str(topic_files["test"]),
        model=tiny_model,
        runs_dir=str(runs_dir),
        name="tiny",
        instruction="Which topic is this?",
        epochs=6,
        min_steps=0,  # plumbing: the epochs decide (the floor is tested in train/test_heads.py)
        batch_size=8,
        method="full",
        learning_rate=2e-3,
        max_length=32,
        early_stopping_patience=None,
    )
    options.update(overrides)
    return TrainConfig(**options)


SERVE = BLOCK_TORCH + "from rec_edge.cli import main\nmain(sys.argv[1:], prog_name='rec-edge')\n"


class LiveServer:
    """A real `rec-edge serve` in a child process (torch blocked in it) on a loopback port."""

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


# The labels (and their answer words) of conftest's decoder_bundle
DECODER_LABELS = {"positive": "positive", "negative": "negative", "mixed": "mixed feelings"}
