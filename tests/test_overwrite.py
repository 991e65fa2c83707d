"""What --force may delete (torch-free): a folder rec-edge wrote (its marker file) or an empty one,
never one that holds an input of the command or the working folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from rec_edge.errors import OutputExistsError
from rec_edge.overwrite import check_replaceable


def test_a_folder_rec_edge_wrote_may_go(tmp_path: Path) -> None:
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "_job.json").write_text("{}")
    check_replaceable(tmp_path / "job", "_job.json")
    (tmp_path / "empty").mkdir()
    check_replaceable(tmp_path / "empty", "_job.json")
    check_replaceable(tmp_path / "missing", "_job.json")


def test_a_folder_of_other_files_is_refused_saying_what_is_there(tmp_path: Path) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    for name in ("notes.txt", "a.csv"):
        (keep / name).write_text("mine")
    with pytest.raises(OutputExistsError) as caught:
        check_replaceable(keep, "rec_edge.json")
    assert "a.csv, notes.txt but no rec_edge.json" in str(caught.value)
    assert "not a bundle" in str(caught.value)


def test_a_folder_holding_an_input_is_refused_even_with_the_marker(tmp_path: Path) -> None:
    job = tmp_path / "job"
    (job / "data").mkdir(parents=True)
    (job / "_job.json").write_text("{}")
    (job / "data" / "in.jsonl").write_text("{}\n")
    with pytest.raises(OutputExistsError, match="an input of this command"):
        check_replaceable(job, "_job.json", [job / "data" / "in.jsonl"])
    with pytest.raises(OutputExistsError, match="an input of this command"):
        check_replaceable(job, "_job.json", [job])


def test_the_working_folder_and_files_and_links_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "_job.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputExistsError, match="the working folder"):
        check_replaceable(Path("."), "_job.json")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError, match="a file"):
        check_replaceable(tmp_path / "file", "_job.json")
    (tmp_path / "link").symlink_to(tmp_path)
    with pytest.raises(OutputExistsError, match="a link"):
        check_replaceable(tmp_path / "link", "_job.json")
