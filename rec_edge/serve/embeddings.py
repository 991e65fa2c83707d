"""TORCH-FREE OpenAI-compatible embeddings in `rec-edge serve`: ``POST /v1/embeddings`` over the
classify bundles that give a sentence vector (``Predictor.embed``).

The request names a served bundle as ``model`` and gives ``input``, a string or a list of them
(token arrays are refused: the bundle has its own tokenizer); ``encoding_format`` is ``float``
or ``base64`` (little-endian float32 bytes, what the ``openai`` client asks for by default);
``dimensions`` must be the bundle's own. The answer is OpenAI's list of ``embedding`` objects.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rec_edge.config import ServeConfig
from rec_edge.runtime.predictor import Predictor
from rec_edge.runtime.requests import whole_number
from rec_edge.serve.models import ServedModel
from rec_edge.serve.schema import RequestError, _invalid

FIELDS = ("model", "input", "encoding_format", "dimensions", "user")


@dataclass(frozen=True)
class EmbeddingRequest:
    model: str
    texts: list[str]
    base64: bool
    dimensions: int | None


def decode_embeddings(body: Any, limits: ServeConfig) -> EmbeddingRequest:
    """The request's fields; each problem named by its field (422), a limit passed 413."""
    if not isinstance(body, dict):
        raise _invalid([(None, 'expected a JSON object: {"model": "...", "input": [...]}')])
    problems: list[tuple[str | None, str]] = [
        (key, f"unknown field (known: {', '.join(FIELDS)})")
        for key in sorted(set(body) - set(FIELDS))
    ]
    model = body.get("model")
    if not isinstance(model, str) or not model:
        problems.append(("model", "must name a served classify bundle"))
    given = body.get("input")
    texts = [given] if isinstance(given, str) else given
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        problems.append(("input", "must be a string or a non-empty list of strings"))
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        problems.append(("encoding_format", f"must be 'float' or 'base64', got {fmt!r}"))
    asked = body.get("dimensions")
    dimensions = whole_number(asked)
    if asked is not None and dimensions is None:
        problems.append(("dimensions", f"must be an integer, got {asked!r}"))
    if problems:
        raise _invalid(problems)
    assert isinstance(texts, list) and isinstance(model, str)
    if len(texts) > limits.max_texts:
        message = f"has {len(texts)} texts; at most {limits.max_texts} (--max-texts)"
        raise _invalid([("input", message)], too_large=True)
    too_long: list[tuple[str | None, str]] = [
        (f"input[{i}]", f"has {len(t)} characters; at most {limits.max_chars} (--max-chars)")
        for i, t in enumerate(texts)
        if len(t) > limits.max_chars
    ]
    if too_long:
        raise _invalid(too_long, too_large=True)
    return EmbeddingRequest(model, texts, fmt == "base64", dimensions)


def embedder(models: Mapping[str, ServedModel], name: str) -> tuple[ServedModel, Predictor]:
    """The served bundle ``name`` and its Predictor, if it gives sentence vectors (else 404/400,
    naming the field)."""
    model = models.get(name)
    if model is None:
        message = f"no model {name!r} (served: {', '.join(models)})"
        raise RequestError(404, "unknown_model", message, [("model", message)])
    predictor = model.predictor
    if not isinstance(predictor, Predictor) or predictor.embedding_size is None:
        message = (
            f"model {name!r} gives no sentence vectors (a {model.task!r} bundle without the "
            f"'embedding' output); use POST {model.endpoint}"
        )
        raise RequestError(400, "wrong_task", message, [("model", message)])
    return model, predictor


def check_dimensions(request: EmbeddingRequest, width: int) -> None:
    if request.dimensions is not None and request.dimensions != width:
        message = f"this bundle's vectors have {width} dimensions; got {request.dimensions}"
        raise _invalid([("dimensions", message)])


def embeddings_body(request: EmbeddingRequest, vectors: np.ndarray, tokens: int) -> dict[str, Any]:
    """OpenAI's answer: a list of ``embedding`` objects in the order of the input."""
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": (
                base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
                if request.base64
                else vector.tolist()
            ),
        }
        for i, vector in enumerate(vectors)
    ]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "list", "data": data, "model": request.model, "usage": usage}
