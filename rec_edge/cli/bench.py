"""`rec-edge bench`: a thin mapping of options onto BenchConfig and run_benchmark."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click


def _ints(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: expected comma-separated integers, e.g. 1,8,32"
        ) from None


def _names(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@click.command("bench")
@click.argument("bundles", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option(
    "--engines",
    default="onnx,ort-raw",
    show_default=True,
    callback=_names,
    help="Comma-separated: onnx (rec-edge), ort-raw (bare session.run), torch, optimum ([train] extra).",
)
@click.option(
    "--batch-sizes",
    default="1,32",
    show_default=True,
    callback=_ints,
    help="Comma-separated batch sizes.",
)
@click.option(
    "--seq-lengths",
    default="",
    callback=_ints,
    help="Synthetic inputs of these token lengths (without --text-file). [default: 32,128]",
)
@click.option(
    "--text-file",
    type=click.Path(dir_okay=False),
    help="Real texts (JSONL/CSV/TSV or plain lines): the realistic mode.",
)
@click.option(
    "--text-field", default="text", show_default=True, help="Field of the text in --text-file."
)
@click.option("--label-field", help="Field of the label in --text-file: accuracy is measured too.")
@click.option(
    "--threads",
    default="",
    callback=_ints,
    help="Comma-separated thread counts to sweep. [default: usable cores]",
)
@click.option(
    "--warmup", default=5, show_default=True, help="Untimed calls per engine and batch size."
)
@click.option(
    "--iterations", default=50, show_default=True, help="Timed calls per engine and batch size."
)
@click.option(
    "--max-texts", default=2000, show_default=True, help="At most this many texts from --text-file."
)
@click.option(
    "--baseline", help="Engine kind the speedups refer to. [default: torch if run, else the first]"
)
@click.option(
    "--cold-start-runs",
    default=3,
    show_default=True,
    help="Fresh processes per engine for cold start (0: skip).",
)
@click.option("--no-peak", is_flag=True, help="Skip the machine-peak matmuls.")
@click.option(
    "--out", type=click.Path(file_okay=False), help="Write bench.json, bench.md and bench.png here."
)
@click.option("--no-plot", is_flag=True, help="No PNG even if matplotlib is installed.")
def command(bundles: tuple[str, ...], no_peak: bool, no_plot: bool, **options: Any) -> None:
    """Measure BUNDLES against PyTorch and other engines, interleaved, each in its own process.

    Prints a table of p50/p95/p99 latency, throughput and speedup per engine and batch size,
    then size, accuracy, cold start and memory per engine; --out also writes JSON with every
    raw figure, the machine and the versions, a Markdown report and a PNG chart ([plot] extra).
    """
    from rec_edge.bench import run_benchmark
    from rec_edge.bench.report import terminal, write_reports
    from rec_edge.bench.runner import total_rounds
    from rec_edge.bundle import load_bundle
    from rec_edge.config import BenchConfig

    config = BenchConfig(bundles=list(bundles), peak=not no_peak, plot=not no_plot, **options)
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
