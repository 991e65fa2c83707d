"""Property-based tests (Hypothesis) of the request schemas every route decodes: any JSON body is
either what the client meant, read back exactly, or one RequestError (400, 413 or 422) whose
problems name fields of the body. Never another exception (that would be a 500)."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rec_edge.config import ServeConfig
from rec_edge.serve.embeddings import decode_embeddings
from rec_edge.serve.kserve import decode_infer
from rec_edge.serve.openai import check_size, decode_completion
from rec_edge.serve.schema import RequestError, decode_json, decode_predict, decode_rank

LIMITS = ServeConfig(bundles={"m": "m"}, max_texts=4, max_chars=40, max_candidates=6)
SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None)

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=50)
SCALAR = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | TEXT
)
JSON = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def body_of(keys: list[str], typical: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy:
    """Objects over the route's fields (and a stray one), each value either a likely one or any
    JSON at all; now and then not an object."""
    value = {k: typical.get(k, JSON) | JSON for k in keys}
    fields = st.fixed_dictionaries({}, optional={**value, "stray": JSON})
    return fields | JSON


def assert_named(error: RequestError, body: Any) -> None:
    """A client error whose every problem names a field of the body (or the body itself)."""
    assert error.status in (400, 413, 422), error.status
    assert error.message
    for field, message in error.problems:
        assert message
        if field is not None:
            root = re.split(r"[.\[]", field, maxsplit=1)[0]
            assert isinstance(body, dict), (field, body)
            named = field in body or root in body
            assert named or root in ("texts", "model", "messages", "prompt", "input"), field
    json.dumps(error.body())  # what the server writes


TEXTS = st.lists(TEXT, max_size=6)


@SETTINGS
@given(body=body_of(["texts", "top_k"], {"texts": TEXTS, "top_k": st.integers(-2, 9)}))
def test_predict_bodies(body: Any) -> None:
    try:
        texts, top_k = decode_predict(body, LIMITS, labels=5)
    except RequestError as error:
        assert_named(error, body)
        return
    assert texts == body["texts"] and 1 <= len(texts) <= LIMITS.max_texts
    assert all(isinstance(t, str) and len(t) <= LIMITS.max_chars for t in texts)
    assert top_k is None or (type(top_k) is int and 1 <= top_k <= 5)


TITLES = st.lists(TEXT, max_size=8)


@SETTINGS
@given(
    body=body_of(
        ["liked", "disliked", "candidates", "k"],
        {"liked": TITLES, "disliked": TITLES, "candidates": TITLES, "k": st.integers(-1, 9)},
    )
)
def test_rank_bodies(body: Any) -> None:
    try:
        request = decode_rank(body, LIMITS)
    except RequestError as error:
        assert_named(error, body)
        return
    assert request.candidates == body["candidates"]
    assert len(request.candidates) <= LIMITS.max_candidates
    assert request.k is None or (type(request.k) is int and request.k >= 1)


MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool"]), "content": TEXT}
)
GENERATION = {
    "model": st.sampled_from(["m", ""]),
    "messages": st.lists(MESSAGE, max_size=5),
    "prompt": TEXT | st.lists(TEXT, max_size=2),
    "max_tokens": st.integers(-1, 64) | st.floats(-1, 64),
    "temperature": st.floats(-1, 3),
    "top_p": st.floats(-0.5, 1.5),
    "seed": st.integers(-(2**64), 2**64),
    "stop": TEXT | st.lists(TEXT, max_size=6),
    "stream": st.booleans(),
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
    "n": st.integers(0, 3),
    "user": TEXT,
}


@SETTINGS
@given(chat=st.booleans(), data=st.data())
def test_completion_bodies(chat: bool, data: st.DataObject) -> None:
    body = data.draw(body_of(sorted(GENERATION), GENERATION))
    try:
        completion = decode_completion(body, chat, lambda model, given: f"{model}:{given}", 16)
        check_size(body["messages" if chat else "prompt"], chat, LIMITS)
    except RequestError as error:
        assert_named(error, body)
        return
    config = completion.config
    assert completion.model == body["model"] != ""
    assert type(config.max_new_tokens) is int and config.max_new_tokens >= 1
    assert 0 <= config.temperature <= 2 and 0 < config.top_p <= 1
    assert config.seed is None or type(config.seed) is int
    assert all(isinstance(s, str) and s for s in config.stop)


@SETTINGS
@given(
    body=body_of(
        ["model", "input", "encoding_format", "dimensions"],
        {
            "model": st.sampled_from(["m", ""]),
            "input": TEXT | TEXTS,
            "encoding_format": st.sampled_from(["float", "base64", "int8"]),
            "dimensions": st.integers(-1, 400),
        },
    )
)
def test_embedding_bodies(body: Any) -> None:
    try:
        request = decode_embeddings(body, LIMITS)
    except RequestError as error:
        assert_named(error, body)
        return
    given_input = body["input"]
    assert request.texts == ([given_input] if isinstance(given_input, str) else given_input)
    assert request.dimensions is None or type(request.dimensions) is int


TENSOR = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["text", "TEXT"]),
        "datatype": st.sampled_from(["BYTES", "FP32"]),
        "shape": st.lists(st.integers(0, 6), max_size=2),
        "data": TEXTS | st.lists(TEXTS, max_size=3),
    },
    optional={"parameters": st.dictionaries(st.sampled_from(["binary_data_size", "x"]), JSON)},
)


@SETTINGS
@given(
    body=body_of(
        ["inputs", "outputs", "id"],
        {
            "inputs": st.lists(TENSOR, max_size=2),
            "outputs": st.lists(
                st.fixed_dictionaries({"name": st.sampled_from(["label", "scores", "nope"])}),
                max_size=3,
            ),
        },
    )
)
def test_kserve_infer_bodies(body: Any) -> None:
    try:
        texts, names, _ = decode_infer(body, LIMITS)
    except RequestError as error:
        assert error.status in (400, 413) and error.message
        return
    assert 1 <= len(texts) <= LIMITS.max_texts and all(isinstance(t, str) for t in texts)
    assert set(names) <= {"label", "score", "scores"}


@SETTINGS
@given(raw=st.binary(max_size=80) | JSON.map(lambda v: json.dumps(v).encode()))
def test_any_bytes_are_json_or_a_400(raw: bytes) -> None:
    try:
        decode_json(raw)
    except RequestError as error:
        assert error.status == 400 and error.code == "malformed_json"


def test_deep_json_is_a_400() -> None:
    try:
        decode_json(b"[" * 100_000 + b"]" * 100_000)
    except RequestError as error:
        assert error.status == 400 and "nested too deeply" in error.message
    else:
        raise AssertionError("100,000 nested arrays decoded")
