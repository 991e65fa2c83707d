"""TORCH-FREE KServe's Open Inference Protocol (v2, REST) in `rec-edge serve`, so that the server
drops into KServe, Seldon or any v2 client (tritonclient.http) as a custom runtime.

    GET  /v2                          server metadata
    GET  /v2/health/live, /ready      200 when live / every bundle loaded and warmed
    GET  /v2/models/{name}            model metadata: inputs, outputs, the labels
    GET  /v2/models/{name}/ready      200 when the bundle serves
    POST /v2/models/{name}/infer      classify bundles (either family)

An infer request gives one input, ``text`` (BYTES, shape [N] or [N, 1], the texts as JSON
``data``); the answer's outputs are ``label`` (BYTES [N]), ``score`` (FP32 [N]: the label's
probability) and ``scores`` (FP32 [N, labels], in the order of the metadata's ``labels``),
or those the request names in ``outputs``. The texts go through the bundle's micro-batcher as
a predict request's do, so the numbers are ``Predictor.predict``'s. The protocol's binary tensor
extension is refused by name (a v2 client sends JSON with ``binary_data=False``). Errors are the
protocol's ``{"error": "message"}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rec_edge._version import __version__
from rec_edge.config import ServeConfig
from rec_edge.serve.schema import RequestError
from rec_edge.tasks import task_spec

if TYPE_CHECKING:
    from rec_edge.serve.models import ServedModel

INPUT = "text"
OUTPUTS = ("label", "score", "scores")


def model_metadata(model: ServedModel) -> dict[str, Any]:
    labels = list(model.predictor.manifest.labels)
    return {
        "name": model.name,
        "versions": ["1"],
        "platform": "rec-edge",
        "inputs": [{"name": INPUT, "datatype": "BYTES", "shape": [-1]}],
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "score", "datatype": "FP32", "shape": [-1]},
            {"name": "scores", "datatype": "FP32", "shape": [-1, len(labels)]},
        ],
        "parameters": {"task": model.task, "labels": labels},
    }


def decode_infer(body: Any, limits: ServeConfig) -> tuple[list[str], tuple[str, ...], Any]:
    """(texts, the outputs asked for, the request's id) of an infer request; each problem a
    RequestError that names the field."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise _bad("'inputs' must be a list of tensors")
    inputs = body["inputs"]
    if len(inputs) != 1 or not isinstance(inputs[0], dict) or inputs[0].get("name") != INPUT:
        raise _bad(f"expected one input named {INPUT!r} (BYTES, shape [N])")
    tensor = inputs[0]
    if tensor.get("datatype") != "BYTES":
        raise _bad(f"input {INPUT!r} must have datatype BYTES, got {tensor.get('datatype')!r}")
    if "binary_data_size" in (tensor.get("parameters") or {}):
        raise _bad("binary tensor data is not supported: send JSON data (binary_data=False)")
    shape, data = tensor.get("shape"), tensor.get("data")
    if isinstance(data, list) and data and all(isinstance(d, list) for d in data):
        data = [x for row in data for x in row]  # [[...], ...]: the row-major flattening
    if not isinstance(data, list) or not data or not all(isinstance(d, str) for d in data):
        raise _bad(f"input {INPUT!r} needs 'data': a non-empty list of strings")
    if not _shape_of(shape, len(data)):
        raise _bad(f"input {INPUT!r} has shape {shape!r} for {len(data)} strings ([N] or [N, 1])")
    if len(data) > limits.max_texts:
        raise RequestError(413, "too_large", f"{len(data)} texts; at most {limits.max_texts}")
    long = [i for i, text in enumerate(data) if len(text) > limits.max_chars]
    if long:
        message = f"text {long[0]} has {len(data[long[0]])} characters; at most {limits.max_chars}"
        raise RequestError(413, "too_large", message)
    wanted = body.get("outputs") or [{"name": name} for name in OUTPUTS]
    if not isinstance(wanted, list) or not all(isinstance(o, dict) for o in wanted):
        raise _bad("'outputs' must be a list of {\"name\": ...}")
    names = tuple(o.get("name") for o in wanted)
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown:
        raise _bad(f"unknown outputs {unknown} (known: {', '.join(OUTPUTS)})")
    return data, names, body.get("id")


def _shape_of(shape: Any, count: int) -> bool:
    return shape in ([count], [count, 1])


def infer_body(name: str, request_id: Any, scored: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The answer: each asked output as a v2 tensor (JSON data, row-major)."""
    probabilities = np.asarray(scored.probabilities, np.float32)
    best = probabilities.argmax(axis=-1)
    tensors = {
        "label": ("BYTES", [len(best)], [scored.labels[i] for i in best.tolist()]),
        "score": ("FP32", [len(best)], probabilities[np.arange(len(best)), best].tolist()),
        "scores": ("FP32", list(probabilities.shape), probabilities.reshape(-1).tolist()),
    }
    outputs = [
        {"name": n, "datatype": tensors[n][0], "shape": tensors[n][1], "data": tensors[n][2]}
        for n in names
    ]
    body: dict[str, Any] = {"model_name": name, "model_version": "1", "outputs": outputs}
    if request_id is not None:
        body["id"] = request_id
    return body


def _bad(message: str) -> RequestError:
    return RequestError(400, "invalid_request", message)


def _error(error: RequestError) -> Response:
    return JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers)


class KServe:
    """The v2 routes over a Server's bundles (its models, its batchers, its limits)."""

    def __init__(self, server: Any):  # serve.app.Server (which imports this module)
        self.server = server

    def routes(self) -> list[Route]:
        return [
            Route("/v2", self.metadata, methods=["GET"]),
            Route("/v2/health/live", self.live, methods=["GET"]),
            Route("/v2/health/ready", self.ready, methods=["GET"]),
            Route("/v2/models/{name}", self.model, methods=["GET"]),
            Route("/v2/models/{name}/ready", self.model_ready, methods=["GET"]),
            Route("/v2/models/{name}/infer", self.infer, methods=["POST"]),
        ]

    async def metadata(self, _: Request) -> Response:
        return JSONResponse({"name": "rec-edge", "version": __version__, "extensions": []})

    async def live(self, _: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(self, _: Request) -> Response:
        ready = self.server.ready
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    def _classify(self, request: Request) -> ServedModel:
        model = self.server.models.get(request.path_params["name"])
        if model is None:
            raise RequestError(404, "unknown_model", f"no model {request.path_params['name']!r}")
        if not task_spec(model.task).labelled:
            raise RequestError(
                400,
                "wrong_task",
                f"model {model.name!r} is a {model.task!r} bundle: v2 infer serves classify "
                f"bundles; use POST {model.endpoint}",
            )
        return model

    async def model(self, request: Request) -> Response:
        try:
            return JSONResponse(model_metadata(self._classify(request)))
        except RequestError as error:
            return _error(error)

    async def model_ready(self, request: Request) -> Response:
        try:
            self._classify(request)
        except RequestError as error:
            return _error(error)
        ready = self.server.ready
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    async def infer(self, request: Request) -> Response:
        limits = self.server.config
        try:
            model = self._classify(request)
            if "inference-header-content-length" in request.headers:  # JSON, then raw bytes
                raise _bad(
                    "binary tensor data is not supported: send JSON data (binary_data=False)"
                )
            scored, (names, request_id) = await self.server.batched(
                model, request, lambda body: _items(decode_infer(body, limits))
            )
        except RequestError as error:
            return _error(error)
        return JSONResponse(infer_body(model.name, request_id, scored, names))


def _items(decoded: tuple[list[str], tuple[str, ...], Any]) -> tuple[list[str], Any]:
    """What the batcher takes: the items, and what the answer needs beside them."""
    texts, names, request_id = decoded
    return texts, (names, request_id)
