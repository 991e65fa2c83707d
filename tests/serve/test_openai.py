"""OpenAI-compatible generation in `rec-edge serve`: the official `openai` client against a real
server on a loopback port, over a decoder bundle of the tiny Llama (SmolLM2's tokenizer and
chat template): answers equal the torch-free Generator's, streamed or whole, and every refusal
is a clear error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from rec_edge.config import GenerationConfig
from rec_edge.runtime import Generator
from rec_edge.runtime.decoding import Usage
from tests.helpers import LiveServer, live_server

CHAT = [{"role": "user", "content": "Tell me about the sea."}]


@pytest.fixture(scope="module")
def writer(writer_bundle: Path) -> Path:
    return writer_bundle


@pytest.fixture(scope="module")
def live(
    writer: Path, tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    log = tmp_path_factory.mktemp("openai-log") / "log"
    with live_server([str(writer), "--bundle", f"topics={tiny_bundle}"], log) as server:
        yield server


@pytest.fixture(scope="module")
def client(live: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def expected(writer: Path, prompt: str, config: GenerationConfig) -> tuple[str, Usage]:
    usage = Usage()
    return Generator.load(writer).generate(prompt, config, usage), usage


def test_chat_prompt_is_the_tokenizers_chat_template(writer: Path, tiny_llama: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    generator = Generator.load(writer)
    conversations = [
        CHAT,
        [{"role": "system", "content": "Be brief."}, *CHAT],
        [
            *CHAT,
            {"role": "assistant", "content": "It is wet."},
            {"role": "user", "content": "And?"},
        ],
    ]
    for messages in conversations:
        assert generator.chat_prompt(messages) == tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )


def test_chat_completion_is_the_generators_answer(writer: Path, client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="writer",
        messages=CHAT,
        max_tokens=12,
        temperature=0,  # type: ignore[arg-type]
    )
    prompt = Generator.load(writer).chat_prompt(CHAT)
    text, usage = expected(writer, prompt, GenerationConfig(max_new_tokens=12))
    assert reply.object == "chat.completion" and reply.model == "writer"
    (choice,) = reply.choices
    assert choice.message.role == "assistant" and choice.message.content == text
    assert choice.finish_reason == usage.finish_reason
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    # the chat format's system turn came from the bundle's prompt-frame cache
    details = reply.usage.prompt_tokens_details
    assert details is not None and details.cached_tokens == usage.cached_tokens > 0


def test_a_streamed_chat_is_the_same_answer_in_pieces(writer: Path, client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="writer",
            messages=CHAT,  # type: ignore[arg-type]
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    prompt = Generator.load(writer).chat_prompt(CHAT)
    text, usage = expected(writer, prompt, GenerationConfig(max_new_tokens=12))
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(pieces) == text and len([p for p in pieces if p]) > 1
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finish[-1] == usage.finish_reason and not any(finish[:-1])
    assert (
        chunks[-1].usage is not None
        and chunks[-1].usage.completion_tokens == usage.completion_tokens
    )


def test_concurrent_streams_are_written_together_each_its_own_answer(
    writer: Path, client: openai.OpenAI, live: LiveServer
) -> None:
    """Four streamed chats at once: the server writes them side by side (its Generator decodes
    them together, runtime.batching), each the answer it gets alone."""
    from concurrent.futures import ThreadPoolExecutor

    questions = ["Tell me about the sea.", "Name a colour.", "Why?", "Write a long story " * 5]
    generator = Generator.load(writer)
    alone = [
        generator.generate(
            generator.chat_prompt([{"role": "user", "content": q}]),
            GenerationConfig(max_new_tokens=24),
        )
        for q in questions
    ]

    def ask(question: str) -> str:
        pieces = []
        stream = client.chat.completions.create(
            model="writer",
            messages=[{"role": "user", "content": question}],
            max_tokens=24,
            temperature=0,
            stream=True,
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
        return "".join(pieces)

    def decoded() -> tuple[float, float]:
        text = httpx.get(f"{live.url}/metrics").text
        values = [
            float(line.split()[-1])
            for name in ("rec_edge_decode_steps", "rec_edge_decode_step_answers")
            for line in text.splitlines()
            if line.startswith(name + '{model="writer"}')
        ]
        return values[0], values[1]

    together = False
    for _ in range(3):  # requests overlap on the server unless one wave comes in too slowly
        steps, rows = decoded()
        with ThreadPoolExecutor(len(questions)) as pool:
            answers = list(pool.map(ask, questions))
        assert answers == alone
        more_steps, more_rows = decoded()
        assert more_steps > steps
        together = more_rows - rows > more_steps - steps  # some steps carried several answers
        if together:
            break
    assert together


def test_text_completion_and_seeded_sampling(writer: Path, client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model="writer", prompt="The sea is", max_tokens=8, temperature=0
    )
    text, _ = expected(writer, "The sea is", GenerationConfig(max_new_tokens=8))
    assert reply.object == "text_completion" and reply.choices[0].text == text
    sampled = [
        client.completions.create(
            model="writer", prompt="The sea is", max_tokens=8, temperature=0.9, seed=3
        )
        .choices[0]
        .text
        for _ in range(2)
    ]
    config = GenerationConfig(max_new_tokens=8, temperature=0.9, seed=3)
    assert sampled == [expected(writer, "The sea is", config)[0]] * 2
    stopped = client.completions.create(
        model="writer", prompt="The sea is", max_tokens=8, temperature=0, stop=[text[2:4]]
    )
    assert stopped.choices[0].text == text[: text.index(text[2:4])]
    assert stopped.choices[0].finish_reason == "stop"


def test_models_are_listed_in_openais_shape(client: openai.OpenAI) -> None:
    assert {m.id for m in client.models.list()} == {"writer", "topics"}


def test_refusals_are_clear_errors(client: openai.OpenAI, live: LiveServer) -> None:
    with live.client() as http:
        response = http.post("/v1/models/writer/predict", json={"texts": ["x"]})
    assert response.status_code == 400 and "POST /v1/chat/completions" in response.text
    with pytest.raises(openai.NotFoundError, match="no model 'nope'"):
        client.chat.completions.create(model="nope", messages=CHAT)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match="does not write text"):
        client.chat.completions.create(model="topics", messages=CHAT)  # type: ignore[arg-type]
    with pytest.raises(openai.UnprocessableEntityError, match="'n' is not supported"):
        client.chat.completions.create(model="writer", messages=CHAT, n=2)  # type: ignore[arg-type]
    with pytest.raises(openai.UnprocessableEntityError, match=r"messages\[0\]\.role"):
        client.chat.completions.create(
            model="writer",
            messages=[{"role": "robot", "content": "hi"}],  # type: ignore[list-item]
        )
    with pytest.raises(openai.UnprocessableEntityError, match="temperature"):
        client.completions.create(model="writer", prompt="x", temperature=3)
