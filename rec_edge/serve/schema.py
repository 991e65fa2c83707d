"""TORCH-FREE request and response schema of `rec-edge serve`: decoding with limits, every
problem named by its field, answers as JSON, and the OpenAPI document that describes them."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rec_edge.config import ServeConfig
from rec_edge.runtime.ranker import Ranked
from rec_edge.runtime.requests import RankRequest, rank_request, rank_request_problems, whole_number

PREDICT_FIELDS = ("texts", "top_k")


class RequestError(Exception):
    """An answer other than 200: its status, a short code and every problem by field."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        problems: list[tuple[str | None, str]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.problems = problems or []
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        if self.problems:
            error["problems"] = [{"field": f, "message": m} for f, m in self.problems]
        return {"error": error}


def _invalid(problems: list[tuple[str | None, str]], too_large: bool = False) -> RequestError:
    first = problems[0]
    message = first[1] if first[0] is None else f"'{first[0]}' {first[1]}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problems)"
    if too_large:
        return RequestError(413, "too_large", message, problems)
    return RequestError(422, "invalid_request", message, problems)


def decode_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestError(400, "malformed_json", f"the body is not valid JSON ({error})") from None
    except RecursionError:
        raise RequestError(400, "malformed_json", "the body's JSON is nested too deeply") from None


def _text_limits(texts: list[str], field: str, limits: ServeConfig) -> list[tuple[str | None, str]]:
    return [
        (f"{field}[{i}]", f"has {len(t)} characters; at most {limits.max_chars} (--max-chars)")
        for i, t in enumerate(texts)
        if len(t) > limits.max_chars
    ]


def decode_predict(body: Any, limits: ServeConfig, labels: int) -> tuple[list[str], int | None]:
    """The texts and top_k of ``{"texts": [...], "top_k": 3}``; a RequestError names each
    problem (422), or the limit passed (413)."""
    if not isinstance(body, dict):
        raise _invalid([(None, 'expected a JSON object: {"texts": ["...", ...], "top_k": 3}')])
    problems: list[tuple[str | None, str]] = [
        (key, f"unknown field (known: {', '.join(PREDICT_FIELDS)})")
        for key in sorted(set(body) - set(PREDICT_FIELDS))
    ]
    texts = body.get("texts")
    if texts is None:
        problems.append(("texts", "is required: a list of strings"))
    elif not isinstance(texts, list):
        problems.append(("texts", f"must be a list of strings, got {type(texts).__name__}"))
    else:
        problems += [
            (f"texts[{i}]", f"must be a string, got {'null' if t is None else type(t).__name__}")
            for i, t in enumerate(texts)
            if not isinstance(t, str)
        ]
        if not texts:
            problems.append(("texts", "is empty; give at least one text"))
    given_k = body.get("top_k")
    top_k = whole_number(given_k)
    if given_k is not None and (top_k is None or not 1 <= top_k <= labels):
        problems.append(("top_k", f"must be an integer from 1 to {labels}, got {given_k!r}"))
    if problems:
        raise _invalid(problems)
    assert isinstance(texts, list)
    if len(texts) > limits.max_texts:
        raise _invalid(
            [("texts", f"has {len(texts)} texts; at most {limits.max_texts} (--max-texts)")],
            too_large=True,
        )
    too_long = _text_limits(texts, "texts", limits)
    if too_long:
        raise _invalid(too_long, too_large=True)
    return texts, top_k


def decode_rank(body: Any, limits: ServeConfig) -> RankRequest:
    """A RankRequest from ``{"liked", "disliked", "candidates", "k"}``; problems as above."""
    problems = rank_request_problems(body)
    if problems:
        raise _invalid(problems)
    request = rank_request(body)
    if len(request.candidates) > limits.max_candidates:
        raise _invalid(
            [
                (
                    "candidates",
                    f"has {len(request.candidates)} items; at most {limits.max_candidates} "
                    "(--max-candidates)",
                )
            ],
            too_large=True,
        )
    too_long = [
        problem
        for key in ("liked", "disliked", "candidates")
        for problem in _text_limits(getattr(request, key), key, limits)
    ]
    if too_long:
        raise _invalid(too_long, too_large=True)
    return request


