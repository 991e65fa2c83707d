"""TORCH-FREE: the answers one ``Generator`` writes at the same time, decoded together
(continuous batching), so that concurrent requests share each step's read of the weights.

The cache is one buffer a layer of ``SLOTS`` rows of ``ROOM`` positions, bound with onnxruntime's
I/O binding as both the past input and the present output (as ``Generator._steps_in_place``
binds one row). An answer's prompt runs alone into a free row (one prompt at a time; from the end
of its frame's cache, copied into the row: ``Generator._frame_cache``); from then
on every answer being written takes its next token in one batched step over the first rows:
GroupQueryAttention appends each row's token at that row's own length (the attention mask's row
sum; the token in its last column) and reads no further. A step runs when every answer has sent
its token, or ``GATHER`` seconds after the first one did, and no new prompt waits to run
(prompts first: a new answer's first token is not held back by the others' steps). A row whose
reader is late rides along with a placeholder token whose cache entry its own next step
overwrites, its logits dropped. An answer that ends gives its row to the last one (that row's
cache moved), so the rows being written stay first. Answers beyond ``SLOTS`` at once, or longer
than ``ROOM`` tokens, decode alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator as Generator_
from typing import Any

import numpy as np

SLOTS = 4  # answers decoded together at most; the buffer's rows
ROOM = 1024  # prompt + answer tokens of an answer that joins the batch
GATHER = 0.002  # seconds a step waits for the answers that have not sent their token yet


class _Answer:
    """One answer's row: its slot, its tokens in the cache, and the step it waits on."""

    __slots__ = ("slot", "length", "token", "logits", "error")

    def __init__(self) -> None:
        self.slot = -1
        self.length = 0  # tokens in its rows of the cache
        self.token: int | None = None  # sent, waiting for a step
        self.logits: np.ndarray | None = None  # the step's answer
        self.error: BaseException | None = None


