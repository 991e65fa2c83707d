"""Every bad-input case of the readers and task builder has a message naming file, line and field."""

from __future__ import annotations

import json

import pytest

from rec_edge.config import TrainConfig
from rec_edge.data.readers import read_examples
from rec_edge.data.tasks import build_classification
from rec_edge.errors import DataError


def test_jsonl_csv_tsv_read_the_same(tmp_path) -> None:
    (tmp_path / "a.jsonl").write_text(
        '{"text": "hello, world", "label": "x"}\n\n{"text": "b", "label": 3}\n'
    )
    (tmp_path / "a.csv").write_text('text,label\n"hello, world",x\nb,3\n')
    (tmp_path / "a.tsv").write_text("text\tlabel\nhello, world\tx\nb\t3\n")
    got = [
        [(e.text, e.label) for e in read_examples(tmp_path / f"a.{s}").examples]
        for s in ("jsonl", "csv", "tsv")
    ]
    assert got[0] == got[1] == got[2] == [("hello, world", "x"), ("b", "3")]


def test_source_line_numbers(tmp_path) -> None:
    (tmp_path / "a.csv").write_text('text,label\n"multi\nline",x\nb,y\n')
    examples = read_examples(tmp_path / "a.csv").examples
    assert [e.source.rsplit(":", 1)[1] for e in examples] == ["2", "4"]


def test_missing_file(tmp_path) -> None:
    with pytest.raises(DataError, match=r"missing\.jsonl: file not found"):
        read_examples(tmp_path / "missing.jsonl")


def test_malformed_json_line(tmp_path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": \n')
    with pytest.raises(DataError, match=rf"{path}:2: malformed JSON"):
        read_examples(path)


def test_missing_and_empty_fields_are_all_listed(tmp_path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(
        '{"text": "a"}\n{"text": "  ", "label": "x"}\n{"text": "ok", "label": "y"}\n[1]\n'
    )
    with pytest.raises(DataError) as info:
        read_examples(path)
    assert info.value.problems == [
        f"{path}:1: missing field 'label' (fields: text)",
        f"{path}:2: field 'text' is empty",
        f"{path}:4: a JSON object is expected",
    ]


def test_csv_extra_cells_and_missing_column(tmp_path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("text,label\na,x,extra\n")
    with pytest.raises(DataError, match=rf"{path}:2: 3 cells for 2 columns"):
        read_examples(path)
    with pytest.raises(
        DataError, match=rf"{path}:2: missing field 'category' \(fields: text, label\)"
    ):
        path.write_text("text,label\na,x\n")
        read_examples(path, label_field="category")


def test_invalid_utf8_names_the_line(tmp_path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"text,label\na,x\ncaf\xe9,y\n")
    with pytest.raises(DataError, match=rf"{path}:3: not valid UTF-8 \(byte 0xe9.*iconv"):
        read_examples(path)


def test_unknown_suffix(tmp_path) -> None:
    with pytest.raises(DataError, match="Pass --format jsonl|csv|tsv"):
        read_examples(tmp_path / "a.xlsx")


def test_skip_invalid_counts_rows(tmp_path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": ""}\nnot json\n')
    result = read_examples(path, skip_invalid=True)
    assert len(result.examples) == 1
    assert len(result.skipped) == 3  # empty text, missing label, malformed line


def _rows(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_single_class_is_refused(tmp_path) -> None:
    train = _rows(tmp_path / "t.jsonl", [{"text": f"t{i}", "label": "only"} for i in range(6)])
    with pytest.raises(
        DataError, match="single class \\('only'\\); classification needs at least two"
    ):
        build_classification(TrainConfig(train_file=train))


def test_class_without_training_example(tmp_path) -> None:
    train = _rows(tmp_path / "t.jsonl", [{"text": f"t{i}", "label": "ab"[i % 2]} for i in range(6)])
    test = _rows(
        tmp_path / "test.jsonl", [{"text": "z", "label": "c"}, {"text": "y", "label": "a"}]
    )
    with pytest.raises(
        DataError,
        match=r"test\.jsonl: class 'c' \(1 examples\) has no example in the training split",
    ):
        build_classification(TrainConfig(train_file=train, test_file=test))


def test_build_renders_templates_and_splits(tmp_path) -> None:
    train = _rows(
        tmp_path / "t.jsonl", [{"text": f"t{i}", "label": "ab"[i % 2]} for i in range(20)]
    )
    data = build_classification(TrainConfig(train_file=train, instruction="Pick a or b.", shots=5))
    assert data.labels == ["a", "b"]
    assert data.counts == {"train": 10, "validation": 2, "test": 0}
    assert all("Pick a or b." in t for t in data.train.texts + data.validation.texts)
    assert data.validation.texts[0].startswith("Pick a or b.\nText: ")  # the inference template
    raw = build_classification(TrainConfig(train_file=train, use_templates=False))
    assert all(t.startswith("t") for t in raw.train.texts)