def encode_predictions(
    probabilities: np.ndarray, labels: list[str], top_k: int | None
) -> list[dict[str, Any]]:
    """One answer per row: the label and its probability, and the ``top_k`` best if asked.
    The floats are those of ``Predictor.predict`` (the same softmax on the same row)."""
    answers = []
    for row in probabilities:
        values = row.tolist()
        best = int(row.argmax())
        answer: dict[str, Any] = {"label": labels[best], "score": values[best]}
        if top_k is not None:
            order = np.argsort(-row, kind="stable")[:top_k].tolist()
            answer["top"] = [{"label": labels[i], "score": values[i]} for i in order]
        answers.append(answer)
    return answers


def encode_ranked(ranked: list[Ranked]) -> list[dict[str, Any]]:
    return [{"item": r.item, "score": r.score, "enjoy": r.enjoy} for r in ranked]


@dataclass(frozen=True)
class _Op:
    summary: str
    request: dict[str, Any] | None
    response: dict[str, Any]
    task: str | None = None  # the served bundles it takes (their names: {name} or "model")
    embeds: bool = False  # it takes the bundles that give sentence vectors, whatever their task
    media: tuple[str, ...] = ("application/json",)  # of the 200 answer


_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": "string"},
                "message": {"type": "string"},
                "problems": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "field": {"type": ["string", "null"]},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_SCORED = {
    "type": "object",
    "properties": {"label": {"type": "string"}, "score": {"type": "number"}},
}
_STOP = {"type": "string", "minLength": 1}
_SAMPLING = {  # what decode_completion honours (OpenAI's names)
    "max_tokens": {"type": "integer", "minimum": 1},
    "max_completion_tokens": {"type": "integer", "minimum": 1},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    "seed": {"type": "integer"},
    "stop": {"anyOf": [_STOP, {"type": "array", "items": _STOP, "maxItems": 4}]},
    "stream": {"type": "boolean"},
    "stream_options": {
        "type": "object",
        "properties": {"include_usage": {"type": "boolean"}},
        "additionalProperties": False,
    },
    "user": {"type": "string"},
}
_OPS = {
    ("/v1/models/{name}/predict", "post"): _Op(
        "Classify texts (classify bundles); answers equal Predictor.predict on the request alone",
        {
            "type": "object",
            "required": ["texts"],
            "properties": {"texts": _STRINGS, "top_k": {"type": "integer", "minimum": 1}},
        },
        {
            "type": "object",
            "properties": {
                "model": {"type": "string"},
                "predictions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            **_SCORED["properties"],  # type: ignore[dict-item]
                            "top": {"type": "array", "items": _SCORED},
                        },
                    },
                },
            },
        },
        task="classify",
    ),
    ("/v1/models/{name}/rank", "post"): _Op(
        "Rank candidates for a user's history (rank bundles), best first",
        {
            "type": "object",
            "required": ["candidates"],
            "properties": {
                "liked": _STRINGS,
                "disliked": _STRINGS,
                "candidates": _STRINGS,
                "k": {"type": "integer", "minimum": 1},
            },
        },
        {
            "type": "object",
            "properties": {
                "model": {"type": "string"},
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "item": {"type": "string"},
                            "score": {"type": "number"},
                            "enjoy": {"type": "number"},
                        },
                    },
                },
            },
        },
        task="rank",
    ),
    ("/v1/models/{name}/reload", "post"): _Op(
        "Load the bundle again from its path, check and warm it, swap it in; refused (409) if bad",
        None,
        {"type": "object"},
    ),
    ("/v1/chat/completions", "post"): _Op(
        "OpenAI chat completion over a decoder bundle (model: its name); stream: true sends "
        "Server-Sent Events",
        {
            "type": "object",
            "required": ["model", "messages"],
            "properties": {
                "model": {"type": "string"},
                "messages": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["role", "content"],
                        "properties": {
                            "role": {"enum": ["system", "user", "assistant"]},
                            "content": {"type": "string"},
                        },
                    },
                },
                **_SAMPLING,
            },
        },
        {"type": "object"},
        task="generate",
        media=("application/json", "text/event-stream"),
    ),
    ("/v1/completions", "post"): _Op(
        "OpenAI text completion over a decoder bundle: the prompt as is, no chat template",
        {
            "type": "object",
            "required": ["model", "prompt"],
            "properties": {"model": {"type": "string"}, "prompt": {"type": "string"}, **_SAMPLING},
        },
        {"type": "object"},
        task="generate",
        media=("application/json", "text/event-stream"),
    ),
    ("/v1/embeddings", "post"): _Op(
        "OpenAI embeddings: a classify bundle's sentence vectors (model: its name), float or "
        "base64 (little-endian float32)",
        {
            "type": "object",
            "required": ["model", "input"],
            "properties": {
                "model": {"type": "string"},
                "input": {"anyOf": [{"type": "string"}, _STRINGS]},
                "encoding_format": {"enum": ["float", "base64"]},
                "dimensions": {"type": "integer"},
                "user": {"type": "string"},
            },
        },
        {"type": "object"},
        embeds=True,
    ),
    ("/v1/models", "get"): _Op(
        "Each bundle: task, labels, recipe, source, sha256 of its model file (models), and "
        "OpenAI's list shape (object, data)",
        None,
        {"type": "object"},
    ),
    ("/healthz", "get"): _Op("Alive", None, {"type": "object"}),
    ("/readyz", "get"): _Op(
        "Every bundle loaded and warmed (503 otherwise)", None, {"type": "object"}
    ),
    ("/metrics", "get"): _Op(
        "Prometheus text format", None, {"type": "string"}, media=("text/plain",)
    ),
}


