"""TORCH-FREE OpenAI-compatible text generation in `rec-edge serve`: ``POST /v1/chat/completions``
and ``POST /v1/completions`` over decoder bundles, whole or streamed as Server-Sent Events.

The request's ``model`` names a served decoder bundle. Each answer is written by the bundle's
``Generator`` in a thread of the model's executor; a streamed answer is sent piece by piece as
the Generator writes it, and a client that goes away stops the writing. Parameters the runtime
cannot honour (``n`` > 1, penalties, tools, log-probabilities, ...) are refused by name rather
than ignored; fields that do not change the answer (``user``, ``metadata``, ...) are accepted.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from rec_edge.config import GenerationConfig, ServeConfig
from rec_edge.errors import BundleError, ConfigError, DataError, RecEdgeError
from rec_edge.runtime.decoding import Usage
from rec_edge.runtime.generator import Generator
from rec_edge.runtime.requests import whole_number
from rec_edge.serve.schema import RequestError, _invalid

ROLES = ("system", "user", "assistant")
MAX_STOPS = 4
# accepted and without effect on the answer
HARMLESS = {"user", "metadata", "store", "service_tier", "parallel_tool_calls", "stream_options"}
# refused unless at their neutral value: the runtime does not implement them
NEUTRAL = {
    "n": 1,
    "frequency_penalty": 0,
    "presence_penalty": 0,
    "logprobs": False,
    "top_logprobs": None,
    "logit_bias": None,
    "tools": None,
    "tool_choice": None,
    "functions": None,
    "response_format": None,
    "echo": False,
    "best_of": 1,
    "suffix": None,
}
SAMPLING = (
    "model",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "seed",
    "stop",
    "stream",
)


@dataclass
class Completion:
    """A decoded request: which model, the whole prompt, how to write, whether to stream."""

    model: str
    prompt: str
    config: GenerationConfig
    stream: bool
    include_usage: bool


def decode_completion(
    body: Any, chat: bool, prompt_of: Callable[[str, Any], str], default_tokens: int
) -> Completion:
    """A chat (``messages``) or text (``prompt``) completion request; every problem named by
    its field (422). ``prompt_of(model, messages_or_prompt)`` makes the whole prompt."""
    if not isinstance(body, dict):
        raise _invalid([(None, "expected a JSON object")])
    source = "messages" if chat else "prompt"
    problems: list[tuple[str | None, str]] = []
    known = {source, *SAMPLING, *HARMLESS, *NEUTRAL}
    problems += [(k, "unknown field") for k in sorted(set(body) - known)]
    problems += [
        (k, f"is not supported by this server (only {NEUTRAL[k]!r})")
        for k in sorted(set(body) & set(NEUTRAL))
        if body[k] is not None and body[k] != NEUTRAL[k]
    ]
    model = body.get("model")
    if not isinstance(model, str) or not model:
        problems.append(("model", "must name a served decoder bundle"))
    given = body.get(source)
    problems += _messages_problems(given) if chat else _prompt_problems(given)
    tokens = body.get("max_completion_tokens", body.get("max_tokens", default_tokens))
    if tokens is None:
        tokens = default_tokens
    if not _is_int(tokens) or tokens < 1:
        problems.append(("max_tokens", f"must be a positive integer, got {tokens!r}"))
    temperature, top_p = body.get("temperature", 1.0), body.get("top_p", 1.0)
    temperature = 1.0 if temperature is None else temperature
    top_p = 1.0 if top_p is None else top_p
    if not _is_number(temperature) or not 0 <= temperature <= 2:
        problems.append(("temperature", f"must be a number in [0, 2], got {temperature!r}"))
    if not _is_number(top_p) or not 0 < top_p <= 1:
        problems.append(("top_p", f"must be a number in (0, 1], got {top_p!r}"))
    seed = body.get("seed")
    if seed is not None and not _is_int(seed):
        problems.append(("seed", f"must be an integer, got {seed!r}"))
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        problems.append(("stop", "must be a non-empty string or a list of them"))
    elif len(stop) > MAX_STOPS:
        problems.append(("stop", f"has {len(stop)} strings; at most {MAX_STOPS}"))
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        problems.append(("stream", f"must be true or false, got {stream!r}"))
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        problems.append(("stream_options", "must be an object"))
    if problems:
        raise _invalid(problems)
    assert isinstance(model, str)  # checked above
    prompt = prompt_of(model, given if chat else _one_prompt(given))  # type: ignore[arg-type]
    config = GenerationConfig(
        max_new_tokens=int(tokens),
        temperature=float(temperature),
        top_p=float(top_p),
        seed=whole_number(seed),
        stop=tuple(stop),
    )
    return Completion(model, prompt, config, stream, bool(options.get("include_usage")))


def _messages_problems(messages: Any) -> list[tuple[str | None, str]]:
    if not isinstance(messages, list) or not messages:
        return [("messages", "must be a non-empty list of {role, content}")]
    problems: list[tuple[str | None, str]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            problems.append((where, "must be an object with 'role' and 'content'"))
            continue
        if message.get("role") not in ROLES:
            problems.append((f"{where}.role", f"must be one of {', '.join(ROLES)}"))
        if not isinstance(_content(message.get("content")), str):
            problems.append((f"{where}.content", "must be a string or a list of text parts"))
    return problems  # any last role, as OpenAI: the assistant's answer starts after it


def _content(content: Any) -> str | None:
    """A message's text: a string, or OpenAI's list of ``{"type": "text", "text": ...}``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in content
    ):
        return "".join(p["text"] for p in content)
    return None


