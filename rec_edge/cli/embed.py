"""`rec-edge embed`: texts or a file in, sentence vectors out as JSONL, with the torch-free
Predictor (a classify bundle's pooled, unit-length vector: what a vector index holds)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TextIO

import click

from rec_edge.cli._common import input_options, runtime_options
from rec_edge.cli.predict import read_inputs


@click.command("embed")
@click.argument("bundle", type=click.Path(file_okay=False))
@click.argument("texts", nargs=-1)
@input_options
@runtime_options
def command(
    bundle: str,
    texts: tuple[str, ...],
    input_file: Path | None,
    text_field: str,
    output: Path | None,
    provider: str,
    fallback: bool,
    threads: int | None,
    batch_size: int,
) -> None:
    """Embed TEXTS (or the texts of --input) with the classify bundle BUNDLE, torch-free.

    Writes JSONL, one {"text", "embedding"} per text (float32 values, unit length); a summary
    line goes to stderr. The vectors equal Predictor.embed's, whatever the batch.
    """
    from rec_edge.runtime import Predictor

    if not texts and input_file is None:
        raise click.UsageError("Give TEXTS or --input FILE.")
    started = time.perf_counter()
    predictor = Predictor.load(bundle, provider=provider, threads=threads, fallback=fallback)
    items = list(texts) + (read_inputs(input_file, text_field) if input_file else [])
    out: TextIO = output.open("w", encoding="utf-8") if output else sys.stdout
    try:
        chunk = batch_size * 8
        for start in range(0, len(items), chunk):
            part = items[start : start + chunk]
            vectors = predictor.embed(part, batch_size=batch_size)
            for text, vector in zip(part, vectors, strict=True):
                out.write(json.dumps({"text": text, "embedding": vector.tolist()}) + "\n")
    finally:
        if output:
            out.close()
    seconds = time.perf_counter() - started
    click.echo(
        f"{len(items)} texts embedded in {seconds:.2f} s on {predictor.provider}"
        f"{f' -> {output}' if output else ''}",
        err=True,
    )
