"""`rec-edge score` on one process: the answers of the Predictor, parts committed whole, bad rows
named or set aside, and a stopped job resumed without scoring a part twice."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from rec_edge.cli import main
from rec_edge.config import ScoreConfig
from rec_edge.errors import ConfigError, DataError, OutputExistsError
from rec_edge.runtime import Predictor
from rec_edge.scoring import score
from rec_edge.scoring.scorer import PartScorer
from tests.helpers import BLOCK_TORCH, make_examples, run_python, write_jsonl


def texts_file(folder: Path, n: int = 60) -> Path:
    rows = [{"id": i, "text": r["text"]} for i, r in enumerate(make_examples(n // 3 + 1, seed=7))]
    return write_jsonl(folder / "texts.jsonl", rows[:n])  # type: ignore[arg-type]


def output_rows(out: Path, fmt: str = "jsonl") -> list[dict]:  # type: ignore[type-arg]
    assert (out / "_SUCCESS.json").is_file()
    parts = sorted(out.glob(f"part-*.{fmt}"))
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return [row for p in parts for row in pq.read_table(p).to_pylist()]
    return [json.loads(line) for p in parts for line in p.read_text().splitlines()]


def config(bundle: Path, source: Path, out: Path, **options: object) -> ScoreConfig:
    return ScoreConfig(str(bundle), str(source), str(out), progress=False, **options)  # type: ignore[arg-type]


def test_classify_rows_get_the_predictors_answers(tiny_bundle: Path, tmp_path: Path) -> None:
    source = texts_file(tmp_path)
    result = score(config(tiny_bundle, source, tmp_path / "out", part_rows=16, all_scores=True))
    rows = output_rows(tmp_path / "out")
    predictor = Predictor.load(tiny_bundle)
    expected = predictor.predict(
        [json.loads(line)["text"] for line in source.read_text().splitlines()]
    )
    assert (result.parts, result.rows, result.written, result.rejected) == (4, 60, 60, 0)
    assert [r["id"] for r in rows] == list(range(60))  # every input row, its fields kept, in order
    assert [r["label"] for r in rows] == [p.label for p in expected]
    assert [r["score"] for r in rows] == pytest.approx([p.score for p in expected], abs=1e-5)
    assert rows[0]["scores"].keys() == set(predictor.labels)
    summary = json.loads((tmp_path / "out" / "_SUCCESS.json").read_text())
    assert summary["rows"] == 60 and summary["parts"] == 4 and summary["engine"] == "local"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_csv_in_csv_or_parquet_out(tiny_bundle: Path, tmp_path: Path, fmt: str) -> None:
    source = tmp_path / "texts.csv"
    source.write_text('text,note\n"weather, rain\nsnow",a\nshares and profit,b\n')
    score(config(tiny_bundle, source, tmp_path / "out", out_format=fmt, all_scores=True))
    if fmt == "parquet":
        rows = output_rows(tmp_path / "out", "parquet")
        assert [r["note"] for r in rows] == ["a", "b"] and "scores" in rows[0]
    else:
        text = (tmp_path / "out" / "part-00000.csv").read_text()
        header = text.splitlines()[0].split(",")
        assert header[:4] == ["text", "note", "label", "score"]
        assert any(h.startswith("scores.") for h in header)


def test_an_input_field_named_like_an_output_needs_a_prefix(
    tiny_bundle: Path, topic_files, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="--prefix"):
        score(config(tiny_bundle, topic_files["test"], tmp_path / "out"))
    score(config(tiny_bundle, topic_files["test"], tmp_path / "out", prefix="pred_"))
    rows = output_rows(tmp_path / "out")
    assert {"label", "pred_label", "pred_score"} <= rows[0].keys()
    assert sum(r["label"] == r["pred_label"] for r in rows) / len(rows) > 0.6


def bad_input(folder: Path) -> Path:
    path = folder / "bad.jsonl"
    path.write_text(
        '{"text": "rain and snow today"}\n{"txt": "typo"}\n{"text": "profit"}\nnot json\n'
        '{"text": ["a", "list"]}\n{"text": 42}\n'
    )
    return path


def test_bad_rows_fail_naming_file_and_line(tiny_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        score(config(tiny_bundle, bad_input(tmp_path), tmp_path / "out"))
    message = str(error.value)
    assert "bad.jsonl:2: missing field 'text'" in message
    assert "bad.jsonl:4: malformed JSON" in message
    assert "bad.jsonl:5: field 'text' must be a string" in message
    assert "--on-error skip" in message
    assert not list((tmp_path / "out").glob("part-*"))  # the part with bad rows wrote nothing


def test_skip_writes_rejects_and_scores_the_rest(tiny_bundle: Path, tmp_path: Path) -> None:
    result = score(config(tiny_bundle, bad_input(tmp_path), tmp_path / "out", on_error="skip"))
    assert (result.rows, result.written, result.rejected) == (6, 3, 3)
    rejects = [
        json.loads(x) for x in (tmp_path / "out/rejects/part-00000.jsonl").read_text().splitlines()
    ]
    assert [(r["line"], r["row"]) for r in rejects] == [
        (2, {"txt": "typo"}),
        (4, "malformed JSON (Expecting value at column 1)"),
        (5, {"text": ["a", "list"]}),
    ]
    assert [r["text"] for r in output_rows(tmp_path / "out")] == [
        "rain and snow today",
        "profit",
        42,
    ]


class Stop(Exception):
    pass


def test_a_stopped_job_resumes_at_its_first_missing_part(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, out = texts_file(tmp_path), tmp_path / "out"
    score(config(tiny_bundle, source, tmp_path / "whole", part_rows=10))
    run = PartScorer.run
    scored: list[int] = []

    def stop_at_part_3(self, part, on_rows=None):  # type: ignore[no-untyped-def]
        if part.index == 3:
            (out / ".part-00003.jsonl.999.tmp").write_text('{"half": ')  # a write cut short
            raise Stop
        scored.append(part.index)
        return run(self, part, on_rows)

    monkeypatch.setattr(PartScorer, "run", stop_at_part_3)
    with pytest.raises(Stop):
        score(config(tiny_bundle, source, out, part_rows=10))
    assert sorted(p.name for p in out.glob("part-*")) == [f"part-0000{i}.jsonl" for i in range(3)]
    assert not (out / "_SUCCESS.json").exists()
    with pytest.raises(OutputExistsError, match="3 of 6 parts done.*--resume"):
        score(config(tiny_bundle, source, out, part_rows=10))
    with pytest.raises(ConfigError, match="part_rows"):
        score(config(tiny_bundle, source, out, part_rows=20, resume=True))

    def count(self, part, on_rows=None):  # type: ignore[no-untyped-def]
        scored.append(part.index)
        return run(self, part, on_rows)

    scored.clear()
    monkeypatch.setattr(PartScorer, "run", count)
    result = score(config(tiny_bundle, source, out, part_rows=10, resume=True))
    assert scored == [3, 4, 5] and result.resumed == 3 and result.rows == 60
    assert not list(out.glob(".*.tmp"))
    for part in sorted((tmp_path / "whole").glob("part-*")):
        assert (out / part.name).read_bytes() == part.read_bytes()


def test_rank_top_k_is_predictor_rank_without_the_history(
    rank_bundle: Path, tmp_path: Path
) -> None:
    predictor = Predictor.load(rank_bundle)
    catalog = predictor.catalog
    users = [
        {"user": "u1", "liked": catalog[:3], "disliked": catalog[3:4]},
        {"user": "u2", "liked": [catalog[5]]},
        {"user": "u3"},
    ]
    source = write_jsonl(tmp_path / "users.jsonl", users)  # type: ignore[arg-type]
    score(config(rank_bundle, source, tmp_path / "out", k=5, part_rows=2))
    rows = output_rows(tmp_path / "out")
    assert len(rows) == 15
    for user in users:
        history = {"liked": user.get("liked", []), "disliked": user.get("disliked", [])}
        seen = set(history["liked"]) | set(history["disliked"])
        expected = predictor.rank(history, [c for c in catalog if c not in seen], k=5)
        got = [r for r in rows if r["user"] == user["user"]]
        assert [r["item"] for r in got] == [e.item for e in expected]
        assert [r["rank"] for r in got] == [1, 2, 3, 4, 5]
        assert [r["score"] for r in got] == pytest.approx([e.score for e in expected], rel=1e-5)
        assert not seen & {r["item"] for r in got}


def test_rank_candidates_file(rank_bundle: Path, tmp_path: Path) -> None:
    catalog = Predictor.load(rank_bundle).catalog
    candidates = tmp_path / "candidates.txt"
    candidates.write_text("\n".join(catalog[:4]) + "\n")
    source = write_jsonl(tmp_path / "users.jsonl", [{"user": 7, "liked": [catalog[0]]}])  # type: ignore[arg-type]
    score(config(rank_bundle, source, tmp_path / "out", k=10, candidates=str(candidates)))
    assert sorted(r["item"] for r in output_rows(tmp_path / "out")) == sorted(catalog[1:4])


def test_cli_score_runs_without_torch(tiny_bundle: Path, tmp_path: Path) -> None:
    source = texts_file(tmp_path, 12)
    out = tmp_path / "out"
    result = run_python(
        BLOCK_TORCH
        + "from rec_edge.cli import main\n"
        + f"main(['score', {str(tiny_bundle)!r}, {str(source)!r}, '--out', {str(out)!r}, '--no-progress'])\n"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["written"] == 12
    assert len(output_rows(out)) == 12


def test_cli_errors_are_one_line(tiny_bundle: Path, tmp_path: Path) -> None:
    source = texts_file(tmp_path, 3)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("")
    result = CliRunner().invoke(
        main, ["score", str(tiny_bundle), str(source), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code != 0
    assert "Traceback" not in result.output and "--force" in result.output


def test_a_row_of_bad_bytes_or_deep_json_is_skipped_not_the_job(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(
        b'{"text": "the bank loan"}\n{"text": "caf\xe9\xff"}\n'
        + b"[" * 60_000
        + b"]" * 60_000
        + b'\n{"text": "a goal in the match"}\n'
    )
    out = tmp_path / "out"
    result = score(config(tiny_bundle, source, out, on_error="skip"))
    assert result.written == 2 and result.rejected == 2
    rejects = [json.loads(x) for x in (out / "rejects/part-00000.jsonl").read_text().splitlines()]
    assert [(r["line"], r["row"]) for r in rejects] == [
        (2, "not valid UTF-8 (byte 0xe9 at column 14); re-encode the input as UTF-8"),
        (3, "JSON nested too deeply"),
    ]
    failed = CliRunner().invoke(
        main, ["score", str(tiny_bundle), str(source), "--out", str(tmp_path / "o2")]
    )
    assert failed.exit_code != 0 and "Traceback" not in failed.output
    assert "in.jsonl:2: not valid UTF-8" in failed.output


def test_a_full_disk_is_one_line_and_resume_completes(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    source = texts_file(tmp_path, 30)
    out = tmp_path / "out"
    real_fsync, calls = os.fsync, []

    def fsync(descriptor: int) -> None:
        calls.append(descriptor)
        if len(calls) == 6:  # a few files in: the disk fills up
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    result = CliRunner().invoke(
        main,
        [
            "score",
            str(tiny_bundle),
            str(source),
            "--out",
            str(out),
            "--part-rows",
            "10",
            "--no-progress",
        ],
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("error:")]
    assert "No space left on device" in line and "--resume" in line
    assert not [p for p in out.rglob(".*.tmp")]  # the temporary part is gone
    monkeypatch.setattr(os, "fsync", real_fsync)
    resumed = score(config(tiny_bundle, source, out, part_rows=10, resume=True))
    assert resumed.resumed >= 1 and (out / "_SUCCESS.json").is_file()
    assert [r["text"] for r in output_rows(out)] == [
        json.loads(x)["text"] for x in source.read_text().splitlines()
    ]


def test_sigkill_mid_job_then_resume_gives_the_uninterrupted_output(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys

    rows = [{"id": i, "text": r["text"]} for i, r in enumerate(make_examples(2000, seed=3))]
    source = write_jsonl(tmp_path / "in.jsonl", rows)  # type: ignore[arg-type]
    args = [str(tiny_bundle), str(source), "--part-rows", "200", "--batch-size", "4"]
    args += ["--threads", "1", "--no-progress"]
    command = [sys.executable, "-m", "rec_edge.cli", "score", *args]
    killed = tmp_path / "killed"
    job = subprocess.Popen([*command, "--out", str(killed)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(killed.glob("part-00001.jsonl")):  # two parts in: kill -9, no cleanup runs
        assert job.poll() is None and time.monotonic() < deadline, "the job ended before the kill"
        time.sleep(0.01)
    job.send_signal(signal.SIGKILL)
    job.wait()
    done = sorted(p.name for p in killed.glob("part-*.jsonl"))
    assert 2 <= len(done) < 30 and not (killed / "_SUCCESS.json").exists()
    resumed = subprocess.run([*command, "--out", str(killed), "--resume"], capture_output=True)
    assert resumed.returncode == 0, resumed.stderr
    whole = tmp_path / "whole"
    subprocess.run([*command, "--out", str(whole)], check=True, capture_output=True)
    parts = sorted(p.name for p in whole.glob("part-*.jsonl"))
    assert len(parts) == 30 and sorted(p.name for p in killed.glob("part-*.jsonl")) == parts
    for name in parts:
        assert (killed / name).read_bytes() == (whole / name).read_bytes()
    assert not list(killed.glob(".*.tmp"))


def test_force_never_deletes_the_input(tiny_bundle: Path, tmp_path: Path) -> None:
    """`score BUNDLE keep/in.jsonl --out keep --force` once deleted keep/in.jsonl."""
    keep = tmp_path / "keep"
    keep.mkdir()
    source = texts_file(keep, 3)
    result = CliRunner().invoke(
        main, ["score", str(tiny_bundle), str(source), "--out", str(keep), "--force"]
    )
    assert result.exit_code != 0 and "an input of this command" in result.output
    assert "Traceback" not in result.output and source.is_file()
    (keep / "mine.txt").write_text("x")  # a folder of the user's files: not a job's
    other = texts_file(tmp_path, 3)
    result = CliRunner().invoke(
        main, ["score", str(tiny_bundle), str(other), "--out", str(keep), "--force"]
    )
    assert result.exit_code != 0 and "no _job.json" in result.output
    assert sorted(p.name for p in keep.iterdir()) == ["mine.txt", source.name]


def test_config_refuses_contradictions() -> None:
    with pytest.raises(ConfigError, match="resume and force"):
        ScoreConfig("b", "i", "o", resume=True, force=True)
    with pytest.raises(ConfigError, match="engine='dask'"):
        ScoreConfig("b", "i", "o", engine="dask")
    with pytest.raises(ConfigError, match="master is for engine 'spark'"):
        ScoreConfig("b", "i", "o", master="local[2]")


def test_a_resumed_folder_missing_a_part_is_not_whole(tiny_bundle: Path, tmp_path: Path) -> None:
    """A sealed job whose part was deleted loses its _SUCCESS.json the moment it is resumed."""
    from rec_edge.scoring.job import open_output

    source, out = texts_file(tmp_path, 30), tmp_path / "out"
    score(config(tiny_bundle, source, out, part_rows=10))
    fingerprint = json.loads((out / "_job.json").read_text())
    (out / "part-00001.jsonl").unlink()
    assert open_output(out, fingerprint, 3, resume=True, force=False, fmt="jsonl") == {0, 2}
    assert not (out / "_SUCCESS.json").exists()


def test_local_workers_write_the_same_parts(tiny_bundle: Path, tmp_path: Path) -> None:
    """Parts scored in threads at once (one Predictor) give the files of one at a time."""
    source = texts_file(tmp_path)
    one = score(config(tiny_bundle, source, tmp_path / "one", part_rows=7, on_error="skip"))
    two = score(config(tiny_bundle, source, tmp_path / "two", part_rows=7, workers=3, threads=1))
    assert one.parts == two.parts == 9
    for part in sorted((tmp_path / "one").glob("part-*")):
        assert (tmp_path / "two" / part.name).read_bytes() == part.read_bytes()


def test_the_api_names_stay_callable() -> None:
    """rec_edge.score is the verb even after the scoring package is imported (a subpackage of
    the same name would replace it), and the pipeline helpers are reachable from the top."""
    import rec_edge
    import rec_edge.scoring.job  # noqa: F401

    assert callable(rec_edge.score) and rec_edge.score.__module__ == "rec_edge"
    assert rec_edge.ray_batch_predictor is rec_edge.scoring.ray_batch_predictor
    assert rec_edge.spark_predict_udf is rec_edge.scoring.spark_predict_udf
