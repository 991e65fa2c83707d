"""TORCH-FREE HTTP face of `rec-edge serve` (Starlette): routes over the served models, and a
front door (auth, access log, request metrics, JSON errors) that wraps them."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rec_edge._version import __version__
from rec_edge.config import ServeConfig
from rec_edge.errors import ConfigError, DataError
from rec_edge.runtime.decoding import Usage
from rec_edge.runtime.generator import Generator
from rec_edge.serve.batcher import Overloaded
from rec_edge.serve.embeddings import (
    check_dimensions,
    decode_embeddings,
    embedder,
    embeddings_body,
)
from rec_edge.serve.kserve import KServe
from rec_edge.serve.metrics import ServeMetrics
from rec_edge.serve.models import ServedModel
from rec_edge.serve.openai import (
    Answer,
    answer_events,
    check_size,
    decode_completion,
    prompt_for,
)
from rec_edge.serve.schema import (
    RequestError,
    Served,
    decode_json,
    decode_predict,
    decode_rank,
    encode_predictions,
    encode_ranked,
    openapi,
)

log = logging.getLogger("rec_edge.serve")
access = logging.getLogger("rec_edge.access")
OPEN_PATHS = ("/healthz", "/readyz")  # probes answer without a key
FIXED_PATHS = (
    "/v1/models",
    "/v1/chat/completions",
    "/v1/completions",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
)
# max_tokens when a request gives none: OpenAI's 16 for text completions; a chat answer's length
DEFAULT_TOKENS = {True: 256, False: 16}


def read_api_keys(path: str) -> list[bytes]:
    """The bearer tokens of ``--api-key-file``: one per line, blank lines and # comments skipped."""
    try:
        lines = Path(path).read_text("utf-8").splitlines()
    except OSError as error:
        raise ConfigError(f"--api-key-file {path}: cannot be read ({error.strerror})") from None
    keys = [line.strip().encode() for line in lines if line.strip() and not line.startswith("#")]
    if not keys:
        raise ConfigError(f"--api-key-file {path}: holds no key (one token per line)")
    return keys