@dataclass(frozen=True)
class Served:
    """What the schema needs of a served bundle."""

    task: str
    labels: int
    embedding: int | None = None  # the sentence vector's dimensions (POST /v1/embeddings)


def _serves(op: _Op, model: Served) -> bool:
    if op.embeds:
        return model.embedding is not None
    return op.task in (None, model.task)


def _bounded(
    request: dict[str, Any] | None,
    limits: ServeConfig,
    served: Mapping[str, Served] | None,
    names: list[str] | None,
) -> dict[str, Any] | None:
    """A request schema with the server's limits (``--max-texts``, ``--max-chars``, ...), the
    served names, and no field the server would refuse as unknown."""
    if request is None:
        return None
    bounded = copy.deepcopy(request)
    bounded["additionalProperties"] = False
    properties = bounded["properties"]
    text = {"type": "string", "maxLength": limits.max_chars}
    if "texts" in properties:  # predict
        properties["texts"] = {
            "type": "array",
            "items": text,
            "minItems": 1,
            "maxItems": limits.max_texts,
        }
        labels = [m.labels for n, m in (served or {}).items() if names is None or n in names]
        if labels:
            properties["top_k"]["maximum"] = min(labels)
    if "candidates" in properties:  # rank
        for key in ("liked", "disliked", "candidates"):
            properties[key] = {"type": "array", "items": text}
        properties["candidates"]["maxItems"] = limits.max_candidates
    if "input" in properties:  # embeddings
        texts = {"type": "array", "items": text, "minItems": 1, "maxItems": limits.max_texts}
        properties["input"] = {"anyOf": [text, texts]}
        widths = {m.embedding for n, m in (served or {}).items() if n in (names or [])}
        properties["dimensions"] = {"type": "integer", "enum": sorted(w for w in widths if w)}
    if "messages" in properties:  # chat: each message as a text
        properties["messages"]["maxItems"] = limits.max_texts
        properties["messages"]["items"]["properties"]["content"] = text
    if "prompt" in properties:  # a text completion: one text, not empty
        properties["prompt"] = {**text, "minLength": 1}
    if "model" in properties and names is not None:  # OpenAI's: the bundle named in the body
        properties["model"] = {"type": "string", "enum": names}
    return bounded


def openapi(
    version: str, limits: ServeConfig | None = None, served: Mapping[str, Served] | None = None
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the server (GET /openapi.json). With ``limits`` and
    ``served`` (each bundle's name, task and labels) it is this server's own: each route takes
    the names of the bundles it serves (a route that none serves is left out) and the sizes the
    server accepts, so that a request the schema allows is answered, and one it refuses is an
    error that names the field."""
    paths: dict[str, dict[str, Any]] = {}
    for (path, method), op in _OPS.items():
        names = None
        if served is not None and ("{name}" in path or op.task is not None or op.embeds):
            names = sorted(n for n, m in served.items() if _serves(op, m))
            if not names:
                continue
        request = _bounded(op.request, limits, served, names) if limits else op.request
        entry: dict[str, Any] = {
            "summary": op.summary,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {media: {"schema": op.response} for media in op.media},
                },
                "default": {
                    "description": "An error",
                    "content": {"application/json": {"schema": _ERROR}},
                },
            },
        }
        if "{name}" in path:
            name: dict[str, Any] = {"type": "string", **({"enum": names} if names else {})}
            entry["parameters"] = [{"name": "name", "in": "path", "required": True, "schema": name}]
        if request is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": request}},
            }
        paths.setdefault(path, {})[method] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "rec-edge serve", "version": version},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": paths,
    }
