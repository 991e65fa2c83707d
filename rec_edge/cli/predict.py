"""`rec-edge predict`: texts or a file in, JSONL out, with the torch-free Predictor."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from rec_edge.cli._common import input_options, runtime_options
from rec_edge.data.readers import read_lines
from rec_edge.tasks import task_spec

if TYPE_CHECKING:
    from rec_edge.runtime import GenerativeRanker, Ranker


def read_inputs(path: Path, text_field: str) -> list[str]:
    """JSONL (objects with text_field, or strings), CSV/TSV with a text_field column, or plain lines."""
    from rec_edge.data.readers import FORMATS, read_examples

    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:  # plain text: one input per line
        return [line for line in read_lines(path) if line.strip()]
    return [e.text for e in read_examples(path, text_field, None, None, fmt).examples]


def _write(out: TextIO, texts: list[str], predictions: list, as_json: bool) -> None:
    for text, p in zip(texts, predictions, strict=True):
        if as_json or out is not sys.stdout:
            out.write(
                json.dumps(
                    {
                        "text": text,
                        "label": p.label,
                        "score": round(p.score, 6),
                        "scores": {k: round(v, 6) for k, v in p.scores.items()},
                    }
                )
                + "\n"
            )
        else:
            out.write(f"{p.label}\t{p.score:.3f}\t{text}\n")


@click.command("predict")
@click.argument("bundle", type=click.Path(file_okay=False))
@click.argument("texts", nargs=-1)
@input_options
@runtime_options
@click.option(
    "--json", "as_json", is_flag=True, help="JSONL on stdout (label, score, every label's score)."
)
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
    as_json: bool,
) -> None:
    """Classify TEXTS (or the texts of --input) with the bundle BUNDLE, torch-free.

    With a rank bundle each TEXT (or input line) is a JSON request
    {"liked": [...], "disliked": [...], "candidates": [...], "k": 5}; the output is JSONL.

    Prints `label<TAB>score<TAB>text` per text, or JSONL with --json / --output.
    A summary line goes to stderr.
    """
    from rec_edge.runtime import load

    if not texts and input_file is None:
        raise click.UsageError("Give TEXTS or --input FILE.")
    started = time.perf_counter()
    predictor = load(bundle, provider=provider, threads=threads, fallback=fallback)
    if task_spec(predictor.manifest.task).ranks:  # one JSON request per TEXT or line of --input
        requests = [(f"request {i}", t) for i, t in enumerate(texts, start=1)]
        if input_file:
            lines = enumerate(read_lines(input_file), start=1)
            requests += [(f"{input_file}:{n}", line) for n, line in lines if line.strip()]
        _rank_requests(predictor, requests, output)
        return
    items = list(texts) + (read_inputs(input_file, text_field) if input_file else [])
    out: TextIO = output.open("w", encoding="utf-8") if output else sys.stdout
    try:
        chunk = batch_size * 8
        with click.progressbar(
            length=len(items), label="predicting", file=sys.stderr, hidden=input_file is None
        ) as bar:
            for start in range(0, len(items), chunk):
                part = items[start : start + chunk]
                _write(out, part, predictor.predict(part, batch_size=batch_size), as_json)
                bar.update(len(part))
    finally:
        if output:
            out.close()
    seconds = time.perf_counter() - started
    click.echo(
        f"{len(items)} texts in {seconds:.2f} s on {predictor.provider}"
        f"{f', {predictor.truncated} truncated to {predictor.manifest.max_length} tokens' if predictor.truncated else ''}"
        f"{f' -> {output}' if output else ''}",
        err=True,
    )


def _rank_requests(
    predictor: Ranker | GenerativeRanker, requests: list[tuple[str, str]], output: Path | None
) -> None:
    """Each request: {"liked": [...], "disliked": [...], "candidates": [...], "k": 10}; JSONL out."""
    from rec_edge.runtime.requests import parse_rank_request

    parsed = [parse_rank_request(request, where) for where, request in requests]  # all, first
    out: TextIO = output.open("w", encoding="utf-8") if output else sys.stdout
    try:
        for r in parsed:
            ranked = predictor.rank(r.history, r.candidates, r.k)
            out.write(
                json.dumps(
                    {
                        "ranked": [
                            {"item": r.item, "score": round(r.score, 6), "enjoy": round(r.enjoy, 6)}
                            for r in ranked
                        ]
                    }
                )
                + "\n"
            )
    finally:
        if output:
            out.close()
