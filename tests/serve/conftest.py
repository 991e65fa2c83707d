"""A real `rec-edge serve` in a child process (torch blocked in it) on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import LiveServer, live_server


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
