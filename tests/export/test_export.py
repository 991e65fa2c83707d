"""Export with the real optimum exporter, onnxruntime fusions and quantizers, and the real runtime."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from rec_edge.bundle import load_bundle
from rec_edge.config import ExportConfig
from rec_edge.convert.quantize import GATE_CANDIDATES, RECIPES, VARIANT_CANDIDATES
from rec_edge.errors import AccuracyGateError, OutputExistsError, RunError
from rec_edge.export import export
from rec_edge.runtime import Predictor
from tests.helpers import make_examples

pytestmark = pytest.mark.slow
QUIET = {"log": lambda _: None}


def _texts() -> list[str]:
    return [r["text"] for r in make_examples(10, seed=5)]


def test_default_bundle(tiny_bundle: Path, tiny_run) -> None:
    bundle = load_bundle(tiny_bundle)
    m = bundle.manifest
    assert sorted(p.name for p in tiny_bundle.iterdir()) == [
        "README.md",
        "model.onnx",
        "model_fp32.onnx",
        "rec_edge.json",
        "tokenizer.json",
    ]
    assert m.labels == ["finance", "sports", "weather"] and m.task == "classify"
    assert m.inputs == ["input_ids", "attention_mask", "token_type_ids"]
    assert set(m.files) == {"README.md", "model.onnx", "model_fp32.onnx", "tokenizer.json"}
    assert m.parity["max_abs_diff"] <= m.parity["atol"] == 1e-4
    assert [row["recipe"] for row in m.metrics["gate"]] == ["fp32", *GATE_CANDIDATES]
    assert m.recipe["kind"] == "calibrated" and m.recipe["batch_invariant"] is True
    assert m.recipe["batch_variance"] <= 1e-3 and "never deciding" in m.recipe["choice_rule"]
    assert m.recipe["fusions"]["Attention"] == 2
    chosen = m.metrics["chosen"]
    assert chosen["drop_points"] <= chosen["allowed_drop"] and chosen["allowed_drop"] >= 1.0
    # the choice: the passing recipe whose probabilities moved least from fp32's
    rows = m.metrics["gate"]
    assert rows[0]["fp32_shift"] == 0 and all(r["fp32_shift"] > 0 for r in rows[1:])
    closest = min((r for r in rows[1:] if r["passed"]), key=lambda r: r["fp32_shift"])
    assert m.recipe["name"] == closest["recipe"]
    assert m.metrics["chosen"]["fp32_shift"] == closest["fp32_shift"]
    assert m.source["run_name"] == "tiny" and m.versions["onnxruntime"]
    assert "Recipes tried" in (tiny_bundle / "README.md").read_text()


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_recipe(recipe: str, tiny_run, tiny_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / recipe
    invariant = RECIPES[recipe].batch_invariant
    result = export(
        ExportConfig(
            run_dir=str(tiny_run.run_dir),
            out=str(out),
            quantize=recipe,
            max_accuracy_drop=100.0,
            allow_batch_variance=not invariant,
        ),
        **QUIET,
    )
    assert result.recipe["name"] == recipe
    candidate = Predictor.load(out)
    texts = _texts()
    labels = [p.label for p in candidate.predict(texts)]
    fp32_bundle = _fp32_predictor(tiny_bundle)
    agreement = np.mean(
        [a == b.label for a, b in zip(labels, fp32_bundle.predict(texts), strict=True)]
    )
    assert agreement >= 0.9, (recipe, agreement)
    size = (out / "model.onnx").stat().st_size
    fp32_size = (tiny_bundle / "model_fp32.onnx").stat().st_size
    if RECIPES[recipe].kind in ("dynamic", "calibrated"):
        assert size < fp32_size / 2.5  # int8 weights (the embedding table included)
    if invariant:  # a text's probabilities do not depend on its batch-mates or padding
        alone = np.concatenate([candidate.predict_proba([t], batch_size=1) for t in texts])
        np.testing.assert_allclose(candidate.predict_proba(texts, batch_size=32), alone, atol=1e-5)
        assert result.recipe["batch_invariant"] is True


def test_batch_variant_recipe_needs_consent(tiny_run, tmp_path: Path) -> None:
    from rec_edge.errors import ConfigError

    config = ExportConfig(
        run_dir=str(tiny_run.run_dir), out=str(tmp_path / "b"), quantize="dynamic"
    )
    with pytest.raises(ConfigError, match="--allow-batch-variance .* --quantize calibrated"):
        export(config, **QUIET)
    assert not (tmp_path / "b").exists()


def test_gate_is_deterministic(tiny_run, tiny_bundle: Path, tmp_path: Path) -> None:
    """The same run, data and flags give the same bundle: the same recipe, the same graph."""
    from rec_edge.bundle import sha256_file

    again = export(ExportConfig(run_dir=str(tiny_run.run_dir), out=str(tmp_path / "b")), **QUIET)
    first = load_bundle(tiny_bundle).manifest
    assert again.recipe["name"] == first.recipe["name"]
    assert [row[row["metric"]] for row in again.gate] == [
        row[row["metric"]] for row in first.metrics["gate"]
    ]
    assert sha256_file(again.bundle_dir / "model.onnx") == first.files["model.onnx"]


def test_gate_refuses_batch_variance(
    monkeypatch: pytest.MonkeyPatch, tiny_run, tmp_path: Path
) -> None:
    """Every candidate made to look batch-variant: refused unless allowed, real graphs otherwise."""
    from rec_edge.export import gate

    monkeypatch.setattr(gate.Evaluator, "batch_variance", lambda self, predictor: (0.05, 2))
    monkeypatch.setattr(gate, "SENSITIVITY_STEPS", (2,))
    out = tmp_path / "b"
    with pytest.raises(AccuracyGateError, match="allow-batch-variance") as info:
        export(ExportConfig(run_dir=str(tiny_run.run_dir), out=str(out)), **QUIET)
    assert "batch variance 5.0e-02" in str(info.value) and not out.exists()
    result = export(
        ExportConfig(run_dir=str(tiny_run.run_dir), out=str(out), allow_batch_variance=True),
        **QUIET,
    )
    assert result.recipe["batch_invariant"] is False
    assert [row["recipe"] for row in result.gate][1 + len(GATE_CANDIDATES) :] == list(
        VARIANT_CANDIDATES
    )


def _fp32_predictor(bundle: Path) -> Predictor:
    loaded = load_bundle(bundle)
    loaded.manifest.model_file = "model_fp32.onnx"
    from rec_edge.runtime import SessionConfig

    return Predictor(loaded, SessionConfig())


def test_existing_bundle_needs_force(tiny_run, tiny_bundle: Path) -> None:
    with pytest.raises(OutputExistsError, match="Pass --force"):
        export(ExportConfig(run_dir=str(tiny_run.run_dir), out=str(tiny_bundle)), **QUIET)


def test_force_replaces_only_a_bundle_never_the_run(tiny_run, tmp_path: Path) -> None:
    run_dir = tiny_run.run_dir
    with pytest.raises(OutputExistsError, match="an input of this command"):
        export(ExportConfig(run_dir=str(run_dir), out=str(run_dir), force=True), **QUIET)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(OutputExistsError, match="notes.txt but no rec_edge.json"):
        export(ExportConfig(run_dir=str(run_dir), out=str(tmp_path / "mine"), force=True), **QUIET)
    assert (run_dir / "run.json").is_file() and (tmp_path / "mine" / "notes.txt").is_file()


def test_corrupt_run_folder(tmp_path: Path, tiny_run) -> None:
    broken = tmp_path / "run"
    shutil.copytree(tiny_run.run_dir, broken)
    (broken / "run.json").write_text("{not json")
    with pytest.raises(RunError, match=r"run\.json is corrupt"):
        export(ExportConfig(run_dir=str(broken)), **QUIET)
    (broken / "run.json").unlink()
    with pytest.raises(RunError, match=r"run\.json is missing"):
        export(ExportConfig(run_dir=str(broken)), **QUIET)
    with pytest.raises(RunError, match="does not exist"):
        export(ExportConfig(run_dir=str(tmp_path / "nope")), **QUIET)


def test_corrupt_tokenizer(tmp_path: Path, tiny_run) -> None:
    from rec_edge.errors import BundleError

    broken = tmp_path / "run"
    shutil.copytree(tiny_run.run_dir, broken)
    (broken / "model" / "tokenizer.json").write_text('{"truncated": ')
    with pytest.raises(BundleError, match=r"tokenizer\.json is not a valid tokenizer\.json"):
        export(ExportConfig(run_dir=str(broken), out=str(tmp_path / "b")), **QUIET)
    (broken / "model" / "tokenizer.json").unlink()
    with pytest.raises(RunError, match="needs a fast tokenizer"):
        export(ExportConfig(run_dir=str(broken), out=str(tmp_path / "b")), **QUIET)


@pytest.fixture
def failing_gate(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Make every int8 candidate look 50 points worse: the gate's failure path, real graphs otherwise."""
    from rec_edge.export import gate

    real = gate.Evaluator.evaluate

    def worse(self, recipe, model, note=""):  # type: ignore[no-untyped-def]
        candidate = real(self, recipe, model, note)
        if recipe.kind != "fp32":
            candidate.score -= 0.5
        return candidate

    monkeypatch.setattr(gate.Evaluator, "evaluate", worse)
    monkeypatch.setattr(gate, "SENSITIVITY_STEPS", (2,))


