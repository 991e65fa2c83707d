"""TORCH-FREE: a decoder bundle (a causal language model with its KV cache) that answers in words.

onnxruntime, tokenizers and numpy alone. The prompt is the bundle's chat format around the user
turn (rendered from the model's chat template at export, so no template engine runs here).

- Options (classify labels, a constrained choice): each option's log-likelihood as the answer,
  its words and the end of the turn. The prompt runs once; its KV cache is shared by every option
  in one batched run (never one full forward per option). A text's scores depend on that text
  and the options alone: each text is its own run, padded only behind the options' tokens.
- Every prompt runs from the end of the bundle's prompt frame (the chat format, its system turn,
  the instruction: what every prompt of the bundle starts with), whose cache runs once per
  Generator and is copied, never recomputed; ``Usage.cached_tokens`` counts it.
- Generation: greedy (temperature 0) or sampled (temperature, top-p, seed), up to
  ``max_new_tokens``, stopping at the end of the turn or before a stop string; ``stream`` yields
  the text piece by piece.
"""

from __future__ import annotations

import threading
from collections.abc import Generator as Generator_
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from tokenizers import Encoding, Tokenizer

from rec_edge.bundle import MANIFEST_FILE, Bundle, load_bundle
from rec_edge.config import GenerationConfig
from rec_edge.data.prompts import fit_prompt, render_chat
from rec_edge.errors import BundleError, DataError
from rec_edge.runtime.batching import StepBatcher, bind_cache
from rec_edge.runtime.decoding import (
    DecoderSpec,
    Usage,
    first_stop,
    log_softmax,
    next_token,
    stop_prefix,
)
from rec_edge.runtime.predictor import task_class
from rec_edge.runtime.session import SessionConfig, open_session
from rec_edge.runtime.tokenize import CHARS_PER_TOKEN, bounded_text

DECODER_TASKS: dict[str, type[Generator]] = {}  # a decoder bundle's task -> its runtime
OPTIONS_A_RUN = 16  # options of one length scored together over the prompt's cache
KEEP_INPUT = "logits_to_keep"  # graphs exported since 2026-12: logits for the last N positions
CANDIDATES_A_RUN = 8  # rank: candidates that share one run over a user's cached history