def chat_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": _content(m["content"]) or ""} for m in messages]


def _prompt_problems(prompt: Any) -> list[tuple[str | None, str]]:
    if isinstance(prompt, str) or (
        isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str)
    ):
        return []
    return [("prompt", "must be a string (or a list of one string)")]


def _one_prompt(prompt: str | list[str]) -> str:
    return prompt if isinstance(prompt, str) else prompt[0]


def _is_int(value: Any) -> bool:
    return whole_number(value) is not None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_size(given: Any, chat: bool, limits: ServeConfig) -> None:
    """At most ``--max-texts`` messages of at most ``--max-chars`` characters each (a text
    completion: its prompt), as a predict request's texts; past it 413, naming the field."""
    texts = [_content(m.get("content")) or "" for m in given] if chat else [_one_prompt(given)]
    if chat and len(texts) > limits.max_texts:
        message = f"has {len(texts)} messages; at most {limits.max_texts} (--max-texts)"
        raise _invalid([("messages", message)], too_large=True)
    problems: list[tuple[str | None, str]] = [
        (
            f"messages[{i}].content" if chat else "prompt",
            f"has {len(text)} characters; at most {limits.max_chars} (--max-chars)",
        )
        for i, text in enumerate(texts)
        if len(text) > limits.max_chars
    ]
    if problems:
        raise _invalid(problems, too_large=True)


def prompt_for(generator: Generator, chat: bool, given: Any) -> str:
    """The whole prompt: a conversation through the model's chat template, or the text as is."""
    if not chat:
        return str(given)
    try:
        return generator.chat_prompt(chat_messages(given))
    except (DataError, BundleError) as error:  # BundleError: an old bundle, no chat template
        raise RequestError(422, "invalid_request", str(error), [("messages", str(error))]) from None
    except ConfigError as error:  # e.g. jinja2 missing on this server
        raise RequestError(500, "internal_error", str(error)) from None


# --- answers ----------------------------------------------------------------------------------


class Answer:
    """The OpenAI shapes of one answer (``chat.completion`` or ``text_completion`` and their
    stream chunks), with one id and creation time."""

    def __init__(self, chat: bool, model: str):
        self.chat = chat
        self.model = model
        self.id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        self.created = int(time.time())

    def _frame(self, kind: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    def whole(self, text: str, usage: Usage) -> dict[str, Any]:
        if self.chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}}
        else:
            choice = {"index": 0, "text": text}
        choice.update(finish_reason=usage.finish_reason or "stop", logprobs=None)
        kind = "chat.completion" if self.chat else "text_completion"
        return {**self._frame(kind, [choice]), "usage": usage_body(usage)}

    def chunk(self, text: str | None, finish: str | None = None, first: bool = False) -> str:
        if self.chat:
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
            if text is not None:
                delta["content"] = text
            choice: dict[str, Any] = {"index": 0, "delta": delta}
        else:
            choice = {"index": 0, "text": text or ""}
        choice.update(finish_reason=finish, logprobs=None)
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        return _event(self._frame(kind, [choice]))

    def usage_chunk(self, usage: Usage) -> str:
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        return _event({**self._frame(kind, []), "usage": usage_body(usage)})


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        # OpenAI's field: the prompt's tokens read from a cache (the bundle's prompt frame)
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def _event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data)}\n\n"


DONE = "data: [DONE]\n\n"


async def answer_events(
    generator: Generator, completion: Completion, answer: Answer, writers: Any
) -> AsyncIterator[str]:
    """The answer as Server-Sent Events, written in a thread of ``writers``: OpenAI's chunks,
    then ``data: [DONE]``; an error once the status is sent goes as an event."""
    usage = Usage()

    def pieces() -> Iterator[str]:
        return generator.stream(completion.prompt, completion.config, usage)

    if answer.chat:
        yield answer.chunk(None, first=True)
    try:
        async for piece in stream_pieces(pieces, writers):
            yield answer.chunk(piece)
    except RecEdgeError as error:
        yield _event(RequestError(422, "invalid_request", str(error)).body())
        yield DONE
        return
    yield answer.chunk(None, usage.finish_reason or "stop")
    if completion.include_usage:
        yield answer.usage_chunk(usage)
    yield DONE


async def stream_pieces(pieces: Callable[[], Iterator[str]], executor: Any) -> AsyncIterator[str]:
    """The pieces a generator writes in a thread of ``executor``, as they come; leaving the
    loop early (a client gone) sets the event the writer checks between pieces."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()
    end = object()

    def write() -> None:
        try:
            for piece in pieces():
                if stop.is_set():
                    break
                loop.call_soon_threadsafe(queue.put_nowait, piece)
        except BaseException as error:  # handed to the reader, raised there
            loop.call_soon_threadsafe(queue.put_nowait, error)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, end)

    writer = loop.run_in_executor(executor, write)
    try:
        while (item := await queue.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        await asyncio.shield(writer)
