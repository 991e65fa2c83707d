"""Torch-free: an input cut into parts of N rows, and the rows of one part, each with its line.

A part is a byte range of a JSONL/CSV/TSV file (cut at record boundaries, so a quoted CSV cell
with newlines stays whole) or a run of Parquet row groups. Planning reads the input once, without
parsing it; any worker can then read its part alone, and every problem names the file and line.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rec_edge.data.readers import invalid_utf8, json_rows
from rec_edge.errors import DataError, MissingDependencyError

SUFFIXES = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
}
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Part:
    """Rows [first_row, first_row + rows) of one input file; ``start``/``stop`` are byte offsets
    (line formats) or row-group indices (Parquet); ``first_line`` the line (Parquet: row) number
    of its first record, 1-based; ``header`` the CSV/TSV column names."""

    index: int
    path: str
    fmt: str
    start: int
    stop: int
    first_line: int
    rows: int
    header: tuple[str, ...] | None = None
    refused: str | None = None  # a record over --max-row-bytes, alone in its part: never read

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Part:
        data = json.loads(text)
        header = data.pop("header")
        return cls(**data, header=tuple(header) if header is not None else None)


def input_files(path: str | Path, fmt: str | None = None) -> tuple[list[Path], str]:
    """The files of an input (a file, or a folder's files of one format, sorted) and the format."""
    root = Path(path)
    if root.is_dir():
        files = sorted(
            p
            for p in root.iterdir()
            if p.is_file() and not p.name.startswith((".", "_")) and p.suffix.lower() in SUFFIXES
        )
        if not files:
            raise DataError(f"{root}: no input files (known suffixes: {', '.join(SUFFIXES)})")
    elif root.is_file():
        files = [root]
    else:
        raise DataError(f"{root}: file not found")
    unknown = [p for p in files if fmt is None and p.suffix.lower() not in SUFFIXES]
    if unknown:
        raise DataError(
            f"{unknown[0]}: cannot tell the format from the suffix {unknown[0].suffix!r} "
            f"(known: {', '.join(SUFFIXES)}). Pass --input-format jsonl|csv|tsv|parquet."
        )
    formats = {fmt or SUFFIXES[p.suffix.lower()] for p in files}
    if len(formats) > 1:
        raise DataError(
            f"{root}: files of several formats ({', '.join(sorted(formats))}); one only"
        )
    return files, formats.pop()


# without --part-rows: about PARTS_PER_JOB parts (work for every worker, progress to see),
# within [MIN_PART_ROWS, MAX_PART_ROWS]; it follows from the input alone, so that a job plans the
# same parts on every engine and when resumed
PARTS_PER_JOB, MIN_PART_ROWS, MAX_PART_ROWS = 64, 100, 10_000


MAX_ROW_BYTES = 1 << 20  # a record past it is refused unread (a row error), not tokenized whole
LINE_CHUNK = 1 << 16  # the planner reads lines in pieces: a huge line is never held whole


def plan_parts(
    files: list[Path], fmt: str, part_rows: int | None = None, max_row_bytes: int = MAX_ROW_BYTES
) -> list[Part]:
    """Every part of the input, numbered across its files; ``part_rows`` None: by its size. A
    record over ``max_row_bytes`` is a part of its own that ``read_part`` refuses unread."""
    if part_rows is None:
        part_rows = auto_part_rows(sum(count_rows(path, fmt) for path in files))
    parts: list[Part] = []
    for path in files:
        planned = (
            _parquet_parts(path, part_rows)
            if fmt == "parquet"
            else _line_parts(path, fmt, part_rows, max_row_bytes)
        )
        parts += [replace(p, index=len(parts) + i) for i, p in enumerate(planned)]
    return parts


def auto_part_rows(rows: int) -> int:
    return min(MAX_PART_ROWS, max(MIN_PART_ROWS, -(-rows // PARTS_PER_JOB)))


def count_rows(path: Path, fmt: str) -> int:
    """Records in a file (a CSV/TSV header not counted)."""
    if fmt == "parquet":
        return int(_pyarrow_parquet().ParquetFile(path).metadata.num_rows)
    with path.open("rb") as f:
        return max(0, sum(1 for _ in _records(f, fmt)) - (fmt != "jsonl"))


def _records(f: io.BufferedReader, fmt: str) -> Iterator[tuple[int, int, int]]:
    """(byte offset, line number, byte end) of each non-blank record; a CSV record ends at a
    newline outside quotes (an even count of '"' so far: RFC 4180 doubles them inside cells)."""
    offset, line = 0, 0
    start, start_line, quotes = -1, 0, 0
    for length, line_quotes, blank in _lines(f):
        line += 1
        if start < 0:
            if blank:
                offset += length
                continue
            start, start_line, quotes = offset, line, 0
        offset += length
        if fmt != "jsonl":
            quotes += line_quotes
            if quotes % 2:
                continue
        yield start, start_line, offset
        start = -1
    if start >= 0:  # an unclosed quote: the rest is one record, which the reader will refuse
        yield start, start_line, offset


def _lines(f: io.BufferedReader) -> Iterator[tuple[int, int, bool]]:
    """(bytes, '"' count, blank) of each line, read in pieces of at most LINE_CHUNK bytes."""
    length, quotes, blank = 0, 0, True
    while True:
        piece = f.readline(LINE_CHUNK)
        if not piece:
            if length:
                yield length, quotes, blank
            return
        length += len(piece)
        quotes += piece.count(b'"')
        blank = blank and not piece.strip()
        if piece.endswith(b"\n"):
            yield length, quotes, blank
            length, quotes, blank = 0, 0, True


def _line_parts(path: Path, fmt: str, part_rows: int, max_row_bytes: int) -> list[Part]:
    parts: list[Part] = []
    header: tuple[str, ...] | None = None
    with path.open("rb") as f:
        records = _records(f, fmt)
        if fmt != "jsonl":
            first = next(records, None)
            if first is None:
                return []
            if first[2] - first[0] > max_row_bytes:
                raise DataError(f"{path}:{first[1]}: the header is over {max_row_bytes} bytes")
            header = _header(path, fmt, first[1], _read_range(path, first[0], first[2]))
        run: list[tuple[int, int, int]] = []
        for record in records:
            size = record[2] - record[0]
            if size > max_row_bytes:  # alone in a part of its own, refused unread
                if run:
                    parts.append(_line_part(path, fmt, run, header))
                    run = []
                why = f"the row is {size} bytes; at most {max_row_bytes} (--max-row-bytes)"
                parts.append(replace(_line_part(path, fmt, [record], header), refused=why))
                continue
            run.append(record)
            if len(run) == part_rows:
                parts.append(_line_part(path, fmt, run, header))
                run = []
        if run:
            parts.append(_line_part(path, fmt, run, header))
    return parts


def _line_part(
    path: Path, fmt: str, run: list[tuple[int, int, int]], header: tuple[str, ...] | None
) -> Part:
    return Part(0, str(path), fmt, run[0][0], run[-1][2], run[0][1], len(run), header)


def _read_range(path: str | Path, start: int, stop: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(stop - start)


def _header(path: Path, fmt: str, line: int, head: bytes) -> tuple[str, ...]:
    text = _decode(head.removeprefix(BOM), str(path), line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if fmt == "tsv" else ",")
    names = next(reader, [])
    if not names or len(set(names)) != len(names) or not all(names):
        raise DataError(f"{path}:{line}: the header {names} must name each column once")
    return tuple(names)


def _parquet_parts(path: Path, part_rows: int) -> list[Part]:
    pq = _pyarrow_parquet()
    meta = pq.ParquetFile(path).metadata
    parts: list[Part] = []
    group, first, rows = 0, 0, 0
    for i in range(meta.num_row_groups):
        rows += meta.row_group(i).num_rows
        if rows >= part_rows or i == meta.num_row_groups - 1:
            parts.append(Part(0, str(path), "parquet", group, i + 1, first + 1, rows))
            group, first, rows = i + 1, first + rows, 0
    return parts


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError(
            "Parquet needs pyarrow: pip install 'rec-edge[parquet]' (or [ray], [spark])."
        ) from None
    return pq


def _decode(data: bytes, path: str, first_line: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = first_line + data[: error.start].count(b"\n")
        raise DataError(
            f"{path}:{line}: not valid UTF-8 (byte {data[error.start]:#04x}). Re-encode the file "
            "as UTF-8, e.g. iconv -f latin1 -t utf-8."
        ) from None


Row = dict[str, Any] | str  # a record, or why it could not be read


def read_part(part: Part) -> list[tuple[int, Row]]:
    """(line number, row) of every record of a part; a record that cannot be read is a message."""
    if part.refused is not None:
        return [(part.first_line, part.refused)]
    if part.fmt == "parquet":
        table = (
            _pyarrow_parquet()
            .ParquetFile(part.path)
            .read_row_groups(list(range(part.start, part.stop)))
        )
        return list(enumerate(table.to_pylist(), start=part.first_line))
    data = _read_range(part.path, part.start, part.stop)
    if part.start == 0:
        data = data.removeprefix(BOM)
    # a byte that is not UTF-8 spoils its own row only (a row error, honoured by --on-error skip)
    text = data.decode("utf-8", errors="surrogateescape")
    if part.fmt == "jsonl":
        return json_rows(text, part.first_line)
    return _csv_rows(text, part)


def _csv_rows(text: str, part: Part) -> list[tuple[int, Row]]:
    assert part.header is not None
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))  # a long article is one cell
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if part.fmt == "tsv" else ",")
    rows: list[tuple[int, Row]] = []
    columns = len(part.header)
    line = part.first_line
    try:
        for cells in reader:
            if cells:
                bad = invalid_utf8(cells)
                if bad:
                    rows.append((line, bad))
                elif len(cells) != columns:
                    rows.append((line, f"{len(cells)} cells for {columns} columns"))
                else:
                    rows.append((line, dict(zip(part.header, cells, strict=True))))
            line = part.first_line + reader.line_num
    except csv.Error as error:
        rows.append((line, f"malformed {part.fmt.upper()} ({error})"))
    return rows


def first_fields(part: Part) -> list[str]:
    """The field names of a part's first record (CSV/TSV: the header; Parquet: the schema)."""
    if part.header is not None:
        return list(part.header)
    if part.fmt == "parquet":
        return list(_pyarrow_parquet().ParquetFile(part.path).schema_arrow.names)
    with open(part.path, "rb") as f:
        f.seek(part.start)
        line = f.readline()
    try:
        value = json.loads(line.removeprefix(BOM))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return []
    return list(value) if isinstance(value, dict) else []
