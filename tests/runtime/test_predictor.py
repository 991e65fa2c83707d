"""The torch-free Predictor on a real exported bundle."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from rec_edge.bundle import MANIFEST_FILE, load_bundle, write_manifest
from rec_edge.errors import BundleError, ConfigError, DataError, ProviderError
from rec_edge.runtime import Predictor
from rec_edge.runtime.session import resolve_provider
from tests.helpers import BLOCK_TORCH, make_examples

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def predictor(tiny_bundle: Path) -> Predictor:
    return Predictor.load(tiny_bundle, threads=1)


def texts(n: int = 30) -> list[str]:
    return [r["text"] for r in make_examples(n // 3 + 1, seed=9)][:n]


def test_predict_shapes_and_order(predictor: Predictor) -> None:
    items = texts() + ["short", "a much longer text " * 5]
    predictions = predictor.predict(items, batch_size=4)
    proba = predictor.predict_proba(items, batch_size=4)
    assert proba.shape == (len(items), 3) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert [p.label for p in predictions] == [predictor.labels[i] for i in proba.argmax(1)]
    assert set(predictions[0].scores) == set(predictor.labels)

    # Padding to each batch's longest input changes nothing (fp32: exact up to float error; int8's
    # dynamic activation scales depend on the batch, so only the labels are compared there).
    fp32 = load_bundle(predictor.bundle.path)
    fp32.manifest.model_file = "model_fp32.onnx"
    fp32_predictor = Predictor(fp32, predictor.config)
    one_by_one = np.concatenate([fp32_predictor.logits([t]) for t in items])
    np.testing.assert_allclose(fp32_predictor.logits(items, batch_size=5), one_by_one, atol=1e-4)
    int8_one_by_one = np.concatenate([predictor.logits([t]) for t in items])
    assert (
        predictor.logits(items, batch_size=5).argmax(1) == int8_one_by_one.argmax(1)
    ).mean() >= 0.95


def test_template_is_applied_as_in_training(predictor: Predictor, tiny_run) -> None:
    run = json.loads((tiny_run.run_dir / "run.json").read_text())
    assert predictor.render(["x"]) == [
        run["templates"]["templates"][0].format(
            text="x", instruction="Which topic is this?", labels=""
        )
    ]


def test_bad_inputs(predictor: Predictor) -> None:
    assert predictor.predict([]) == []
    assert predictor.predict_proba([]).shape == (0, 3)
    with pytest.raises(DataError, match=r"texts\[1\] is None; expected a string") as info:
        predictor.predict(["ok", None, 3])  # type: ignore[list-item]
    assert "texts[2] is int" in str(info.value)
    with pytest.raises(DataError, match="wrap it: \\[text\\]"):
        predictor.predict("a bare string")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="batch_size=0"):
        predictor.predict(["x"], batch_size=0)
    assert predictor.predict([""])[0].label in predictor.labels  # empty text: the template alone
    before = predictor.truncated
    assert predictor.predict(["word " * 5000])[0].label in predictor.labels
    assert predictor.truncated == before + 1


def test_thread_safety(predictor: Predictor) -> None:
    items = texts(60)
    expected = predictor.predict_proba(items, batch_size=7)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(
                lambda i: predictor.predict_proba(items[i % 3 :] + items[: i % 3], batch_size=7),
                range(16),
            )
        )
    for i, result in enumerate(
        results
    ):  # same batches, so the same numbers, whatever the threads do
        shift = i % 3
        expected_i = predictor.predict_proba(items[shift:] + items[:shift], batch_size=7)
        np.testing.assert_allclose(result, expected_i, atol=1e-6)
    assert expected.shape == (60, 3)


def test_providers(tiny_bundle: Path) -> None:
    assert resolve_provider("cpu") == "CPUExecutionProvider"
    assert resolve_provider("CPUExecutionProvider") == "CPUExecutionProvider"
    with pytest.raises(
        ProviderError, match="Unknown execution provider 'warp'.*available here: .*cpu"
    ):
        Predictor.load(tiny_bundle, provider="warp")
    if "CUDAExecutionProvider" not in __import__("onnxruntime").get_available_providers():
        with pytest.raises(
            ProviderError,
            match="Provider 'cuda' is not available \\(available: .*cpu.*rec-edge\\[gpu\\]",
        ):
            Predictor.load(tiny_bundle, provider="cuda")
        assert (
            Predictor.load(tiny_bundle, provider="cuda", fallback=True).provider
            == "CPUExecutionProvider"
        )
    with pytest.raises(ConfigError, match="graph_optimization_level='max'"):
        Predictor.load(tiny_bundle, graph_optimization_level="max")


def _copy(bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(bundle, target)
    return target


def test_tampered_and_missing_files(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    with (bundle / "model.onnx").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match=r"model\.onnx does not match its sha256"):
        Predictor.load(bundle)
    (bundle / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match=r"tokenizer\.json is missing"):
        load_bundle(bundle)
    with pytest.raises(BundleError, match="does not exist"):
        Predictor.load(tmp_path / "nothing")


def test_schema_version_and_fields(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    (bundle / MANIFEST_FILE).write_text(json.dumps({**manifest, "schema_version": "2.0"}))
    with pytest.raises(BundleError, match="schema_version 2.0 is not supported"):
        Predictor.load(bundle)
    (bundle / MANIFEST_FILE).write_text(
        json.dumps({k: v for k, v in manifest.items() if k != "labels"})
    )
    with pytest.raises(BundleError, match="field 'labels' is missing"):
        Predictor.load(bundle)
    (bundle / MANIFEST_FILE).write_text("[]")
    with pytest.raises(BundleError, match="a JSON object is expected"):
        Predictor.load(bundle)


def test_graph_inputs_checked(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    loaded = load_bundle(bundle)
    loaded.manifest.inputs = ["input_ids", "attention_mask"]
    loaded.manifest.labels = ["a", "b"]
    write_manifest(bundle, loaded.manifest)
    with pytest.raises(
        BundleError, match="differ from the manifest's.*gives 3 scores for 2 labels"
    ):
        Predictor.load(bundle)


def test_no_pickle_in_bundle(tiny_bundle: Path) -> None:
    for path in tiny_bundle.iterdir():
        assert not path.read_bytes().startswith(b"\x80"), f"{path} looks like a pickle"


def test_predict_with_torch_blocked(tiny_bundle: Path) -> None:
    code = BLOCK_TORCH + (
        f"from rec_edge import Predictor\n"
        f"p = Predictor.load({str(tiny_bundle)!r})\n"
        "print(p.predict(['goal match striker league'])[0].label)\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'optimum', 'peft')]\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in ("finance", "sports", "weather")