def _error(error: RequestError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes ``limit`` bytes."""
    message = f"passes {limit} bytes (--max-body-bytes)"
    too_large = RequestError(413, "too_large", f"the body {message}", [("body", message)])
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


class Server:
    """The routes over ``models``; ``app`` is the ASGI application (front door included)."""

    def __init__(self, config: ServeConfig, models: dict[str, ServedModel]):
        self.config = config
        self.models = models
        self.metrics = ServeMetrics()
        self.ready = False
        self.keys = read_api_keys(config.api_key_file) if config.api_key_file else []
        routes = [
            Route("/v1/models/{name}/predict", self.predict, methods=["POST"]),
            Route("/v1/models/{name}/rank", self.rank, methods=["POST"]),
            Route("/v1/models/{name}/reload", self.reload, methods=["POST"]),
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/v1/completions", self.completions, methods=["POST"]),
            Route("/v1/embeddings", self.embeddings, methods=["POST"]),
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.render_metrics, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            *KServe(self).routes(),  # KServe's Open Inference Protocol (v2)
        ]
        starlette = Starlette(
            routes=routes,
            lifespan=self.lifespan,
            exception_handlers={HTTPException: self._http_error, Exception: self._crash},
        )
        self.app: ASGIApp = FrontDoor(starlette, self)

    @asynccontextmanager
    async def lifespan(self, _: Starlette) -> AsyncIterator[None]:
        for model in self.models.values():
            model.start(observe=self.metrics.batch.labels(model.name).observe)
            self._watch(model)
        loop = asyncio.get_running_loop()
        # not in the main thread (tests), or Windows: no SIGHUP, POST .../reload still works
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, self._reload_all)
        self.ready = True
        log.info(
            "ready: %s",
            ", ".join(f"{n} (session runs of {m.session_batch})" for n, m in self.models.items()),
        )
        try:
            yield
        finally:
            self.ready = False
            for model in self.models.values():
                await model.close()

    def _watch(self, model: ServedModel) -> None:
        batcher = model.batcher
        assert batcher is not None
        self.metrics.queue.labels(model.name).set_function(lambda: batcher.queued)
        self.metrics.rate.labels(model.name).set_function(batcher.items_per_second)

    def _reload_all(self) -> None:
        async def reload_all() -> None:
            for name in self.models:
                try:
                    await self.models[name].reload()
                    log.info("SIGHUP: %s reloaded", name)
                except Exception as error:  # noqa: BLE001  # whatever failed, keep serving
                    log.error("SIGHUP: %s refused, the old bundle keeps serving: %s", name, error)

        asyncio.get_running_loop().create_task(reload_all())

    def _model(self, request: Request, task: str | None = None) -> ServedModel:
        name = request.path_params["name"]
        model = self.models.get(name)
        if model is None:
            raise RequestError(
                404, "unknown_model", f"no model {name!r} (served: {', '.join(self.models)})"
            )
        if task is not None and model.task != task:
            raise RequestError(
                400,
                "wrong_task",
                f"model {name!r} is a {model.task!r} bundle; use POST {model.endpoint}",
            )
        return model

    async def batched(self, model: ServedModel, request: Request, decode: Any) -> Any:
        """Read and decode the request while the batch announces it; queue its items; wait."""
        batcher = model.batcher
        assert batcher is not None
        try:
            batcher.check()  # shed before reading the body: a refusal must cost little
            batcher.announce()
        except Overloaded as error:
            raise self._overloaded(model, error) from None
        try:
            items, extra = decode(
                decode_json(await _read_body(request, self.config.max_body_bytes))
            )
        except BaseException:
            batcher.withdraw()
            raise
        request.state.items = len(items)
        try:
            answer = batcher.enqueue(items)  # at once: no request is left "arriving"
        except Overloaded as error:
            raise self._overloaded(model, error) from None
        try:
            outputs = await asyncio.wait_for(answer, self.config.timeout_s)
        except TimeoutError:
            raise RequestError(
                504, "timeout", f"no answer within {self.config.timeout_s} s (--timeout-s)"
            ) from None
        self.metrics.items.labels(model.name).inc(len(items))
        return outputs, extra

    @staticmethod
    def _overloaded(model: ServedModel, error: Overloaded) -> RequestError:
        return RequestError(
            503,
            "overloaded",
            f"model {model.name!r} is at capacity: {error}; retry shortly",
            headers={"Retry-After": "1"},
        )

    async def predict(self, request: Request) -> Response:
        try:
            model = self._model(request, "classify")
            labels = len(model.predictor.labels)
            scored, top_k = await self.batched(
                model, request, lambda body: decode_predict(body, self.config, labels)
            )
        except RequestError as error:
            return _error(error)
        # the labels of the bundle that scored the run, whatever a reload did meanwhile
        predictions = encode_predictions(scored.probabilities, scored.labels, top_k)
        return JSONResponse({"model": model.name, "predictions": predictions})

    async def rank(self, request: Request) -> Response:
        try:
            model = self._model(request, "rank")
            (ranked,), _ = await self.batched(
                model, request, lambda body: ([decode_rank(body, self.config)], None)
            )
        except RequestError as error:
            return _error(error)
        return JSONResponse({"model": model.name, "items": encode_ranked(ranked)})

    async def reload(self, request: Request) -> Response:
        try:
            model = self._model(request)
            if not self.config.loopback and self.config.api_key_file is None:
                raise RequestError(
                    403,
                    "reload_disabled",
                    f"reload is off: the server listens on {self.config.host} without "
                    "--api-key-file; restart it with --api-key-file (or send it SIGHUP)",
                )
        except RequestError as error:
            return _error(error)
        try:
            return JSONResponse(await model.reload())
        # any failure to load (onnxruntime's own errors too): the old bundle keeps serving
        except Exception as error:  # noqa: BLE001
            log.error("reload of %s refused: %s", model.name, error)
            return _error(
                RequestError(
                    409,
                    "reload_refused",
                    f"{error} The old bundle (sha256 {model.sha256[:12]}) keeps serving.",
                )
            )

    async def embeddings(self, request: Request) -> Response:
        """OpenAI's embeddings over a classify bundle's sentence vectors (serve.embeddings)."""
        try:
            body = decode_json(await _read_body(request, self.config.max_body_bytes))
            asked = decode_embeddings(body, self.config)
            model, predictor = embedder(self.models, asked.model)
            check_dimensions(asked, predictor.embedding_size or 0)
            embed = functools.partial(predictor.embed, asked.texts, model.session_batch)
            running = asyncio.get_running_loop().run_in_executor(model.executor, embed)
            vectors = await asyncio.wait_for(running, self.config.timeout_s)
        except RequestError as error:
            return _error(error)
        except TimeoutError:
            return _error(
                RequestError(504, "timeout", f"no answer within {self.config.timeout_s} s")
            )
        tokens = sum(len(e.ids) for e in predictor.tokenizer.encode(predictor.render(asked.texts)))
        return JSONResponse(embeddings_body(asked, vectors, tokens))

    async def chat_completions(self, request: Request) -> Response:
        return await self._complete(request, chat=True)

    async def completions(self, request: Request) -> Response:
        return await self._complete(request, chat=False)

    async def _complete(self, request: Request, chat: bool) -> Response:
        """OpenAI's chat and text completions over a decoder bundle (serve.openai)."""
        try:
            body = decode_json(await _read_body(request, self.config.max_body_bytes))
            completion = decode_completion(body, chat, self._prompt_of(chat), DEFAULT_TOKENS[chat])
        except RequestError as error:
            return _error(error)
        model = self.models[completion.model]
        generator = model.predictor
        assert isinstance(generator, Generator)  # _prompt_of refused any other
        answer = Answer(chat, model.name)
        if completion.stream:
            events = answer_events(generator, completion, answer, model.writers)
            return StreamingResponse(events, media_type="text/event-stream")
        usage = Usage()
        write = functools.partial(generator.generate, completion.prompt, completion.config, usage)
        try:
            running = asyncio.get_running_loop().run_in_executor(model.writers, write)
            text = await asyncio.wait_for(running, self.config.timeout_s)
        except TimeoutError:
            return _error(
                RequestError(504, "timeout", f"no answer within {self.config.timeout_s} s")
            )
        except DataError as error:
            return _error(RequestError(422, "invalid_request", str(error)))
        return JSONResponse(answer.whole(text, usage))

    def _prompt_of(self, chat: bool) -> Callable[[str, Any], str]:
        def prompt_of(name: str, given: Any) -> str:
            model = self.models.get(name)
            if model is None:
                message = f"no model {name!r} (served: {', '.join(self.models)})"
                raise RequestError(404, "unknown_model", message, [("model", message)])
            if not isinstance(model.predictor, Generator):
                raise RequestError(
                    400,
                    "wrong_task",
                    f"model {name!r} is a {model.task!r} encoder bundle: it does not write "
                    f"text; use POST {model.endpoint}",
                    [("model", "names an encoder bundle")],
                )
            check_size(given, chat, self.config)
            prompt = prompt_for(model.predictor, chat, given)
            return prompt

        return prompt_of

    async def list_models(self, _: Request) -> Response:
        described = [m.describe() for m in self.models.values()]
        listed = [  # OpenAI's list shape (the openai client's models.list) beside rec-edge's
            {"id": m.name, "object": "model", "created": int(m.loaded_at), "owned_by": "rec-edge"}
            for m in self.models.values()
        ]
        return JSONResponse({"object": "list", "data": listed, "models": described})

    async def healthz(self, _: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(self, _: Request) -> Response:
        if not self.ready:
            return JSONResponse({"status": "not ready"}, status_code=503)
        return JSONResponse({"status": "ready", "models": list(self.models)})

    async def render_metrics(self, _: Request) -> Response:
        self.metrics.observe_decoders({n: m.predictor for n, m in self.models.items()})
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")

    async def openapi(self, _: Request) -> Response:
        served = {
            name: Served(
                model.task,
                len(model.predictor.manifest.labels),
                getattr(model.predictor, "embedding_size", None),
            )
            for name, model in self.models.items()
        }
        return JSONResponse(openapi(__version__, self.config, served))

    async def _http_error(self, _: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        # a 405 keeps Starlette's Allow header (RFC 9110: the methods the route takes)
        headers = dict(error.headers or {})
        return _error(RequestError(error.status_code, code, str(error.detail), headers=headers))

    async def _crash(self, request: Request, error: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path, exc_info=error)
        return _error(RequestError(500, "internal_error", "internal error (logged by the server)"))


class FrontDoor:
    """Pure ASGI around the routes: bearer auth (constant-time), request metrics, one JSON
    access-log line per request."""

    def __init__(self, app: ASGIApp, server: Server):
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        path: str = scope["path"]

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if self.server.keys and path not in OPEN_PATHS and not self._authorized(scope):
                await _send_unauthorized(send_status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            self._record(scope, path, status, time.perf_counter() - started)

    def _authorized(self, scope: Scope) -> bool:
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token:
            return False
        # compare with every key, always: the time taken does not say which one nearly matched
        return sum(hmac.compare_digest(token.strip(), key) for key in self.server.keys) > 0

    def _record(self, scope: Scope, path: str, status: int, seconds: float) -> None:
        parts = path.strip("/").split("/")
        name = parts[2] if len(parts) >= 3 and parts[:2] == ["v1", "models"] else ""
        model = name if name in self.server.models else "-"
        if model != "-" and len(parts) == 4:
            endpoint = parts[3]
        else:  # bounded label values: never a path a client made up
            endpoint = path if path in FIXED_PATHS else "other"
        metrics = self.server.metrics
        metrics.requests.labels(model, endpoint, str(status)).inc()
        metrics.latency.labels(model, endpoint).observe(seconds)
        if self.server.config.access_log:
            client = scope.get("client") or ("-", 0)
            access.info(
                json.dumps(
                    {
                        "time": round(time.time(), 3),
                        "client": client[0],
                        "method": scope["method"],
                        "path": path,
                        "status": status,
                        "ms": round(seconds * 1000, 3),
                        "items": scope.get("state", {}).get("items"),
                    }
                )
            )


async def _send_unauthorized(send: Callable[[Message], Awaitable[None]]) -> None:
    body = json.dumps(
        RequestError(
            401, "unauthorized", "a valid 'Authorization: Bearer <key>' is required"
        ).body()
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b"Bearer"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
