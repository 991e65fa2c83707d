"""--compare-templates: two real runs on the tiny model, the better on validation kept."""

from __future__ import annotations

import json

import pytest

from rec_edge.bundle import MANIFEST_FILE
from rec_edge.config import ExportConfig, TrainConfig
from rec_edge.errors import ConfigError, OutputExistsError
from rec_edge.export import export
from rec_edge.train import train
from rec_edge.train.compare import choose, discordant, paired_log_prob
from tests.helpers import tiny_train_config


def test_the_instruction_must_win_on_accuracy() -> None:
    def validation(raw: float, instruction: float) -> dict[str, dict[str, float]]:
        return {"raw": {"accuracy": raw}, "instruction": {"accuracy": instruction}}

    assert choose(validation(0.80, 0.85)) == "instruction"
    assert choose(validation(0.85, 0.80)) == "raw"
    assert choose(validation(0.80, 0.80)) == "raw"  # a tie: the cheaper input
    assert discordant({"correct": "1100"}, {"correct": "1011"}) == {
        "raw_only": 1,
        "instruction_only": 2,
    }
    assert discordant({"accuracy": 0.5}, {"correct": "10"}) is None  # a run from before
    gain = paired_log_prob(
        {"true_log_prob": [-1.0, -0.5, -2.0]}, {"true_log_prob": [-0.5, -0.5, -1.0]}
    )
    assert gain == {"mean_gain": 0.5, "standard_error": pytest.approx(0.2887, abs=1e-4)}
    assert paired_log_prob({"accuracy": 0.5}, {"true_log_prob": [-1.0]}) is None


def test_comparison_conflicts_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="compare_templates needs task=classify"):
        TrainConfig(train_file="x", task="rank", compare_templates=True)
    with pytest.raises(ConfigError, match="drop --no-template / --with-template"):
        TrainConfig(train_file="x", use_templates=False, compare_templates=True)


def test_the_comparison_is_the_default_of_a_few_shot_classify_run() -> None:
    default = TrainConfig(train_file="x")
    assert default.compare_templates is None  # auto
    assert default.resolved_compare_templates(640, raw_by_default=True)
    assert default.resolved_compare_templates(5000, raw_by_default=True)
    assert not default.resolved_compare_templates(5001, raw_by_default=True)  # full data: one run
    assert not default.resolved_compare_templates(640, raw_by_default=False)  # a template given
    for given in (
        TrainConfig(train_file="x", use_templates=False),
        TrainConfig(train_file="x", use_templates=True),
        TrainConfig(train_file="x", compare_templates=False),
        TrainConfig(train_file="x", shots=0),  # zero-shot: nothing is trained
        TrainConfig(train_file="x", task="rank"),
    ):
        assert not given.resolved_compare_templates(640, raw_by_default=True)
    assert TrainConfig(train_file="x", compare_templates=True).resolved_compare_templates(
        10_000, raw_by_default=False
    )


@pytest.mark.slow
def test_compared_run_keeps_the_better_candidate(tmp_path, tiny_model, topic_files) -> None:
    config = tiny_train_config(tiny_model, topic_files, tmp_path, epochs=2, compare_templates=True)
    result = train(config)
    final = tmp_path / "tiny"
    assert result.run_dir == final
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]  # the other run is gone
    run = json.loads((final / "run.json").read_text())
    compared = run["templates_compared"]
    accuracy = {name: compared[name]["validation"]["accuracy"] for name in ("raw", "instruction")}
    pairs, n = compared["discordant"], compared["raw"]["validation"]["n"]
    assert (pairs["instruction_only"] - pairs["raw_only"]) / n == pytest.approx(
        accuracy["instruction"] - accuracy["raw"]
    )  # the paired counts agree with the two accuracies
    assert compared["chosen"] == choose({k: compared[k]["validation"] for k in accuracy})
    assert set(compared["log_prob"]) == {"mean_gain", "standard_error"}
    kept = compared["chosen"]
    assert run["name"] == "tiny" and run["config"]["name"] == "tiny"
    assert (run["templates"]["templates"] == ["{text}"]) == (kept == "raw")
    assert run["metrics"]["validation"]["accuracy"] == accuracy[kept]
    assert result.train_seconds == pytest.approx(
        compared["raw"]["train_seconds"] + compared["instruction"]["train_seconds"], abs=0.2
    )
    # the kept run is the run a single training with that input gives (seeded, deterministic)
    single = train(
        tiny_train_config(
            tiny_model,
            topic_files,
            tmp_path / "single",
            epochs=2,
            use_templates=kept == "instruction",
        )
    )
    assert single.metrics["validation"] == result.metrics["validation"]
    assert single.metrics["test"] == result.metrics["test"]
    bundle = export(
        ExportConfig(run_dir=str(final), out=str(tmp_path / "bundle"), quantize="fp32"),
        log=lambda _: None,
    ).bundle_dir
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    assert manifest["templates"]["templates"] == run["templates"]["templates"]
    validation = run["metrics"]["validation"]
    assert len(validation["correct"]) == len(validation["true_log_prob"]) == validation["n"]
    assert all(p <= 0 for p in validation["true_log_prob"])
    # each text's hit and log-probability: run.json, not the bundle
    assert set(manifest["source"]["run_metrics"]["validation"]) == {
        k for k in validation if k not in ("correct", "true_log_prob")
    }
    with pytest.raises(OutputExistsError, match="Pass --force"):
        train(config)


@pytest.mark.slow
def test_an_interrupted_comparison_resumes_with_the_run_it_stopped_in(
    tmp_path, tiny_model, topic_files
) -> None:
    calls: list[str] = []

    def dies_in_the_instruction_run(candidate: TrainConfig):  # type: ignore[no-untyped-def]
        calls.append(str(candidate.name))
        if candidate.use_templates and calls.count("instruction") == 1:
            raise KeyboardInterrupt  # the user's Ctrl-C, after the raw run finished
        return train(candidate)

    from rec_edge.train.compare import train_compared

    config = tiny_train_config(tiny_model, topic_files, tmp_path, epochs=1, compare_templates=True)
    with pytest.raises(KeyboardInterrupt):
        train_compared(config, dies_in_the_instruction_run)
    assert (tmp_path / "tiny.candidates" / "raw" / "run.json").is_file()
    with pytest.raises(OutputExistsError, match="Pass --resume to continue it"):
        train_compared(config, dies_in_the_instruction_run)
    config.resume = True
    result = train_compared(config, dies_in_the_instruction_run)
    assert calls == ["raw", "instruction", "instruction"]  # the finished raw run was read back
    compared = result.metrics["templates_compared"]
    assert set(compared) == {"chosen", "rule", "discordant", "log_prob", "raw", "instruction"}
    # the read-back run kept its per-text hits and log-probabilities
    assert compared["discordant"] is not None and compared["log_prob"] is not None
    assert (
        not (tmp_path / "tiny.candidates").exists() and (tmp_path / "tiny" / "run.json").is_file()
    )
