"""Torch-free: the output folder of a scoring job, written so that nothing half-done looks whole.

    OUT/_job.json             the job (what is scored, how): a resumed job must match it
    OUT/part-00000.jsonl      one file per part, written under a hidden name, then renamed
    OUT/rejects/part-00000.jsonl   with --on-error skip: the rows refused, with file, line, why
    OUT/_stats/part-00000.json     the part's counts (rows, written, rejected, seconds)
    OUT/_SUCCESS.json         written last, when every part is in: rows, rejects, time

Files starting with "." or "_" are skipped by Spark, Hive and pyarrow dataset readers, so a
reader pointed at OUT sees committed parts only.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from rec_edge.errors import OutputError
from rec_edge.scoring.parts import _pyarrow_parquet

JOB_FILE = "_job.json"
SUCCESS_FILE = "_SUCCESS.json"
REJECTS = "rejects"
STATS = "_stats"  # per part: rows read, written, rejected, seconds


def part_name(index: int, fmt: str) -> str:
    return f"part-{index:05d}.{fmt}"


def write_atomic(path: Path, data: bytes) -> None:
    """``data`` at ``path``, all of it or nothing: a hidden temporary file, fsync, rename."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
        sync_folder(path.parent)  # the rename itself survives a crash
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise OutputError(
            f"{path}: cannot be written ({error.strerror or error}). The parts already written "
            "are kept: free the space (or fix the folder) and run the job again with --resume."
        ) from error


def sync_folder(folder: Path) -> None:
    """fsync a folder, so that a file renamed into it is there after a power cut (POSIX)."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_json(path: Path, value: Any) -> None:
    write_atomic(path, (json.dumps(value, indent=2) + "\n").encode())


def encode_rows(rows: list[dict[str, Any]], fmt: str) -> bytes:
    """Rows as the bytes of one file of ``fmt``."""
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    if fmt == "parquet":
        sink = io.BytesIO()
        _pyarrow_parquet().write_table(_arrow_table(rows), sink)
        return sink.getvalue()
    flat = [_flatten(r) for r in rows]
    columns = list(dict.fromkeys(key for r in flat for key in r))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(
        text, columns, delimiter="\t" if fmt == "tsv" else ",", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(flat)
    return text.getvalue().encode()


def _arrow_table(rows: list[dict[str, Any]]) -> Any:
    import pyarrow as pa

    return pa.Table.from_pylist(rows)


def _flatten(row: dict[str, Any]) -> dict[str, Any]:
    """CSV cells: a dict value (all scores) becomes one column per key, ``scores.<label>``."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            flat.update((f"{key}.{k}", v) for k, v in value.items())
        elif isinstance(value, list):
            flat[key] = json.dumps(value, ensure_ascii=False)
        else:
            flat[key] = value
    return flat


def done_parts(out: Path, fmt: str) -> set[int]:
    """The indices of the parts whose output file is in place."""
    prefix, suffix = "part-", f".{fmt}"
    return {
        int(p.name[len(prefix) : -len(suffix)])
        for p in out.glob(f"part-*{suffix}")
        if p.name[len(prefix) : -len(suffix)].isdigit()
    }


def remove_temporaries(out: Path) -> None:
    """Files an interrupted job left under hidden names: never part of the output."""
    for folder in (out, out / REJECTS, out / STATS):
        for path in folder.glob(".*.tmp") if folder.is_dir() else ():
            path.unlink()


def part_totals(out: Path, indices: set[int]) -> dict[str, int]:
    """Rows, written and rejected summed over the committed parts ``indices``."""
    totals = {"rows": 0, "written": 0, "rejected": 0}
    for index in sorted(indices):
        stats = json.loads((out / STATS / part_name(index, "json")).read_text())
        for key in totals:
            totals[key] += stats[key]
    return totals
