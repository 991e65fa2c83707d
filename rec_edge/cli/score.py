"""`rec-edge score`: a bundle over a file or folder of any size, into a folder of parts, on one
process, Ray or Spark (torch-free)."""

from __future__ import annotations

import click

from rec_edge.cli._common import echo_json
from rec_edge.config import SCORE_ENGINES, SCORE_FORMATS, ScoreConfig


@click.command("score")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True))
@click.option(
    "--out",
    required=True,
    type=click.Path(),
    help="Output folder: part-NNNNN.<format> files, rejects/, _SUCCESS.json when whole.",
)
@click.option("--engine", type=click.Choice(SCORE_ENGINES), default="local", show_default=True)
@click.option("--input-format", type=click.Choice(SCORE_FORMATS), help="[default: from the suffix]")
@click.option(
    "--format",
    "out_format",
    type=click.Choice(SCORE_FORMATS),
    help="Output format. [default: the input's]",
)
@click.option("--text-field", default="text", show_default=True, help="Classify: the text column.")
@click.option("--all-scores", is_flag=True, help="Classify: every label's probability as well.")
@click.option(
    "--embed", is_flag=True, help="Classify: each row's sentence vector ('embedding') as well."
)
@click.option(
    "--prefix", default="", help="Classify: before the output names (label, score, scores)."
)
@click.option("--user-field", default="user", show_default=True, help="Rank: the user id column.")
@click.option(
    "--candidates",
    type=click.Path(exists=True, dir_okay=False),
    help="Rank: titles to rank, one per line (or JSONL). [default: the bundle's catalog]",
)
@click.option("--k", default=10, show_default=True, help="Rank: items kept per user.")
@click.option(
    "--on-error",
    type=click.Choice(["fail", "skip"]),
    default="fail",
    show_default=True,
    help="A bad row: stop naming its file and line, or write it to rejects/ and go on.",
)
@click.option("--resume", is_flag=True, help="Continue a stopped job in --out (the same job).")
@click.option("--force", is_flag=True, help="Delete --out first.")
@click.option(
    "--part-rows",
    type=int,
    help="Rows per part (the unit of commit and resume). [default: about 64 parts, 100 to 10,000 rows each]",
)
@click.option(
    "--max-row-bytes",
    default=1 << 20,
    show_default=True,
    help="A record longer than this is a row error (see --on-error), never read whole.",
)
@click.option("--batch-size", default=32, show_default=True, help="Texts per session run.")
@click.option(
    "--threads",
    type=int,
    help="onnxruntime threads per worker. [default: local with 1 worker: every core; else cores / workers, ray and spark 1]",
)
@click.option(
    "--workers",
    type=int,
    help="Parts at once: local threads (default 1), Ray actors, Spark tasks (default cores / threads).",
)
@click.option(
    "--address",
    help="Ray: an existing cluster ('auto', 'ray://host:10001'). [default: a local one]",
)
@click.option("--master", help="Spark master, e.g. spark://host:7077. [default: local[--workers]]")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
def command(
    bundle: str,
    input_path: str,
    out: str,
    engine: str,
    input_format: str | None,
    out_format: str | None,
    text_field: str,
    all_scores: bool,
    embed: bool,
    prefix: str,
    user_field: str,
    candidates: str | None,
    k: int,
    on_error: str,
    resume: bool,
    force: bool,
    part_rows: int | None,
    max_row_bytes: int,
    batch_size: int,
    threads: int | None,
    workers: int | None,
    address: str | None,
    master: str | None,
    no_progress: bool,
) -> None:
    """Score INPUT (JSONL, CSV, TSV or Parquet; a file or a folder) with BUNDLE into --out.

    Classify bundles add label and score to every row; rank bundles write the top --k
    candidates of each user (fields user, liked, disliked), the user's own history excluded.
    """
    from rec_edge.scoring import score

    config = ScoreConfig(
        bundle=bundle,
        input=input_path,
        out=out,
        engine=engine,
        input_format=input_format,
        out_format=out_format,
        text_field=text_field,
        all_scores=all_scores,
        embed=embed,
        prefix=prefix,
        user_field=user_field,
        candidates=candidates,
        k=k,
        on_error=on_error,
        resume=resume,
        force=force,
        part_rows=part_rows,
        max_row_bytes=max_row_bytes,
        batch_size=batch_size,
        threads=threads,
        workers=workers,
        address=address,
        master=master,
        progress=not no_progress,
    )
    result = score(config)
    echo_json(
        {
            "out": str(result.out),
            "parts": result.parts,
            "resumed_parts": result.resumed,
            "rows": result.rows,
            "written": result.written,
            "rejected": result.rejected,
            "seconds": round(result.seconds, 2),
            "rows_per_second": round(result.rows_per_second, 1),
        }
    )
