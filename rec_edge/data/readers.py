"""Read labelled examples from JSONL, CSV or TSV, naming the file, line and field of every problem."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from rec_edge.errors import DataError

_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes that surrogateescape kept
FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv"}


@dataclass(frozen=True)
class Example:
    text: str
    label: str | None
    instruction: str | None = None
    source: str = ""  # "file:line", for messages
    candidate: str | None = None  # rank: the item text scored against ``text`` (the user's side)
    negatives: tuple[str, ...] = ()  # rank, training: items the user never rated, scored "no"
    rated: frozenset[str] = frozenset()  # rank, training: every title the user rated


@dataclass
class ReadResult:
    examples: list[Example]
    skipped: list[str] = field(default_factory=list)  # one message per skipped row


def detect_format(path: Path, file_format: str | None = None) -> str:
    if file_format:
        return file_format
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r} "
            f"(known: {', '.join(sorted(FORMATS))}). Pass --format jsonl|csv|tsv."
        )
    return fmt


def _decode(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: not valid UTF-8 (byte {data[error.start]:#04x} at offset {error.start}). "
            "Re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8."
        ) from None


def invalid_utf8(cells: list[str]) -> str | None:
    """Why a row decoded with ``errors="surrogateescape"`` is not UTF-8 (None when it is): the
    first undecodable byte and its column."""
    for cell in cells:
        found = _UNDECODED.search(cell)
        if found:
            byte = ord(found.group()) - 0xDC00
            return (
                f"not valid UTF-8 (byte {byte:#04x} at column {found.start() + 1}); re-encode "
                "the input as UTF-8"
            )
    return None


def json_rows(text: str, first_line: int = 1) -> list[tuple[int, dict[str, object] | str]]:
    """(line number, object) of each non-blank JSONL line; a line that is not a JSON object
    (malformed, nested too deeply, or not UTF-8 where ``text`` was decoded with
    surrogateescape) is a message string. (Also ``rec-edge score``'s reader of a part.)"""
    rows: list[tuple[int, dict[str, object] | str]] = []
    # "\n" alone ends a line: JSON strings may hold raw U+2028, \x85 or \x1c, which
    # str.splitlines() would cut at; a "\r" before the "\n" is JSON whitespace
    for number, line in enumerate(text.split("\n"), start=first_line):
        if not line.strip():
            continue
        bad = invalid_utf8([line])
        if bad:
            rows.append((number, bad))
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            rows.append((number, f"malformed JSON ({error.msg} at column {error.colno})"))
            continue
        except RecursionError:
            rows.append((number, "JSON nested too deeply"))
            continue
        rows.append((number, value if isinstance(value, dict) else "a JSON object is expected"))
    return rows


def _rows(path: Path, fmt: str, text: str) -> list[tuple[int, dict[str, object] | str]]:
    """(line number, row) pairs; a row that cannot be parsed is a message string."""
    if fmt == "jsonl":
        return json_rows(text)
    rows: list[tuple[int, dict[str, object] | str]] = []
    # the csv module refuses cells over 128 KiB by default; a long article is a valid cell
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if fmt == "tsv" else ",")
    try:
        if reader.fieldnames is None:
            return rows
        columns = len(reader.fieldnames)
        last_line = reader.line_num
        for record in reader:
            extra = record.pop(None, None)
            if extra is not None:  # more cells than header columns
                rows.append((last_line + 1, f"{columns + len(extra)} cells for {columns} columns"))
            else:
                rows.append((last_line + 1, dict(record)))
            last_line = reader.line_num
    except csv.Error as error:
        raise DataError(f"{path}:{reader.line_num}: malformed {fmt.upper()} ({error})") from None
    return rows


def _field(row: dict[str, object], name: str, where: str, problems: list[str]) -> str | None:
    if name not in row or row[name] is None:
        problems.append(
            f"{where}: missing field '{name}' (fields: {', '.join(map(str, row)) or 'none'})"
        )
        return None
    value = row[name]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        problems.append(f"{where}: field '{name}' must be a string, got {type(value).__name__}")
        return None
    if not value.strip():
        problems.append(f"{where}: field '{name}' is empty")
        return None
    return value


def read_examples(
    path: str | Path,
    text_field: str = "text",
    label_field: str | None = "label",
    instruction_field: str | None = None,
    file_format: str | None = None,
    skip_invalid: bool = False,
) -> ReadResult:
    """Read every example of a file. Raises one DataError listing every problem, unless
    ``skip_invalid`` is set, in which case bad rows are skipped and listed in ``skipped``."""
    path = Path(path)
    fmt = detect_format(path, file_format)
    rows = _rows(path, fmt, _decode(path))
    examples: list[Example] = []
    problems: list[str] = []
    skipped: list[str] = []
    for number, row in rows:
        where = f"{path}:{number}"
        row_problems: list[str] = []
        if isinstance(row, str):
            row_problems.append(f"{where}: {row}")
        else:
            text = _field(row, text_field, where, row_problems)
            label = _field(row, label_field, where, row_problems) if label_field else None
            instruction = None
            if instruction_field and instruction_field in row:
                instruction = _field(row, instruction_field, where, row_problems)
            if not row_problems:
                assert text is not None
                examples.append(Example(text, label, instruction, where))
        (skipped if skip_invalid else problems).extend(row_problems)
    if problems:
        raise DataError(problems)
    if not examples:
        raise DataError(f"{path}: no examples (the file is empty or every row was skipped)")
    return ReadResult(examples, skipped)


def read_lines(path: Path) -> list[str]:
    """Every line of a UTF-8 file (blank ones too, so that positions are line numbers - 1)."""
    try:
        return path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8; re-encode the file as UTF-8.") from None
