"""`rec-edge score`: a bundle over a file or folder of any size, into a folder of parts, on one
process, Ray or Spark (torch-free)."""

from __future__ import annotations

from typing import Any

import click

from rec_edge.cli._common import config_options, echo_json
from rec_edge.config import ScoreConfig


@click.command("score")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True))
@config_options(ScoreConfig)  # declared there, with their help
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
def command(bundle: str, input_path: str, no_progress: bool, **options: Any) -> None:
    """Score INPUT (JSONL, CSV, TSV or Parquet; a file or a folder) with BUNDLE into --out.

    Classify bundles add label and score to every row; rank bundles write the top --k
    candidates of each user (fields user, liked, disliked), the user's own history excluded.
    """
    from rec_edge.scoring import score

    config = ScoreConfig(bundle=bundle, input=input_path, progress=not no_progress, **options)
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
