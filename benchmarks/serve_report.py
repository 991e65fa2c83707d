"""summary.md and latency-vs-throughput charts (serve-predict.png, serve-rank.png) from the
serve.json that benchmarks/serve_load.py wrote: medians over rounds, every figure from one run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def median(rows: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in rows if key in r]
    return float(np.median(values)) if values else float("nan")


def table(kind: str, data: dict[str, Any]) -> list[str]:
    ref = data["in_process"]
    lines = [
        f"### {kind} ({data['bundle']})",
        "",
        f"In process ({ref['source']}): batch-1 p50 {ref['batch1_p50_ms']} ms, "
        f"batch 32 {ref['batch32_items_per_s']} items/s.",
        "",
        "| server | clients | answers/s | p50 ms | p95 ms | p99 ms | non-200 | RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for server, by_clients in data["closed_loop"].items():
        for clients, rows in by_clients.items():
            errors = sum(sum(v for k, v in r["statuses"].items() if k != "200") for r in rows)
            lines.append(
                f"| {server} | {clients} | {median(rows, 'ok_per_s'):.0f} | "
                f"{median(rows, 'p50_ms'):.2f} | {median(rows, 'p95_ms'):.2f} | "
                f"{median(rows, 'p99_ms'):.2f} | {errors} | {median(rows, 'rss_mb'):.0f} |"
            )
    bursts = data.get("overload_by_server") or {"rec-edge serve": data["overload"]}
    nominal = data.get("nominal_p99_ms_at_32_by_server") or {
        "rec-edge serve": data["nominal_p99_ms_at_32"]
    }
    for server, burst in bursts.items():
        inside = burst.get("server_side_admitted")
        lines += [
            "",
            f"Overload on {server}: {burst['n']} requests offered at "
            f"{burst['offered_per_s']} /s (target {burst['target_offered_per_s']}), statuses "
            f"{burst['statuses']}, admitted p50 / p99 {burst.get('p50_ms')} / "
            f"{burst.get('p99_ms')} ms at the client"
            + (
                f", {inside['p50_ms']} / {inside['p99_ms']} ms in the server (max "
                f"{inside['max_ms']})"
                if inside
                else ""
            )
            + f" (nominal p99 at 32 clients {nominal[server]:.2f} ms), RSS max "
            f"{burst['rss_mb_first_third_max']} MB in the first third, "
            f"{burst['rss_mb_last_third_max']} MB in the last; nominal latency again "
            f"{burst['seconds_to_nominal_after_burst']} s after the burst.",
        ]
    return [*lines, ""]


def backfill_server_side(folder: Path, report: dict[str, Any]) -> None:
    """For a serve.json written before serve_load.py measured it: each overload burst's
    admitted requests timed by the server, from servers.log (each server's start is a "ready:"
    line; the bursts are the last starts, in the order of overload_by_server). One kind only."""
    log = folder / "servers.log"
    if not log.is_file():
        return
    from serve_load import admitted_in_burst

    segments: list[list[str]] = []
    for line in log.read_text("utf-8", "replace").splitlines():
        if line.startswith("ready:"):
            segments.append([])
        elif segments:
            segments[-1].append(line)
    kinds = [kind for kind in ("predict", "rank") if kind in report]
    if len(kinds) != 1:  # the starts of two kinds interleave: not told apart here
        return
    bursts = list(report[kinds[0]].get("overload_by_server", {}).values())
    if (
        not bursts
        or any("server_side_admitted" in b for b in bursts)
        or len(segments) < len(bursts)
    ):
        return
    for burst, lines in zip(bursts, segments[-len(bursts) :], strict=True):
        burst["server_side_admitted"] = admitted_in_burst(lines)
    (folder / "serve.json").write_text(json.dumps(report, indent=1))


def chart(kind: str, data: dict[str, Any], path: Path, where: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for n, (server, by_clients) in enumerate(data["closed_loop"].items()):
        clients = sorted(by_clients, key=int)
        x = [median(by_clients[c], "ok_per_s") for c in clients]
        for key, style in (("p50_ms", "-o"), ("p99_ms", ":^")):
            y = [median(by_clients[c], key) for c in clients]
            label = f"{server} {key[:3]}"
            ax.plot(x, y, style, label=label, alpha=0.85, color=f"C{n}")
            if key == "p50_ms":
                for xi, yi, c in zip(x, y, clients, strict=True):
                    ax.annotate(c, (xi, yi), textcoords="offset points", xytext=(3, 3), fontsize=7)
    ref = data["in_process"]["batch32_items_per_s"]
    ax.axvline(ref, color="grey", lw=0.8, ls="--", label="in-process batch 32")
    ax.set_yscale("log")
    ax.set_xlabel("answers per second (numbers: concurrent clients)")
    ax.set_ylabel("latency ms (log)")
    ax.set_title(f"rec-edge serve, {kind}: latency vs throughput ({where}, loopback)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/serve")
    report = json.loads((folder / "serve.json").read_text())
    backfill_server_side(folder, report)
    m = report["machine"]
    lines = [
        f"# Serving load test, {m['date']}",
        "",
        f"{m['cpu']}, {m['usable_cores']} usable cores, {m['memory_gb']} GB; python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + ". Medians over rounds.",
        "",
    ]
    pin = report["config"].get("pin")
    server, _, client = (pin or "").partition(":")
    where = (
        f"server on CPU {server}, client on {client}"
        if pin
        else f"{m['usable_cores']} cores shared"
    )
    if pin:
        lines[2] = lines[2].replace(". Medians", f". Pinned: {where}. Medians")
    for kind in ("predict", "rank"):
        if kind in report:
            lines += table(kind, report[kind])
            chart(kind, report[kind], folder / f"serve-{kind}.png", where)
    (folder / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