class Generator:
    """A decoder bundle: it writes (``generate``, ``stream``) and chooses among options
    (``choose``). ``Generator.load(path)`` (or ``rec_edge.load(path)`` for any bundle) returns
    its task's subclass: a ``GenerativeClassifier`` answers ``predict`` as a ``Classifier``
    does, a ``GenerativeRanker`` ``rank`` as a ``Ranker`` does, so that ``predict``, ``score``
    and ``serve`` take either family. Safe to call from several threads at once."""

    task: ClassVar[str] = "generate"

    def __new__(cls, bundle: Bundle, *args: Any, **options: Any) -> Generator:
        """``Generator(bundle, config)`` builds the bundle's task's class, as ``load`` does."""
        return super().__new__(cls._runtime(bundle))

    def __init_subclass__(cls, task: str | None = None, **options: Any) -> None:
        """``class GenerativeRanker(Generator, task="rank")``: what ``load`` opens for that
        task's decoder bundles."""
        super().__init_subclass__(**options)
        if task is not None:
            cls.task = task
            DECODER_TASKS[task] = cls

    @classmethod
    def _runtime(cls, bundle: Bundle) -> type[Generator]:
        """The class that opens ``bundle``: its task's, which must be ``cls`` or below it."""
        return task_class(bundle, DECODER_TASKS, cls, "decoder")

    def __init__(self, bundle: Bundle, config: SessionConfig):
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.config = config
        self.spec = DecoderSpec.from_manifest(
            self.manifest.decoder, str(bundle.path / MANIFEST_FILE)
        )
        self.tokenizer = Tokenizer.from_file(str(bundle.tokenizer_path))
        self.session = open_session(bundle.model_path, config)
        self.provider = self.session.get_providers()[0]
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.past_names = [
            f"past_key_values.{layer}.{kind}"
            for layer in range(self.spec.num_layers)
            for kind in ("key", "value")
        ]
        missing = [
            n
            for n in ("input_ids", "attention_mask", *self.past_names)
            if n not in self.input_names
        ]
        if missing:
            raise BundleError(
                f"{bundle.model_path} lacks the inputs {', '.join(missing[:4])}: not a decoder graph "
                "with its KV cache as the manifest says. Re-export the bundle."
            )
        self.labels = list(self.manifest.labels)
        self.truncated = 0
        self._lock = threading.Lock()
        self._prefixes: dict[str, tuple[list[int], list[np.ndarray]]] = {}  # see _frame_cache
        # every prompt runs from the end of the bundle's prompt frame, whose cache runs once
        # (False: each prompt runs whole; the same answers, the first token later)
        self.reuse_prefix = True
        # rec-edge's fused graph (GroupQueryAttention) on the CPU decodes in place
        self._in_place = (
            str(self.manifest.source.get("graph", "")).startswith("fused")
            and self.provider == "CPUExecutionProvider"
            and "position_ids" not in self.input_names
        )
        self._batcher = (
            StepBatcher(
                self.session,
                self.past_names,
                self.spec.num_kv_heads,
                self.spec.head_dim,
                KEEP_INPUT if KEEP_INPUT in self.input_names else None,
            )
            if self._in_place
            else None
        )
        # answers written at the same time decode together (False: each alone, as before)
        self.batching = self._batcher is not None

    @classmethod
    def load(
        cls,
        path: str | Path,
        provider: str = "cpu",
        threads: int | None = None,
        *,
        inter_op_threads: int | None = None,
        graph_optimization_level: str = "all",
        enable_mem_arena: bool = True,
        fallback: bool = False,
        spinning: bool = True,
        verify: bool = True,
    ) -> Generator:
        """Load and check a decoder bundle (schema, files, sha256) and open its session."""
        config = SessionConfig(
            provider,
            threads,
            inter_op_threads,
            graph_optimization_level,
            enable_mem_arena,
            fallback,
            spinning,
        )
        bundle = load_bundle(path, verify=verify)
        if bundle.manifest.family != "decoder":
            raise BundleError(
                f"{path} is an {bundle.manifest.family} bundle: load it with rec_edge.load "
                "(or rec_edge.Predictor.load)."
            )
        return cls._runtime(bundle)(bundle, config)

    # --- prompts and tokens -------------------------------------------------------------------

    def prompt(self, text: str, instruction: str | None = None) -> str:
        """The whole prompt for the user's ``text``: the chat format around the bundle's user
        template (with ``instruction``, default the bundle's)."""
        instruction = instruction if instruction is not None else self.spec.instruction
        user = (
            self.spec.user_template.format(instruction=instruction, text=text)
            if instruction
            else text
        )
        return self.spec.prompt_prefix + user + self.spec.prompt_suffix

    def encode(self, text: str) -> list[int]:
        # the chat format carries its own special tokens: the tokenizer adds none (a GGUF
        # tokenizer would put a second BOS before the template's)
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def _prompt_ids(self, prompt: str, room: int, keep: str = "start") -> list[int]:
        """The prompt's ids in ``max_length - room`` tokens: a longer one keeps the chat
        format's frame whole and cuts the user's words (``fit_prompt``), counted."""
        limit = self.manifest.max_length - room
        ids = self.encode(self._bounded(prompt, limit, keep))
        if len(ids) > limit:
            spec = self.spec
            head = (
                len(self.encode(spec.prompt_prefix)) if prompt.startswith(spec.prompt_prefix) else 0
            )
            tail = (
                len(self.encode(spec.prompt_suffix)) if prompt.endswith(spec.prompt_suffix) else 0
            )
            with self._lock:
                self.truncated += 1
            ids = fit_prompt(ids, head, tail, limit, keep)
        if not ids:
            raise DataError("the prompt is empty after tokenization")
        return ids

    def _bounded(self, prompt: str, limit: int, keep: str) -> str:
        """``prompt`` with the user's words cut, before encoding, to what ``fit_prompt`` could
        keep of them: the same ids after it, at the cost of a few thousand characters."""
        if len(prompt) <= limit * CHARS_PER_TOKEN:
            return prompt
        spec = self.spec
        head = spec.prompt_prefix if prompt.startswith(spec.prompt_prefix) else ""
        tail = spec.prompt_suffix if prompt[len(head) :].endswith(spec.prompt_suffix) else ""
        body = prompt[len(head) : len(prompt) - len(tail)]

        def encode(text: str) -> Encoding:
            return self.tokenizer.encode(text, add_special_tokens=False)

        return head + bounded_text(body, limit, encode, keep) + tail

    # --- the model ----------------------------------------------------------------------------

    def _empty_past(self, batch: int) -> list[np.ndarray]:
        shape = (batch, self.spec.num_kv_heads, 0, self.spec.head_dim)
        return [np.zeros(shape, np.float32) for _ in self.past_names]

    def _run(
        self, ids: np.ndarray, mask: np.ndarray, past: list[np.ndarray], keep: int | None = None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """One step: ids [batch, new] after ``past`` (each [batch, heads, past, dim]); mask
        [batch, past + new]. Returns logits [batch, new, vocab] (``keep``: of the last ``keep``
        positions only, where the graph can skip the others) and the grown cache."""
        start = past[0].shape[2]
        feeds: dict[str, np.ndarray] = {
            "input_ids": ids.astype(np.int64),
            "attention_mask": mask.astype(np.int64),
        }
        if "position_ids" in self.input_names:
            # padding only ever comes after a row's real tokens, so positions simply count on
            positions = start + np.arange(ids.shape[1], dtype=np.int64)
            feeds["position_ids"] = np.broadcast_to(positions, ids.shape).copy()
        if KEEP_INPUT in self.input_names:
            feeds[KEEP_INPUT] = np.array(keep or ids.shape[1], np.int64)
        feeds.update(zip(self.past_names, past, strict=True))
        logits, *present = self.session.run(None, feeds)
        return logits, present

    def _frame_cache(self, ids: list[int]) -> tuple[int, list[np.ndarray]]:
        """How many of ``ids``' first tokens the bundle's prompt frame covers, and their cache
        ([1, heads, that many, dim] a past input; views of a cache kept per Generator). The
        frame is the part every prompt of the bundle starts with: the chat format, its system
        turn and the instruction, up to the user's text. It runs once per Generator (a classify
        instruction that lists 77 labels is most of each prompt; a chat's system turn is half of
        a short question's); a prompt runs from the first token it does not share with it, and
        its last token always runs. Which tokens are shared depends on the prompt alone, so an
        answer never depends on the prompts before it. ``(0, [])`` with ``reuse_prefix`` off."""
        if not self.reuse_prefix:
            return 0, []
        fixed = self.prompt("{text}").split("{text}")[0]
        with self._lock:
            cached = self._prefixes.get(fixed)
        if cached is None:
            prefix = self.encode(fixed)
            prefix_past = self._empty_past(1)
            if prefix:
                _, prefix_past = self._run(
                    np.array([prefix]), np.ones((1, len(prefix))), prefix_past, 1
                )
            cached = (prefix, prefix_past)
            with self._lock:
                self._prefixes[fixed] = cached
        prefix, prefix_past = cached
        shared = 0
        for a, b in zip(prefix, ids[:-1], strict=False):
            if a != b:
                break
            shared += 1
        return shared, [p[:, :, :shared, :] for p in prefix_past] if shared else []

    def _prompt_run(self, ids: list[int]) -> tuple[np.ndarray, list[np.ndarray]]:
        """A prompt's run from the end of its frame's cache (``_frame_cache``): the logits of
        its last token, and its whole cache."""
        shared, frame = self._frame_cache(ids)
        past = [np.ascontiguousarray(p) for p in frame] if shared else self._empty_past(1)
        return self._run(np.array([ids[shared:]]), np.ones((1, len(ids))), past, 1)

    def sequence_logits(self, ids: Sequence[int]) -> np.ndarray:
        """The logits after each of ``ids`` in one run (teacher forcing): float32 [len, vocab]."""
        logits, _ = self._run(np.array([list(ids)]), np.ones((1, len(ids))), self._empty_past(1))
        return np.asarray(logits[0], np.float32)

    # --- options ------------------------------------------------------------------------------

    def option_logprobs(self, prompt: str, options: Sequence[str]) -> np.ndarray:
        """log P(option, then the end of the turn | prompt) for each option: float64 [options].
        The prompt runs once (``_prompt_run``); the options read its cache in runs of options
        of one length, ``OPTIONS_A_RUN`` at most, so that no option is padded (77 intents of 2
        to 9 tokens cost their own tokens, not 77 times the longest)."""
        answers = [self.encode(o + self.spec.end_of_turn) for o in options]
        if not answers or any(not a for a in answers):
            raise DataError("options must be non-empty strings")
        ids = self._prompt_ids(prompt, max(len(a) for a in answers))
        logits, past = self._prompt_run(ids)
        first = log_softmax(logits[0, -1].astype(np.float64))
        scores = np.array([first[a[0]] for a in answers])
        by_length: dict[int, list[int]] = {}
        for row, answer in enumerate(answers):
            if len(answer) > 1:  # token j of an answer is scored by the logits after token j - 1
                by_length.setdefault(len(answer), []).append(row)
        for length, rows in sorted(by_length.items()):
            for start in range(0, len(rows), OPTIONS_A_RUN):
                group = rows[start : start + OPTIONS_A_RUN]
                tokens = np.array([answers[r][:-1] for r in group], np.int64)
                mask = np.ones((len(group), len(ids) + length - 1), np.int64)
                shared = [np.repeat(p, len(group), axis=0) for p in past]
                steps, _ = self._run(tokens, mask, shared)
                for i, r in enumerate(group):
                    logp = log_softmax(steps[i].astype(np.float64))
                    scores[r] += logp[np.arange(length - 1), answers[r][1:]].sum()
        return scores

    def choose(self, prompt: str, options: Sequence[str]) -> str:
        """The most likely of ``options`` as the answer to ``prompt`` (a constrained choice)."""
        return options[int(np.argmax(self.option_logprobs(prompt, options)))]

    # --- generation ---------------------------------------------------------------------------

    def generate(
        self, prompt: str, config: GenerationConfig | None = None, usage: Usage | None = None
    ) -> str:
        """The answer to ``prompt`` (a whole prompt: see ``prompt()``), as text."""
        return "".join(self.stream(prompt, config, usage))

    def chat_prompt(self, messages: Sequence[Mapping[str, str]]) -> str:
        """The prompt for a conversation (``role``, ``content``), up to
        where the assistant's answer starts: the model's own chat template (jinja2, as
        transformers renders it), or for a bundle exported without one the bundle's frame
        around a single user message."""
        if self.spec.chat_template:
            return render_chat(self.spec.chat_template, messages, self.spec.special_tokens or {})
        if len(messages) == 1 and messages[0].get("role") == "user":
            return self.prompt(messages[0]["content"], instruction="")
        raise BundleError(
            f"{self.bundle.path} holds no chat template: it answers one user message. "
            "Re-export it with this version of rec-edge for conversations."
        )

    def tokens(
        self, prompt: str, config: GenerationConfig | None = None, usage: Usage | None = None
    ) -> Iterator[int]:
        """The answer's token ids as they are chosen, up to the end of the turn or
        ``max_new_tokens`` (stop strings are text: ``stream`` applies them). ``usage``, if
        given, counts the tokens and says why the answer ended."""
        config = config or GenerationConfig()
        usage = usage if usage is not None else Usage()
        # any integer seeds (OpenAI allows negative ones): numpy takes non-negative, so wrap
        rng = np.random.default_rng(None if config.seed is None else config.seed % 2**64)
        ids = self._prompt_ids(prompt, min(config.max_new_tokens, self.manifest.max_length - 1))
        usage.prompt_tokens = len(ids)
        usage.cached_tokens = self._frame_cache(ids)[0]
        room = min(len(ids) + config.max_new_tokens, self.manifest.max_length)
        steps = self._decode_steps(ids, room)
        logits = next(steps)
        stop = set(self.spec.stop_token_ids)
        usage.finish_reason = "length"
        token: int | None = None
        for _ in range(config.max_new_tokens):
            if token is not None:  # a step after the last token runs only if one more may come
                logits = steps.send(token)
            token = next_token(logits, config, rng)
            if token in stop:
                usage.finish_reason = "stop"
                return
            usage.completion_tokens += 1
            yield token
            if len(ids) + usage.completion_tokens >= self.manifest.max_length:
                return

    @property
    def decode_stats(self) -> dict[str, int]:
        """Batched decode steps run since load (``steps``) and the answers they carried
        (``rows``): ``rows / steps`` answers were decoded together on average."""
        return dict(self._batcher.stats) if self._batcher else {"steps": 0, "rows": 0}

    def _decode_steps(self, ids: list[int], room: int) -> Generator_[np.ndarray, int, None]:
        """The decode loop of an answer of at most ``room`` tokens: on the CPU with the fused
        graph, in a row of the shared cache, decoded together with the other answers being
        written (``runtime.batching``), or in a cache of its own when no row is free; else
        the copying loop."""
        if self._batcher is not None and self.batching:
            answer = self._batcher.open(room)
            if answer is not None:
                return self._batcher.steps(answer, ids, self._frame_cache(ids)[1])
        return self._steps_in_place(ids, room) if self._in_place else self._steps(ids)

    def _steps(self, ids: list[int]) -> Generator_[np.ndarray, int, None]:
        """The next token's logits after the prompt ``ids`` (run from the end of its frame's
        cache), then after each token sent; the cache is the graph's output, fed back (it grows
        by a copy each step)."""
        shared, frame = self._frame_cache(ids)
        past = [np.ascontiguousarray(p) for p in frame] if shared else self._empty_past(1)
        step = np.array([ids[shared:]])
        while True:
            mask = np.ones((1, past[0].shape[2] + step.shape[1]))
            logits, past = self._run(step, mask, past, 1)
            token = yield logits[0, -1]
            step = np.array([[token]])

    def _steps_in_place(self, ids: list[int], room: int) -> Generator_[np.ndarray, int, None]:
        """``_steps`` over one cache buffer per layer of ``room`` positions, bound once:
        GroupQueryAttention reads and writes it in place (its past and present are the same
        buffer), so a step copies and allocates no cache. The fused graph on the CPU."""
        shape = (1, self.spec.num_kv_heads, room, self.spec.head_dim)
        buffers = [np.zeros(shape, np.float32) for _ in self.past_names]
        total, frame = self._frame_cache(ids)
        for buffer, cached in zip(buffers, frame, strict=False):
            buffer[:, :, :total] = cached
        keep = KEEP_INPUT if KEEP_INPUT in self.input_names else None
        binding = bind_cache(self.session, self.past_names, buffers, keep)
        step = np.array([ids[total:]], np.int64)
        while True:
            total += step.shape[1]
            binding.bind_cpu_input("input_ids", step)
            binding.bind_cpu_input("attention_mask", np.ones((1, total), np.int64))
            self.session.run_with_iobinding(binding)
            token = yield binding.get_outputs()[0].numpy()[0, -1]
            step = np.array([[token]], np.int64)

    def stream(
        self, prompt: str, config: GenerationConfig | None = None, usage: Usage | None = None
    ) -> Iterator[str]:
        """The answer to ``prompt`` in pieces of text, as the tokens are written (``usage``:
        as for ``tokens``; a stop string ends it with ``finish_reason`` "stop")."""
        config = config or GenerationConfig()
        usage = usage if usage is not None else Usage()
        written: list[int] = []
        sent = 0  # characters of the decoded answer already yielded
        for token in self.tokens(prompt, config, usage):
            written.append(token)
            text = self.tokenizer.decode(written, skip_special_tokens=False)
            cut = first_stop(text, config.stop)
            if cut is not None:
                usage.finish_reason = "stop"
                if cut > sent:
                    yield text[sent:cut]
                return
            # hold back an unfinished character and what may still become a stop string
            ready = len(text) - (1 if text.endswith("\ufffd") else 0)
            ready = min(ready, len(text) - stop_prefix(text, config.stop))
            if ready > sent:
                yield text[sent:ready]
                sent = ready
        text = self.tokenizer.decode(written, skip_special_tokens=False)
        if len(text) > sent:
            yield text[sent:]


DECODER_TASKS[Generator.task] = Generator  # a generate bundle: the base, it writes
