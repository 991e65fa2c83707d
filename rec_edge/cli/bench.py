"""`rec-edge bench`: a thin mapping of options onto BenchConfig and run_benchmark."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from rec_edge.cli._common import config_options
from rec_edge.config import BenchConfig


@click.command("bench")
@click.argument("bundles", nargs=-1, required=True, type=click.Path(file_okay=False))
@config_options(BenchConfig)  # declared there, with their help
def command(bundles: tuple[str, ...], **options: Any) -> None:
    """Measure BUNDLES against PyTorch and other engines, interleaved, each in its own process.

    Prints a table of p50/p95/p99 latency, throughput and speedup per engine and batch size,
    then size, accuracy, cold start and memory per engine; --out also writes JSON with every
    raw figure, the machine and the versions, a Markdown report and a PNG chart ([plot] extra).
    """
    from rec_edge.bench import run_benchmark
    from rec_edge.bench.report import terminal, write_reports
    from rec_edge.bench.runner import total_rounds
    from rec_edge.bundle import load_bundle

    config = BenchConfig(bundles=list(bundles), **options)
    for bundle in config.bundles:  # a missing bundle is an error line, not a progress bar
        load_bundle(bundle, verify=False)
    with click.progressbar(length=total_rounds(config), label="bench", file=sys.stderr) as bar:

        def progress(message: str) -> None:
            bar.label = message
            bar.render_progress()

        result = run_benchmark(config, progress=progress, tick=lambda: bar.update(1))
    click.echo(terminal(result.data))
    if config.out:
        for path in write_reports(result.data, Path(config.out), config.plot):
            click.echo(f"wrote {path}", err=True)
