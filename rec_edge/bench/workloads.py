"""What `run_benchmark` times (TORCH-FREE): the texts or rank requests of each workload, their
token and MAC cost, and the seeded batches every engine runs in the same order."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.bench.machine import macs_per_item
from rec_edge.bundle import load_bundle
from rec_edge.config import BenchConfig
from rec_edge.errors import ConfigError, DataError
from rec_edge.runtime.tokenize import BundleTokenizer


@dataclass
class Workloads:
    """The bundles' task, the named pools of texts (or rank requests) and their gold labels."""

    rank: bool
    pools: list[tuple[str, list[str]]]  # (workload name, texts or JSON rank requests)
    gold: list[str] | None  # expected label (or item) of the text file's entries, in order
    templates: Any  # the first bundle's TemplateSet
    tokenizer: BundleTokenizer  # the first bundle's, for token counts
    dims: dict[str, Any]  # the source model's dimensions, for MACs
    labels: list[str]  # the first bundle's, as its template renders them

    @property
    def texts(self) -> list[str]:
        return self.pools[0][1]

    def cost(self, pool: list[str]) -> tuple[float, float | None]:
        """Mean tokens per item and, for rank requests, encoder MACs per request."""
        if self.rank:
            return _request_cost(pool, self.tokenizer, self.templates, self.dims)
        rendered = [self.templates.render(t, labels=self.labels) for t in pool[:512]]
        return float(np.mean([len(e.ids) for e in self.tokenizer.encode(rendered)])), None


def read_workloads(config: BenchConfig, bundles: list[Path]) -> Workloads:
    """The text file's texts or rank requests (checked), or one synthetic pool per seq length."""
    from rec_edge.data.templates import TemplateSet

    tasks = {load_bundle(b, verify=False).manifest.task for b in bundles}
    if len(tasks) > 1:
        raise ConfigError("The bundles mix tasks (classify and rank); benchmark them apart.")
    rank = tasks == {"rank"}
    if rank and not config.text_file:
        raise ConfigError(
            "A rank bundle is benchmarked on rank requests: pass --text-file with one JSON request "
            'per line ({"liked": [...], "disliked": [...], "candidates": [...]}); --label-field '
            "names the expected item, for HR@1."
        )
    gold: list[str] | None = None
    if config.text_file:
        texts, gold = _read_requests(config) if rank else _read_texts(config)
        if not texts:
            raise DataError(f"{config.text_file}: no texts")
        pools = [("requests" if rank else "text", texts)]
    else:
        pools = [(f"seq{n}", _synthetic_texts(bundles[0], n, 64)) for n in config.seq_lengths]
    first = load_bundle(bundles[0], verify=False)
    return Workloads(
        rank,
        pools,
        gold,
        TemplateSet.from_dict(first.manifest.templates),
        BundleTokenizer(first.tokenizer_path, first.manifest.max_length),
        first.manifest.source.get("dims") or {},
        list(first.manifest.labels),
    )


def _read_requests(config: BenchConfig) -> tuple[list[str], list[str] | None]:
    """Rank bundles: one JSON request per line, checked; gold = each request's label field."""
    import json

    from rec_edge.data.readers import read_lines
    from rec_edge.runtime.requests import parse_rank_request

    assert config.text_file is not None
    path = Path(config.text_file)
    lines = [(n, line) for n, line in enumerate(read_lines(path), start=1) if line.strip()]
    field = config.label_field
    texts, gold = [], []
    for n, line in lines[: config.max_texts]:
        where = f"{path}:{n}"
        try:
            body = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{where}: not valid JSON ({error})") from None
        if field:
            if not isinstance(body, dict) or not isinstance(body.get(field), str):
                raise DataError(f"{where}: field {field!r} (the expected item) is missing")
            gold.append(body.pop(field))
        text = json.dumps(body)
        parse_rank_request(text, where)  # every request checked before any engine starts
        texts.append(text)
    return texts, gold if config.label_field else None


def _request_cost(
    texts: list[str], tokenizer: BundleTokenizer, templates: Any, dims: dict[str, Any]
) -> tuple[float, float | None]:
    """Rank requests: mean tokens encoded per request, and the encoder MACs per request."""
    from rec_edge.runtime.requests import parse_rank_request

    render = templates.preference_renderer()
    tokens, macs = [], []
    for text in texts[:256]:
        r = parse_rank_request(text)
        lengths = [
            len(e.ids) for e in tokenizer.encode([render(r.liked, r.disliked), *r.candidates])
        ]
        tokens.append(sum(lengths))
        each = [macs_per_item(dims, n) for n in lengths]
        macs.append(None if None in each else sum(m or 0.0 for m in each))
    known = [m for m in macs if m is not None]
    return float(np.mean(tokens)), float(np.mean(known)) if len(known) == len(macs) else None


def _read_texts(config: BenchConfig) -> tuple[list[str], list[str] | None]:
    from rec_edge.data.readers import FORMATS, read_examples

    assert config.text_file is not None
    path = Path(config.text_file)
    if FORMATS.get(path.suffix.lower()) is None:
        lines = [line for line in path.read_text("utf-8").splitlines() if line.strip()]
        return lines[: config.max_texts], None
    examples = read_examples(path, config.text_field, config.label_field).examples
    random.Random(0).shuffle(examples)  # files are often sorted by label: sample across all of them
    examples = examples[: config.max_texts]
    labels = [str(e.label) for e in examples] if config.label_field else None
    return [e.text for e in examples], labels


def _synthetic_texts(bundle: Path, tokens: int, count: int) -> list[str]:
    """Texts that tokenize to exactly ``tokens`` tokens after the bundle's template."""
    from rec_edge.data.templates import TemplateSet

    b = load_bundle(bundle, verify=False)
    tokenizer = BundleTokenizer(b.tokenizer_path, max(tokens, b.manifest.max_length))
    templates = TemplateSet.from_dict(b.manifest.templates)
    base = len(tokenizer.encode([templates.render("", labels=b.manifest.labels)])[0].ids)
    if tokens > b.manifest.max_length:
        raise ConfigError(
            f"seq_length {tokens} exceeds the bundle's max_length {b.manifest.max_length}"
        )
    if tokens < base + 1:
        raise ConfigError(f"seq_length {tokens} is shorter than the template alone ({base} tokens)")
    return [" ".join(["a"] * (tokens - base))] * count


def batches(texts: list[str], batch_size: int, count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [[texts[rng.randrange(len(texts))] for _ in range(batch_size)] for _ in range(count)]
