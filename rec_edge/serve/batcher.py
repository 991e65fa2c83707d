"""TORCH-FREE dynamic micro-batching: the items of concurrent requests gathered into one run.

A queue with a maximum batch and a maximum delay, as Triton's dynamic batcher means them, with
one rule added for latency: a batch waits for more only while other requests are being read
(``announce``d but not yet submitted). A lone client never waits; 32 clients share runs.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

RATE_WINDOW_S = 10.0


class Overloaded(Exception):
    """The queue is full: the request is refused at once (503 + Retry-After), never queued."""


@dataclass
class _Job:
    items: Sequence[Any]
    future: asyncio.Future[Any]
    arrived: float


class MicroBatcher:
    """Runs ``run(items) -> outputs`` (one output per item, a list or an array) in ``executor``
    on the items of several requests at once, and answers each request with its own outputs.

    A run starts when ``max_batch`` items are queued, when the oldest waited ``max_wait_s``, or
    when no other request is being read; up to ``concurrency`` runs are in flight at once. A
    request's items are never split across runs; one larger than ``max_batch`` runs alone. At
    most ``max_queue`` items wait, and no longer than ``max_queue_s`` by the recent cost of an
    item: past either, ``submit`` raises ``Overloaded`` (when the CPU is short, the time limit
    sheds sooner than the count).
    """

    def __init__(
        self,
        run: Callable[[list[Any]], Sequence[Any]],
        *,
        executor: Executor,
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
        max_queue_s: float = float("inf"),
        concurrency: int = 1,
        observe: Callable[[int], None] | None = None,
    ):
        self.run = run
        self.executor = executor  # with at least ``concurrency`` threads
        self.concurrency = concurrency
        self.max_queue_s = max_queue_s
        self.item_seconds = 0.0  # run time per item, a moving average (0: no run yet)
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.observe = observe  # called with the item count of each run
        self.queued = 0  # items waiting
        self.arriving = 0  # requests announced and not yet submitted (or withdrawn)
        self._jobs: collections.deque[_Job] = collections.deque()
        self._wakeup = asyncio.Event()
        self._answered: collections.deque[tuple[float, int]] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._serve(), name="rec-edge-batch")

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for job in self._jobs:
            if not job.future.done():
                job.future.set_exception(Overloaded("the server is shutting down"))
        self._jobs.clear()
        self.queued = 0

    def announce(self) -> None:
        """A request for this batcher is being read: a forming batch may wait for it."""
        self.arriving += 1

    def withdraw(self) -> None:
        """An announced request will not be submitted (it was refused)."""
        self.arriving -= 1

    def expected_wait(self, items: int = 0) -> float:
        """Seconds the queued items (and ``items`` more) would wait, at the recent cost per item."""
        return (self.queued + items) * self.item_seconds / self.concurrency

    def check(self, items: int = 1) -> None:
        """Raise Overloaded if ``items`` more would pass the queue's count or time limit."""
        if self.queued + items > self.max_queue:
            raise Overloaded(
                f"{self.queued} items are queued; {items} more would pass the limit of "
                f"{self.max_queue} (--max-queue)"
            )
        if self.queued and self.expected_wait(items) > self.max_queue_s:
            raise Overloaded(
                f"the queued items would wait {self.expected_wait(items) * 1000:.0f} ms, past "
                f"{self.max_queue_s * 1000:.0f} ms (--max-queue-ms)"
            )

    def enqueue(self, items: Sequence[Any]) -> asyncio.Future[Any]:
        """Queue an announced request's items at once; the future gets their outputs (cancel it
        to drop them: the batch loop skips a job whose future is done)."""
        self.arriving -= 1
        self.check(len(items))
        job = _Job(items, asyncio.get_running_loop().create_future(), time.monotonic())
        self._jobs.append(job)
        self.queued += len(items)
        self._wakeup.set()
        return job.future

    async def submit(self, items: Sequence[Any]) -> Sequence[Any]:
        """Queue an announced request's items and wait for their outputs."""
        return await self.enqueue(items)

    def items_per_second(self) -> float:
        """Items answered per second over the last ``RATE_WINDOW_S`` seconds."""
        self._forget(time.monotonic())
        return sum(n for _, n in self._answered) / RATE_WINDOW_S

    def _forget(self, now: float) -> None:
        while self._answered and self._answered[0][0] < now - RATE_WINDOW_S:
            self._answered.popleft()

    async def _serve(self) -> None:
        slots = asyncio.Semaphore(self.concurrency)
        while True:
            await slots.acquire()  # a free run slot first: meanwhile the queue fills
            await self._gather()
            jobs = self._take()
            if not jobs:
                slots.release()
                continue
            task = asyncio.get_running_loop().create_task(self._answer(jobs))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            task.add_done_callback(lambda _: slots.release())

    async def _answer(self, jobs: list[_Job]) -> None:
        """One run over the items of ``jobs``; each job gets its own outputs (or the error)."""
        items = [item for job in jobs for item in job.items]
        started = time.monotonic()
        try:
            outputs = await asyncio.get_running_loop().run_in_executor(
                self.executor, self.run, items
            )
        except Exception as error:  # the requests of this run get it; the loop goes on
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        start = 0
        for job in jobs:
            if not job.future.done():
                job.future.set_result(outputs[start : start + len(job.items)])
            start += len(job.items)
        now = time.monotonic()
        cost = (now - started) / len(items)
        self.item_seconds = cost if not self.item_seconds else 0.8 * self.item_seconds + 0.2 * cost
        self._answered.append((now, len(items)))
        self._forget(now)
        if self.observe is not None:
            self.observe(len(items))

    async def _gather(self) -> None:
        """Wait for a first job, then while the batch is short and requests are being read,
        until the oldest job has waited ``max_wait_s``."""
        while not self._jobs:
            self._wakeup.clear()
            await self._wakeup.wait()
        deadline = self._jobs[0].arrived + self.max_wait_s
        while self.queued < self.max_batch and self.arriving > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), left)
            except TimeoutError:
                return

    def _take(self) -> list[_Job]:
        """The oldest jobs that fit in one run (at least one); jobs already answered (timed
        out, cancelled) are dropped."""
        taken: list[_Job] = []
        size = 0
        while self._jobs:
            job = self._jobs[0]
            if job.future.done():
                self._jobs.popleft()
                self.queued -= len(job.items)
                continue
            if taken and size + len(job.items) > self.max_batch:
                break
            self._jobs.popleft()
            self.queued -= len(job.items)
            taken.append(job)
            size += len(job.items)
        return taken
