"""`rec-edge generate`: a decoder bundle's answer to a prompt, streamed to the terminal (torch-free)."""

from __future__ import annotations

import sys

import click


@click.command("generate")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.argument("prompt")
@click.option("--max-new-tokens", default=128, show_default=True, help="Tokens written at most.")
@click.option(
    "--temperature", default=0.0, show_default=True, help="0: greedy; above: sampled, seeded."
)
@click.option("--top-p", default=1.0, show_default=True, help="Sample from this share of the mass.")
@click.option("--seed", type=int, help="Seed of the sampling. [default: fresh each run]")
@click.option("--stop", multiple=True, help="Stop before this string; repeatable.")
@click.option(
    "--choice",
    "choices",
    multiple=True,
    help="Answer with the most likely of these options instead of writing; repeatable.",
)
@click.option(
    "--raw",
    is_flag=True,
    help="PROMPT is the whole prompt: no chat format and no instruction around it.",
)
@click.option("--provider", default="cpu", show_default=True, help="cpu, cuda, ...")
@click.option("--threads", type=int, help="intra-op threads. [default: onnxruntime's choice]")
def command(
    bundle: str,
    prompt: str,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    seed: int | None,
    stop: tuple[str, ...],
    choices: tuple[str, ...],
    raw: bool,
    provider: str,
    threads: int | None,
) -> None:
    """Answer PROMPT with the decoder bundle BUNDLE, writing the text as it comes.

    PROMPT goes into the user's turn of the model's chat format (after the bundle's
    instruction, if it has one) unless --raw.
    """
    from rec_edge.config import GenerationConfig
    from rec_edge.runtime import Generator

    config = GenerationConfig(max_new_tokens, temperature, top_p, seed, stop)
    generator = Generator.load(bundle, provider=provider, threads=threads)
    whole = prompt if raw else generator.prompt(prompt)
    if choices:
        click.echo(generator.choose(whole, choices))
        return
    for piece in generator.stream(whole, config):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
