"""Answers written at the same time decode together (``runtime.batching``): each answer's logits,
step by step, are the ones it gets decoding alone, whatever the others do (their lengths, when
they send their tokens, when they end, more answers than rows); the tiny Llama's fused bundle,
real onnxruntime, real threads."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from rec_edge.config import GenerationConfig
from rec_edge.runtime import Generator
from rec_edge.runtime.batching import SLOTS

PROMPTS = [
    "The film was a delight",
    "Tell me about the sea and the ships that sail on it, at length",
    "ok",
    "A very long review that goes on " * 6,
    "Another answer, beyond the batch's rows",
    "And one more",
]
STEPS = 10


def forced_tokens(seed: int) -> list[int]:
    """Tokens sent after each step (teacher forcing: the logits, not greedy ties, compared)."""
    return np.random.default_rng(seed).integers(5, 90, STEPS).tolist()


def logits_of(generator: Generator, prompt: str, tokens: list[int]) -> list[np.ndarray]:
    ids = generator._prompt_ids(generator.prompt(prompt), STEPS + 1)
    steps = generator._decode_steps(ids, len(ids) + STEPS + 1)
    out = [np.array(next(steps))]  # a copy: a loop's logits may live in its binding's output
    for token in tokens:
        out.append(np.array(steps.send(token)))
    steps.close()
    return out


@pytest.mark.parametrize("prompts_first", [True, False])
def test_concurrent_answers_get_the_logits_they_get_alone(
    decoder_bundle: Path, prompts_first: bool
) -> None:
    generator = Generator.load(decoder_bundle)
    assert generator.batching  # the fused graph on the CPU
    generator.batching = False
    alone = [logits_of(generator, p, forced_tokens(i)) for i, p in enumerate(PROMPTS)]
    generator.batching = True
    batcher = generator._batcher
    assert batcher is not None
    batcher.prompts_first = prompts_first  # steps wait for prompts, or take turns with them
    got: dict[int, list[np.ndarray]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(PROMPTS))

    def write(i: int) -> None:
        try:
            start.wait()
            tokens = forced_tokens(i)[: 3 if i == 2 else STEPS]  # one answer ends early
            if i == 1:
                threading.Event().wait(0.01)  # one reader late: the others go on without it
            got[i] = logits_of(generator, PROMPTS[i], tokens)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(PROMPTS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    for i, mine in got.items():
        for step, (a, b) in enumerate(zip(mine, alone[i], strict=False)):
            np.testing.assert_allclose(
                a, b, rtol=1e-4, atol=1e-4, err_msg=f"answer {i} step {step}"
            )
    assert len(got) == len(PROMPTS)
    assert batcher.stats["rows"] > batcher.stats["steps"] > 0  # some steps carried several
    assert batcher._held == 0 and batcher._rows == []  # every row given back
    assert len(PROMPTS) > SLOTS  # so some answers decoded alone, beside the batch


def test_a_batched_answer_is_the_one_written_alone(decoder_bundle: Path) -> None:
    generator = Generator.load(decoder_bundle)
    greedy = GenerationConfig(max_new_tokens=16)
    prompts = [generator.prompt(p) for p in PROMPTS[:SLOTS]]
    generator.batching = False
    alone = [generator.generate(p, greedy) for p in prompts]
    generator.batching = True
    answers: dict[int, str] = {}
    start = threading.Barrier(len(prompts))

    def write(i: int) -> None:
        start.wait()
        answers[i] = generator.generate(prompts[i], greedy)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [answers[i] for i in range(len(prompts))] == alone


def test_rows_are_bounded_by_slots_and_room(decoder_bundle: Path) -> None:
    from rec_edge.runtime.batching import ROOM

    batcher = Generator.load(decoder_bundle)._batcher
    assert batcher is not None
    assert batcher.open(ROOM + 1) is None  # too long for a row: it decodes alone
    held = [batcher.open(ROOM) for _ in range(SLOTS)]
    assert all(held) and batcher.open(8) is None  # every row taken: the next decodes alone
    for answer in held:
        assert answer is not None
        batcher._close(answer)
    assert batcher.open(8) is not None


def test_a_failed_step_fails_its_answers_and_the_rows_recover(
    decoder_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batched step that raises (a broken session run): each answer in it hears the error,
    gives its row back, and the next answers decode as before."""
    generator = Generator.load(decoder_bundle)
    batcher = generator._batcher
    assert batcher is not None
    expected = logits_of(generator, PROMPTS[0], forced_tokens(0))
    run = generator.session.run_with_iobinding
    calls = {"n": 0}

    def second_run_fails(binding: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the prompt's run passes, the first step fails
            raise RuntimeError("the session failed")
        run(binding)

    monkeypatch.setattr(generator.session, "run_with_iobinding", second_run_fails)
    with pytest.raises(RuntimeError, match="the session failed"):
        logits_of(generator, PROMPTS[0], forced_tokens(0))
    assert batcher._held == 0 and batcher._rows == [] and not batcher._running
    again = logits_of(generator, PROMPTS[0], forced_tokens(0))
    for a, b in zip(again, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
