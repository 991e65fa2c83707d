"""How `train --compare-templates` should choose: each rule's test accuracy on compared runs.

A compared run (``fewshot.py``'s ``rec-edge+compare``) holds both candidates' validation and test
figures, so any rule for keeping the instruction can be applied afterwards without training again.
For each cell (data set, K) this prints, over its seeds, the test accuracy of: the raw text
always, the instruction always, each rule below, and the oracle (the better candidate on test,
which no rule can know); and for each rule how often it kept the instruction and how often that
was right on test.

- ``accuracy``: the instruction when its validation accuracy is strictly higher (the rule of
  ``train.compare.choose``);
- ``paired hits``: the instruction when c - b > sqrt(b + c), b and c the validation texts only the
  raw text or only the instruction gets right (McNemar's z above 1; measured, not adopted);
- ``paired log-prob``: the instruction when its mean gain in each validation text's true-label
  log-probability is more than one standard error (measured, not adopted).

Runs from before the paired counts were recorded take part in the first rule only.

    python benchmarks/template_rules.py benchmarks/results/fewshot-fresh-seeds/runs.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from collections.abc import Callable
from typing import Any

Rule = Callable[[dict[str, Any]], bool | None]  # True: keep the instruction; None: cannot tell


def by_accuracy(compared: dict[str, Any]) -> bool:
    raw, instruction = (compared[n]["validation"]["accuracy"] for n in ("raw", "instruction"))
    return instruction > raw


def by_paired_hits(compared: dict[str, Any]) -> bool | None:
    pairs = compared.get("discordant")
    if not pairs:
        return None
    b, c = pairs["raw_only"], pairs["instruction_only"]
    return c - b > (b + c) ** 0.5


def by_paired_log_prob(compared: dict[str, Any]) -> bool | None:
    gain = compared.get("log_prob")
    if not gain:
        return None
    return gain["mean_gain"] > gain["standard_error"]


RULES: dict[str, Rule] = {
    "accuracy": by_accuracy,
    "paired hits": by_paired_hits,
    "paired log-prob": by_paired_log_prob,
}


def read(paths: list[str]) -> list[dict[str, Any]]:
    runs = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                compared = record.get("templates_compared")
                if compared and compared["instruction"]["test"] and record["k"] > 0:
                    runs.append(record)
    return runs


def table(runs: list[dict[str, Any]]) -> str:
    cells: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for record in runs:
        cells[(record["dataset"], record["k"])].append(record)
    lines = [
        "| data set | K | seeds | raw always | instruction always | "
        + " | ".join(f"{name} (kept instruction: right)" for name in RULES)
        + " | oracle |",
        "|---|---|---|---|---|" + "---|" * len(RULES) + "---|",
    ]
    for (dataset, k), records in sorted(cells.items()):
        tests = [
            {n: r["templates_compared"][n]["test"]["accuracy"] for n in ("raw", "instruction")}
            for r in records
        ]
        row = [dataset, str(k), str(len(records))]
        row += [f"{statistics.mean(t[n] for t in tests):.4f}" for n in ("raw", "instruction")]
        for rule in RULES.values():
            picks = [rule(r["templates_compared"]) for r in records]
            if any(p is None for p in picks):
                row.append("-")
                continue
            kept = [t["instruction"] if p else t["raw"] for p, t in zip(picks, tests, strict=True)]
            right = sum(
                p and t["instruction"] > t["raw"] for p, t in zip(picks, tests, strict=True)
            )
            row.append(f"{statistics.mean(kept):.4f} ({sum(bool(p) for p in picks)}: {right})")
        row.append(f"{statistics.mean(max(t.values()) for t in tests):.4f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="fewshot.py runs.jsonl files")
    print(table(read(parser.parse_args().runs)), end="")


if __name__ == "__main__":
    main()