def test_gate_failure_then_fallback(failing_gate, tiny_run, tmp_path: Path) -> None:
    out = tmp_path / "gated"
    with pytest.raises(
        AccuracyGateError,
        match=r"No quantization recipe stayed within its allowed drop \(1.0 accuracy",
    ) as info:
        export(ExportConfig(run_dir=str(tiny_run.run_dir), out=str(out)), **QUIET)
    assert "calibrated-per-channel+fp32x2" in str(info.value)  # the sensitivity pass ran
    assert not out.exists()
    result = export(
        ExportConfig(run_dir=str(tiny_run.run_dir), out=str(out), fallback="fp32"), **QUIET
    )
    manifest = json.loads((out / "rec_edge.json").read_text())
    assert result.recipe["name"] == manifest["recipe"]["name"] == "fp32"
    # the candidates and the sensitivity pass's one step
    assert [row["passed"] for row in manifest["metrics"]["gate"][1:]] == [False] * (
        len(GATE_CANDIDATES) + 1
    )
    assert manifest["metrics"]["sensitivity"]  # per-node ranking saved in the bundle


def test_interrupted_export_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, tiny_run, tmp_path: Path
) -> None:
    from rec_edge.export import pipeline

    def interrupt(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    workdir, temp = tmp_path / "cwd", tmp_path / "tmp"
    workdir.mkdir()
    temp.mkdir()
    monkeypatch.chdir(workdir)
    # a temp dir of its own: other exports (another test session, another user) share /tmp
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setattr(pipeline, "write_manifest", interrupt)
    out = tmp_path / "exports" / "x"
    with pytest.raises(KeyboardInterrupt):
        export(
            ExportConfig(run_dir=str(tiny_run.run_dir), out=str(out), quantize="static"), **QUIET
        )
    assert list((tmp_path / "exports").iterdir()) == []
    assert list(workdir.iterdir()) == []
    assert list(temp.glob("rec-edge-export-*")) == []


def test_adapter_only_run_is_merged(tmp_path: Path, tiny_model, topic_files) -> None:
    from rec_edge.train import train
    from tests.helpers import tiny_train_config

    run = train(
        tiny_train_config(tiny_model, topic_files, tmp_path, name="lora", method="lora", epochs=1)
    )
    full = export(
        ExportConfig(run_dir=str(run.run_dir), out=str(tmp_path / "full"), quantize="fp32"), **QUIET
    )
    shutil.rmtree(run.run_dir / "model")  # keep only the adapter
    merged = export(
        ExportConfig(run_dir=str(run.run_dir), out=str(tmp_path / "merged"), quantize="fp32"),
        **QUIET,
    )
    assert load_bundle(merged.bundle_dir).manifest.source["merged_at_export"] is True
    assert load_bundle(full.bundle_dir).manifest.source["merged_at_export"] is False
    texts = _texts()
    np.testing.assert_allclose(
        Predictor.load(merged.bundle_dir).logits(texts),
        Predictor.load(full.bundle_dir).logits(texts),
        atol=1e-5,
    )
    shutil.rmtree(run.run_dir / "adapter")
    with pytest.raises(RunError, match="holds neither a merged model"):
        export(ExportConfig(run_dir=str(run.run_dir), out=str(tmp_path / "none")), **QUIET)
