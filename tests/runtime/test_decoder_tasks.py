"""A classify decoder bundle goes wherever an encoder one goes: ``rec_edge.load`` opens either,
and `rec-edge predict`, `rec-edge score` and `rec-edge serve` answer with the Generator's own
label probabilities (the tiny Llama of conftest, real export, real onnxruntime, a real server
on a loopback port)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import rec_edge
from rec_edge.cli import main
from rec_edge.config import DecoderExportConfig, ScoreConfig
from rec_edge.errors import BundleError, ConfigError
from rec_edge.runtime import GenerativeClassifier, GenerativeRanker, Generator, Predictor, load
from rec_edge.scoring import score
from tests.helpers import DECODER_LABELS, live_server, write_jsonl

REVIEWS = [
    "The battery lasts for days and the screen is sharp.",
    "It broke after a week and support never answered.",
    "Good sound, but the case cracked quickly.",
    "fine",
    "I would buy it again without a second thought, it does all it says and more " * 3,
]


def test_load_opens_each_family_as_its_own_type(
    decoder_bundle: Path, tiny_bundle: Path, writer_bundle: Path
) -> None:
    generator = load(decoder_bundle)
    assert isinstance(generator, GenerativeClassifier) and rec_edge.load is load
    assert isinstance(generator, Generator)  # it writes as well
    writer = Generator.load(writer_bundle)  # a generate bundle: it writes, it has no labels
    assert type(writer) is Generator and not hasattr(writer, "predict")
    with pytest.raises(
        ConfigError, match="is a 'classify' bundle: load it with GenerativeClassifier"
    ):
        GenerativeRanker.load(decoder_bundle)
    assert generator.labels == list(DECODER_LABELS) and generator.provider == "CPUExecutionProvider"
    assert isinstance(load(tiny_bundle, threads=1, catalog=False), Predictor)
    with pytest.raises(BundleError, match="decoder bundle.*rec_edge.load"):
        Predictor.load(decoder_bundle)
    with pytest.raises(BundleError, match="encoder bundle: load it with rec_edge.load"):
        Generator.load(tiny_bundle)


def test_logits_predictions_and_predict_agree(decoder_bundle: Path) -> None:
    generator = Generator.load(decoder_bundle)
    logits = generator.logits(REVIEWS, batch_size=2)
    assert logits.shape == (len(REVIEWS), len(DECODER_LABELS))
    words = [DECODER_LABELS[label] for label in generator.labels]
    row = generator.option_logprobs(generator.prompt(REVIEWS[0]), words)
    # the label words' log-likelihoods less their prior (a bundle of an untuned model has one)
    assert generator.prior is not None and row.max() < 0
    assert logits[0] == pytest.approx(row - generator.prior, abs=1e-5)
    predictions = generator.predict(REVIEWS)
    assert predictions == generator.predictions(logits)
    table = [[p.scores[label] for label in generator.labels] for p in predictions]
    assert np.allclose(table, generator.predict_proba(REVIEWS), atol=1e-6)
    assert generator.logits([]).shape == (0, len(DECODER_LABELS))


def test_cli_predict_takes_a_decoder_bundle(decoder_bundle: Path) -> None:
    result = CliRunner().invoke(main, ["predict", str(decoder_bundle), *REVIEWS[:3], "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    expected = Generator.load(decoder_bundle).predict(REVIEWS[:3])
    assert [r["label"] for r in rows] == [p.label for p in expected]
    assert [r["score"] for r in rows] == pytest.approx([p.score for p in expected], abs=1e-5)


def test_score_a_file_with_a_decoder_bundle(decoder_bundle: Path, tmp_path: Path) -> None:
    rows = [{"id": i, "text": t} for i, t in enumerate(REVIEWS * 2)]
    source = write_jsonl(tmp_path / "reviews.jsonl", rows)  # type: ignore[arg-type]
    config = ScoreConfig(
        str(decoder_bundle), str(source), str(tmp_path / "out"), progress=False, part_rows=4
    )
    result = score(config)
    out = [
        json.loads(line)
        for p in sorted((tmp_path / "out").glob("part-*.jsonl"))
        for line in p.open()
    ]
    expected = Generator.load(decoder_bundle).predict([r["text"] for r in rows])
    assert (result.rows, result.written, result.parts) == (10, 10, 3)
    assert [r["id"] for r in out] == list(range(10))
    assert [r["label"] for r in out] == [p.label for p in expected]
    assert [r["score"] for r in out] == pytest.approx([p.score for p in expected], abs=1e-5)


def test_serve_answers_with_the_generators_probabilities(
    decoder_bundle: Path, tmp_path: Path
) -> None:
    args = [str(decoder_bundle), "--max-batch", "4"]
    with live_server(args, tmp_path / "log") as live, live.client() as client:
        (model,) = client.get("/v1/models").json()["models"]
        assert model["task"] == "classify" and model["session_batch"] == 1
        response = client.post(f"/v1/models/{decoder_bundle.name}/predict", json={"texts": REVIEWS})
    assert response.status_code == 200, response.text
    expected = Generator.load(decoder_bundle).predict(REVIEWS)
    answers = response.json()["predictions"]
    assert [a["label"] for a in answers] == [p.label for p in expected]
    assert [a["score"] for a in answers] == pytest.approx([p.score for p in expected], abs=1e-5)


def test_a_generate_bundle_is_refused_by_score_by_name(tiny_llama: Path, tmp_path: Path) -> None:
    from rec_edge.export.decoder import export_decoder

    bundle = tmp_path / "writer"
    export_decoder(DecoderExportConfig(model=str(tiny_llama), out=str(bundle), weights="fp32"))
    (tmp_path / "in.jsonl").write_text('{"text": "hello"}\n')
    with pytest.raises(ConfigError, match="'generate' bundle: score takes classify and rank"):
        score(ScoreConfig(str(bundle), str(tmp_path / "in.jsonl"), str(tmp_path / "o")))


def test_decoding_in_place_gives_the_copying_loops_logits(decoder_bundle: Path) -> None:
    """The fused graph on the CPU decodes over one cache buffer bound once (GroupQueryAttention
    writes it in place): the same logits, step by step, as the loop that feeds the cache back."""
    from rec_edge.config import GenerationConfig

    generator = Generator.load(decoder_bundle)
    assert generator._in_place  # the bundle's graph is rec-edge's fused one
    ids = generator._prompt_ids(generator.prompt("The film was a delight"), 8)
    copying, in_place = generator._steps(ids), generator._steps_in_place(ids, len(ids) + 13)
    a, b = next(copying), next(in_place)
    for _ in range(12):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        token = int(np.argmax(a))
        a, b = copying.send(token), in_place.send(token)
    greedy = GenerationConfig(max_new_tokens=20)
    text = generator.generate(generator.prompt("Say something"), greedy)
    generator._in_place, generator.batching = False, False
    assert generator.generate(generator.prompt("Say something"), greedy) == text


def test_a_prompt_runs_from_its_frames_cache_with_the_same_answers(decoder_bundle: Path) -> None:
    """Every prompt of a bundle starts with its frame (the chat format's system turn, the
    instruction): its cache runs once per Generator and each prompt runs from where it ends, in
    every decode loop, with the logits of the prompt run whole."""
    from rec_edge.config import GenerationConfig
    from rec_edge.runtime.decoding import Usage

    generator = Generator.load(decoder_bundle)
    prompt = generator.prompt("The film was a delight")
    ids = generator._prompt_ids(prompt, 8)
    fixed = generator.encode(generator.prompt("{text}").split("{text}")[0])
    frame = next((i for i, (a, b) in enumerate(zip(fixed, ids)) if a != b), len(fixed))  # noqa: B905
    assert generator._frame_cache(ids)[0] == frame >= len(fixed) - 1  # tokens merge at the seam
    greedy = GenerationConfig(max_new_tokens=16)
    usage = Usage()
    text = generator.generate(prompt, greedy, usage)
    assert usage.cached_tokens == frame
    loops = {
        "copying": lambda g: g._steps(ids),
        "in place": lambda g: g._steps_in_place(ids, len(ids) + 6),
        "batched": lambda g: g._decode_steps(ids, len(ids) + 6),
    }
    whole = Generator.load(decoder_bundle)
    whole.reuse_prefix = False
    assert whole._frame_cache(ids) == (0, [])
    for name, loop in loops.items():
        reused, alone = loop(generator), loop(whole)
        a, b = np.array(next(reused)), np.array(next(alone))
        for _ in range(5):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=name)
            token = int(np.argmax(b))
            a, b = np.array(reused.send(token)), np.array(alone.send(token))
        reused.close()
        alone.close()
    usage = Usage()
    assert whole.generate(prompt, greedy, usage) == text and usage.cached_tokens == 0
    np.testing.assert_allclose(
        generator.option_logprobs(prompt, ["yes", "no"]),
        whole.option_logprobs(prompt, ["yes", "no"]),
        rtol=1e-4,
        atol=1e-4,
    )
