"""Reports of a benchmark: a terminal table, JSON (every raw figure), Markdown, and a PNG chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MB = 1e6


def _cpu(data: dict[str, Any]) -> str:
    m = data["machine"]
    return (
        f"{m['cpu']} ({m['arch']}, {m['usable_cores']} usable cores, flags: {' '.join(m['flags'])})"
    )


def latency_rows(data: dict[str, Any]) -> list[list[str]]:
    rows = []
    for r in data["results"]:
        s = r["stats"]
        speed = r.get("speedup_vs_baseline")
        frac = r.get("fraction_of_peak")
        rows.append(
            [
                r["engine"],
                r["workload"],
                str(r["threads"]),
                str(r["batch_size"]),
                f"{s['p50'] * 1e3:.2f}",
                f"{s['p95'] * 1e3:.2f}",
                f"{s['p99'] * 1e3:.2f}",
                f"{s['std'] * 1e3:.2f}",
                f"{s['throughput']:.1f}",
                f"{speed:.2f}x" if speed else "-",
                f"{frac * 100:.1f}% {r['peak_kind']}" if frac else "-",
            ]
        )
    return rows


LATENCY_HEAD = [
    "engine",
    "workload",
    "threads",
    "batch",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "std ms",
    "items/s",
    "speedup",
    "of peak",
]


def engine_rows(data: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, e in data["engines"].items():
        cold = data["cold_start"].get(name, {})
        acc = e.get("accuracy")
        rows.append(
            [
                name,
                str(e.get("recipe")),
                f"{e['model_bytes'] / MB:.1f}",
                f"{acc:.4f}" if acc is not None else "-",
                f"{cold['process_seconds_p50']:.3f}"
                if "process_seconds_p50" in cold
                else cold.get("error", "-"),
                f"{cold['in_process_seconds_p50']:.3f}"
                if "in_process_seconds_p50" in cold
                else "-",
                f"{cold['peak_rss_bytes'] / MB:.0f}" if "peak_rss_bytes" in cold else "-",
                f"{e.get('peak_rss_bytes', 0) / MB:.0f}",
            ]
        )
    return rows


ENGINE_HEAD = [
    "engine",
    "recipe",
    "model MB",
    "accuracy",
    "cold start s (process)",
    "cold start s (in-process)",
    "cold RSS MB",
    "serving peak RSS MB",
]


def text_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join(
        [
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
            *("| " + " | ".join(r) + " |" for r in rows),
        ]
    )


def terminal(data: dict[str, Any]) -> str:
    parts = [
        text_table(LATENCY_HEAD, latency_rows(data)),
        "",
        text_table(ENGINE_HEAD, engine_rows(data)),
    ]
    parts += [
        "",
        f"speedup: baseline p50 / engine p50 (baseline: {data['baseline']}); {data['isolation']}",
        f"machine: {_cpu(data)}",
    ]
    parts += [f"note: {n}" for n in data["notes"]]
    return "\n".join(parts)


def markdown(data: dict[str, Any]) -> str:
    v = data["versions"]
    peak = data.get("peak") or {}
    peak_lines = [
        f"- {t} threads: fp32 {p['fp32_macs'] / 1e9:.1f} GMAC/s, int8 {p['int8_macs'] / 1e9:.1f} GMAC/s "
        f"(onnxruntime matmul 1024^3, best of 10)"
        for t, p in peak.items()
        if t != "theoretical"
    ]
    for t, th in (peak.get("theoretical") or {}).items():
        peak_lines.append(
            f"- theoretical at {th['clock_mhz']:.0f} MHz, {t} threads: fp32 {th['fp32_macs'] / 1e9:.0f}, "
            f"int8 {th['int8_macs'] / 1e9:.0f} GMAC/s ({th['note']})"
        )
    return (
        "\n".join(
            [
                f"# rec-edge bench, {data['created']}",
                "",
                f"Machine: {_cpu(data)}, {data['machine']['memory_bytes'] / 1e9:.0f} GB. ",
                "Versions: " + ", ".join(f"{k} {v[k]}" for k in sorted(v)) + ".",
                f"Isolation: {data['isolation']}. Calls interleaved round-robin; {data['config']['iterations']} timed calls "
                f"after {data['config']['warmup']} warm-up per engine and batch size.",
                "",
                "## Latency",
                "",
                markdown_table(LATENCY_HEAD, latency_rows(data)),
                "",
                f"speedup = p50 of `{data['baseline']}` / p50 of the engine, same workload and batch. "
                "'of peak' = multiply-accumulates per item (from the model's dimensions) x items/s, over the matmul peak below.",
                "",
                "## Engines: size, accuracy, cold start, memory",
                "",
                markdown_table(ENGINE_HEAD, engine_rows(data)),
                "",
                "## Machine peak (measured the same run)",
                "",
                *peak_lines,
                "",
                *(f"- note: {n}" for n in data["notes"]),
            ]
        )
        + "\n"
    )


def plot(data: dict[str, Any], path: Path) -> bool:
    """Latency by batch size per engine, and the percentile spread. False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for engine in dict.fromkeys(r["engine"] for r in data["results"]):
        rows = [
            r
            for r in data["results"]
            if r["engine"] == engine
            and r["threads"] == data["results"][0]["threads"]
            and r["workload"] == data["results"][0]["workload"]
        ]
        left.plot(
            [r["batch_size"] for r in rows],
            [r["stats"]["p50"] * 1e3 for r in rows],
            marker="o",
            label=engine,
        )
    left.set(
        xscale="log",
        yscale="log",
        xlabel="batch size",
        ylabel="p50 latency per call (ms)",
        title="Latency by batch size",
    )
    left.legend(fontsize=8)
    labels, spreads = [], []
    for r in data["results"]:
        if (
            r["batch_size"] == min(x["batch_size"] for x in data["results"])
            and r["workload"] == data["results"][0]["workload"]
        ):
            labels.append(r["engine"])
            spreads.append([s * 1e3 for s in r["samples"]])
    right.boxplot(spreads, whis=(1, 99), showfliers=False)
    right.set_xticks(range(1, len(labels) + 1), labels, rotation=20, fontsize=8)
    right.set(
        ylabel="latency per call (ms)",
        yscale="log",
        title="Spread at the smallest batch (whiskers p1-p99)",
    )
    fig.suptitle(_cpu(data), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_reports(data: dict[str, Any], out: Path, with_plot: bool = True) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "bench.json", out / "bench.md"]
    written[0].write_text(json.dumps(data, indent=1), encoding="utf-8")
    written[1].write_text(markdown(data), encoding="utf-8")
    if with_plot and plot(data, out / "bench.png"):
        written.append(out / "bench.png")
    return written
