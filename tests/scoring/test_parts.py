"""Planning parts and reading them back: every record once, in order, with its line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rec_edge.errors import DataError
from rec_edge.scoring.output import encode_rows
from rec_edge.scoring.parts import input_files, plan_parts, read_part


def rows_of(path: Path, fmt: str, part_rows: int) -> list[tuple[int, object]]:
    return [row for part in plan_parts([path], fmt, part_rows) for row in read_part(part)]


def test_jsonl_parts_keep_lines_and_skip_blank_ones(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": "b"}\nnot json\n  \n{"text": "c"}\n[1]\n')
    parts = plan_parts([path], "jsonl", 2)
    assert [p.rows for p in parts] == [2, 2, 1]
    assert rows_of(path, "jsonl", 2) == [
        (1, {"text": "a"}),
        (3, {"text": "b"}),
        (4, "malformed JSON (Expecting value at column 1)"),
        (6, {"text": "c"}),
        (7, "a JSON object is expected"),
    ]


def test_csv_parts_keep_quoted_newlines_whole(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(
        b'\xef\xbb\xbfid,text\n1,"two\nlines"\n2,plain\n3,"say ""hi""\n\nthere"\n4,x,extra\n'
    )
    assert [p.rows for p in plan_parts([path], "csv", 2)] == [2, 2]
    assert rows_of(path, "csv", 2) == [
        (2, {"id": "1", "text": "two\nlines"}),
        (4, {"id": "2", "text": "plain"}),
        (5, {"id": "3", "text": 'say "hi"\n\nthere'}),
        (8, "3 cells for 2 columns"),
    ]


def test_tsv_and_an_unclosed_quote(tmp_path: Path) -> None:
    path = tmp_path / "in.tsv"
    path.write_text('text\tn\nok\t1\n"never closed\t2\nstill\t3\n')
    rows = rows_of(path, "tsv", 10)
    assert rows[0] == (2, {"text": "ok", "n": "1"})
    assert rows[1][0] == 3 and isinstance(rows[1][1], str)  # the rest is one bad record


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_invalid_utf8_spoils_its_own_row_only(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"in.{fmt}"
    if fmt == "jsonl":
        path.write_bytes(b'{"text": "a"}\n{"text": "b\xe9\xff"}\n{"text": "c"}\n')
    else:
        path.write_bytes(b'text\na\n"b\xe9\xff"\nc\n')
    (part,) = plan_parts([path], fmt, 10)
    rows = read_part(part)
    first = 1 if fmt == "jsonl" else 2
    assert [n for n, _ in rows] == [first, first + 1, first + 2]
    assert rows[0][1] == {"text": "a"} and rows[2][1] == {"text": "c"}
    assert (
        rows[1][1]
        == f"not valid UTF-8 (byte 0xe9 at column {12 if fmt == 'jsonl' else 2}); re-encode the input as UTF-8"
    )


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_row_over_the_byte_limit_is_refused_unread(
    tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rec_edge.scoring import parts as planner

    monkeypatch.setattr(planner, "LINE_CHUNK", 64)  # lines span many pieces of the reader
    path = tmp_path / f"in.{fmt}"
    big = "x" * 5000
    if fmt == "jsonl":
        path.write_text(f'{{"text": "a"}}\n{{"text": "{big}"}}\n{{"text": "c"}}\n{{"text": "d"}}\n')
    else:
        path.write_text(f'text\na\n"{big}\n{big}"\nc\nd\n')
    parts = plan_parts([path], fmt, part_rows=10, max_row_bytes=1000)
    assert [p.rows for p in parts] == [1, 1, 2]  # the long record alone, between the others
    rows = [row for part in parts for row in read_part(part)]
    first = 1 if fmt == "jsonl" else 2
    assert [n for n, _ in rows] == [
        first,
        first + 1,
        first + (3 if fmt == "csv" else 2),
        rows[-1][0],
    ]
    size = 5013 if fmt == "jsonl" else 10004
    assert rows[1][1] == f"the row is {size} bytes; at most 1000 (--max-row-bytes)"
    assert [r for _, r in rows if isinstance(r, dict)] == [{"text": t} for t in "acd"]


def test_json_nested_too_deeply_is_a_row_error(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a"}\n' + "[" * 60_000 + "]" * 60_000 + '\n{"text": "c"}\n')
    (part,) = plan_parts([path], "jsonl", 10)
    rows = read_part(part)
    assert rows[1] == (2, "JSON nested too deeply") and rows[2] == (3, {"text": "c"})


def test_parquet_parts_follow_row_groups(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": [f"t{i}" for i in range(25)]}), path, row_group_size=5)
    parts = plan_parts([path], "parquet", 10)
    assert [(p.start, p.stop, p.first_line, p.rows) for p in parts] == [
        (0, 2, 1, 10),
        (2, 4, 11, 10),
        (4, 5, 21, 5),
    ]
    assert [r for _, r in rows_of(path, "parquet", 10)] == [{"text": f"t{i}"} for i in range(25)]


def test_a_folder_is_its_files_in_order_numbered_across(tmp_path: Path) -> None:
    for name, n in (("b.jsonl", 3), ("a.jsonl", 2)):
        (tmp_path / name).write_text(
            "".join(json.dumps({"text": f"{name}{i}"}) + "\n" for i in range(n))
        )
    (tmp_path / "_SUCCESS").write_text("")
    files, fmt = input_files(tmp_path)
    assert [f.name for f in files] == ["a.jsonl", "b.jsonl"] and fmt == "jsonl"
    parts = plan_parts(files, fmt, 2)
    assert [(p.index, Path(p.path).name, p.rows) for p in parts] == [
        (0, "a.jsonl", 2),
        (1, "b.jsonl", 2),
        (2, "b.jsonl", 1),
    ]


def test_parts_sized_by_the_input_alone(tmp_path: Path) -> None:
    """Without part_rows: about 64 parts of 100 to 10,000 rows, whatever runs them."""
    path = tmp_path / "in.tsv"
    path.write_text("text\n" + "".join(f"t{i}\n" for i in range(250)))
    assert [p.rows for p in plan_parts([path], "tsv")] == [100, 100, 50]
    path.write_text("text\n" + "".join(f"t{i}\n" for i in range(12_800)))
    assert {p.rows for p in plan_parts([path], "tsv")} == {200}


def test_unknown_suffix_says_how_to_fix(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_text("hello\n")
    with pytest.raises(DataError, match="--input-format"):
        input_files(path)


cells = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"), max_size=12
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(cells, cells), min_size=1, max_size=30), st.integers(1, 7))
def test_csv_round_trip_whatever_the_cells(tmp_path_factory, records, part_rows) -> None:  # type: ignore[no-untyped-def]
    """Any cells (quotes, commas, newlines) written by the csv module come back whole, once."""
    path = tmp_path_factory.mktemp("csv") / "in.csv"
    path.write_bytes(encode_rows([{"a": a, "b": b} for a, b in records], "csv"))
    expected = list(csv.DictReader(io.StringIO(path.read_text(), newline="")))
    got = [row for _, row in rows_of(path, "csv", part_rows)]
    assert got == expected


parquet_cells = st.none() | st.text(st.characters(exclude_categories=("Cs",)), max_size=20)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    st.lists(st.tuples(parquet_cells, st.integers(-(2**40), 2**40)), min_size=1, max_size=40),
    st.integers(1, 9),
    st.integers(1, 12),
)
def test_parquet_round_trip_whatever_the_groups(
    tmp_path_factory, records, group_rows, part_rows
) -> None:  # type: ignore[no-untyped-def]
    """Any Parquet file (nulls, any text, any row-group size) comes back whole, once, in order,
    each row with its number; parts never split a row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path_factory.mktemp("parquet") / "in.parquet"
    table = pa.table({"text": [t for t, _ in records], "id": [i for _, i in records]})
    pq.write_table(table, path, row_group_size=group_rows)
    parts = plan_parts([path], "parquet", part_rows)
    got = [row for part in parts for row in read_part(part)]
    assert [n for n, _ in got] == list(range(1, len(records) + 1))
    assert [r for _, r in got] == table.to_pylist()
    groups = pq.ParquetFile(path).metadata.num_row_groups
    assert parts[-1].stop == groups and all(p.rows >= 1 for p in parts)