class StepBatcher:
    """The shared cache and the batched decode steps of one Generator's session (the fused
    graph on the CPU). ``steps`` is the protocol of ``Generator._steps``: the next token's logits
    after the prompt, then after each token sent."""

    def __init__(
        self, session: Any, past_names: list[str], kv_heads: int, head_dim: int, keep: str | None
    ):
        self._session = session
        self._names = past_names
        self._keep = keep  # the graph's input that keeps the last logits only, if any
        shape = (SLOTS, kv_heads, ROOM, head_dim)
        self._buffers = [np.zeros(shape, np.float32) for _ in past_names]  # pages on first use
        self._cond = threading.Condition()
        self._prompts = threading.Lock()  # one prompt runs into the buffer at a time
        self._rows: list[_Answer] = []  # the answers being written; row i is slot i
        self._held = 0  # slots taken: rows, and answers whose prompt is to run
        self._running = False  # a batched step is running
        self._prompting = 0  # prompts waiting to run or running: steps wait for them
        # prompts first: a step waits while a prompt is to run (a new answer's first token comes
        # sooner, the answers being written pause); False: they take turns as they come
        self.prompts_first = True
        self._since = 0.0  # when the first token still waiting for a step was sent
        self._bindings: dict[int, Any] = {}  # rows -> the I/O binding of the first rows
        self.stats = {"steps": 0, "rows": 0}  # batched steps run, and the answers they carried

    def open(self, room: int) -> _Answer | None:
        """A place for an answer of ``room`` tokens, or None: it decodes alone."""
        with self._cond:
            if room > ROOM or self._held >= SLOTS:
                return None
            self._held += 1
            return _Answer()

    def steps(
        self, answer: _Answer, ids: list[int], frame: list[np.ndarray]
    ) -> Generator_[np.ndarray, int, None]:
        """The logits after the prompt ``ids``, then after each token sent; the answer's row
        is given back when the generator closes. ``frame``: the cache of the prompt's first
        tokens (a past input a layer, [1, heads, tokens, dim], or none), which its run skips."""
        try:
            token = yield self._prompt(answer, ids, frame)
            while True:
                token = yield self._step(answer, token)
        finally:
            self._close(answer)

    def _prompt(self, answer: _Answer, ids: list[int], frame: list[np.ndarray]) -> np.ndarray:
        """Run the prompt into the first free row, then join the rows being written."""
        with self._cond:
            self._prompting += 1
        try:
            return self._run_prompt(answer, ids, frame)
        finally:
            with self._cond:
                self._prompting -= 1
                self._cond.notify_all()

    def _run_prompt(self, answer: _Answer, ids: list[int], frame: list[np.ndarray]) -> np.ndarray:
        with self._prompts:
            with self._cond:
                answer.slot = len(self._rows)  # free: other prompts wait, leavers move down
            views = [b[answer.slot : answer.slot + 1] for b in self._buffers]
            shared = frame[0].shape[2] if frame else 0
            for view, cached in zip(views, frame, strict=False):
                view[:, :, :shared] = cached
            binding = self._binding_of(views)
            binding.bind_cpu_input("input_ids", np.array([ids[shared:]], np.int64))
            binding.bind_cpu_input("attention_mask", np.ones((1, len(ids)), np.int64))
            self._session.run_with_iobinding(binding)
            logits = np.array(binding.get_outputs()[0].numpy()[0, -1])
            answer.length = len(ids)
            with self._cond:
                self._wait_idle()
                row = len(self._rows)
                if answer.slot != row:  # rows below it ended while its prompt ran
                    self._move(answer, row)
                self._rows.append(answer)
        return logits

    def _step(self, answer: _Answer, token: int) -> np.ndarray:
        """The logits after ``token``, from the first step that takes it."""
        with self._cond:
            if not any(a.token is not None for a in self._rows):
                self._since = time.monotonic()
            answer.token, answer.logits, answer.error = token, None, None
            self._cond.notify_all()
            batch: list[_Answer] | None = None
            while answer.logits is None and answer.error is None:
                if not self._running and self._ready():
                    batch, self._running = list(self._rows), True
                    break
                self._cond.wait(GATHER)
        if batch is not None:
            self._run(batch)
        if answer.error is not None:
            raise answer.error
        assert answer.logits is not None
        return answer.logits

    def _ready(self) -> bool:
        """Every answer has sent its token, or the first one sent has waited ``GATHER``; and no
        prompt is to run (``prompts_first``)."""
        if self._prompting and self.prompts_first:
            return False
        sent = sum(a.token is not None for a in self._rows)
        return sent > 0 and (sent == len(self._rows) or time.monotonic() - self._since >= GATHER)

    def _run(self, batch: list[_Answer]) -> None:
        """One step over the first ``len(batch)`` rows; each answer that sent a token gets its
        logits (or the step's error)."""
        with self._cond:
            tokens = [a.token for a in batch]
            for a in batch:
                a.token = None
        error: BaseException | None = None
        try:
            ids = np.array([[t or 0] for t in tokens], np.int64)  # 0: a late row's placeholder
            # the graph reads a row's cache length from its mask's sum, and whether it has a
            # new token from its last column: each row's cache, then its token in the last
            mask = np.zeros((len(batch), max(a.length for a in batch) + 1), np.int64)
            mask[:, -1] = 1
            for row, a in enumerate(batch):
                mask[row, : a.length] = 1
            binding = self._bindings.get(len(batch))
            if binding is None:
                binding = self._binding_of([b[: len(batch)] for b in self._buffers])
                self._bindings[len(batch)] = binding
            binding.bind_cpu_input("input_ids", ids)
            binding.bind_cpu_input("attention_mask", mask)
            self._session.run_with_iobinding(binding)
            logits = binding.get_outputs()[0].numpy()[:, -1]
        except BaseException as failure:  # every answer in the step hears of it
            error = failure
        with self._cond:
            self.stats["steps"] += 1
            self.stats["rows"] += sum(t is not None for t in tokens)
            for row, (a, token) in enumerate(zip(batch, tokens, strict=True)):
                if token is None:
                    continue
                if error is None:
                    a.logits, a.length = np.array(logits[row]), a.length + 1
                else:
                    a.error = error
            self._running = False
            self._cond.notify_all()

    def _close(self, answer: _Answer) -> None:
        """Give the answer's row back: the last row moves into it."""
        with self._cond:
            self._wait_idle()
            if answer in self._rows:
                last = self._rows.pop()
                if last is not answer:
                    self._rows[answer.slot] = last
                    self._move(last, answer.slot)
            self._held -= 1
            self._cond.notify_all()

    def _move(self, answer: _Answer, slot: int) -> None:
        """Copy the answer's cache to ``slot`` (free) and make it the answer's row."""
        for buffer in self._buffers:
            buffer[slot, :, : answer.length] = buffer[answer.slot, :, : answer.length]
        answer.slot = slot

    def _wait_idle(self) -> None:
        """Under the condition: until no step runs (the rows may then change)."""
        while self._running:
            self._cond.wait()

    def _binding_of(self, views: list[np.ndarray]) -> Any:
        return bind_cache(self._session, self._names, views, self._keep)


def bind_cache(session: Any, names: list[str], views: list[np.ndarray], keep: str | None) -> Any:
    """An I/O binding of ``session`` whose past inputs ``names`` and their present outputs are
    the same ``views`` of cache buffers (GroupQueryAttention appends to them in place); the
    logits are its output, ``keep`` (the input that keeps the last logits only) set to 1."""
    import onnxruntime as ort

    binding = session.io_binding()
    binding.bind_output("logits")
    for name, view in zip(names, views, strict=True):
        value = ort.OrtValue.ortvalue_from_numpy(view)
        binding.bind_ortvalue_input(name, value)
        binding.bind_ortvalue_output(name.replace("past_key_values", "present"), value)
    if keep:
        binding.bind_cpu_input(keep, np.array(1, np.int64))
    return binding
