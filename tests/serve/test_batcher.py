"""The micro-batcher driven alone, with a real function in a real thread: grouping, limits,
cancelled requests, errors."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from rec_edge.serve.batcher import MicroBatcher, Overloaded


class Recorder:
    """``run``: doubles each item; remembers each run's items; can be held to let a queue form."""

    def __init__(self) -> None:
        self.started: list[list[int]] = []
        self.runs: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, items: list[int]) -> list[int]:
        self.started.append(list(items))
        self.gate.wait(5)
        self.runs.append(list(items))
        if any(i < 0 for i in items):
            raise ValueError("negative item")
        return [2 * i for i in items]


async def _batcher(run: Recorder, **options: float) -> MicroBatcher:
    settings = {"max_batch": 8, "max_wait_s": 0.05, "max_queue": 64, **options}
    batcher = MicroBatcher(run, executor=ThreadPoolExecutor(1), **settings)  # type: ignore[arg-type]
    batcher.start()
    return batcher


async def _ask(batcher: MicroBatcher, items: list[int]) -> list[int]:
    batcher.announce()
    await asyncio.sleep(0)
    return list(await batcher.submit(items))


def test_concurrent_requests_share_runs_and_get_their_own_outputs() -> None:
    async def main() -> None:
        run = Recorder()
        batcher = await _batcher(run)
        requests = [[i, i + 100] for i in range(12)]
        answers = await asyncio.gather(*(_ask(batcher, r) for r in requests))
        assert answers == [[2 * a, 2 * b] for a, b in requests]
        assert len(run.runs) < len(requests)  # grouped
        assert all(len(items) <= 8 for items in run.runs)
        assert sorted(i for items in run.runs for i in items) == sorted(sum(requests, []))
        await batcher.close()

    asyncio.run(main())


def test_a_lone_request_does_not_wait_and_a_large_one_runs_alone() -> None:
    async def main() -> None:
        run = Recorder()
        batcher = await _batcher(run, max_wait_s=10.0)
        assert await asyncio.wait_for(_ask(batcher, [1]), 2) == [2]  # nobody else is arriving
        assert await _ask(batcher, list(range(20))) == [2 * i for i in range(20)]
        assert run.runs[-1] == list(range(20))
        await batcher.close()

    asyncio.run(main())


def test_a_full_queue_refuses_and_cancelled_requests_are_skipped() -> None:
    async def main() -> None:
        run = Recorder()
        run.gate.clear()  # hold the first run so that a queue forms behind it
        batcher = await _batcher(run, max_queue=4, max_batch=4)
        first = asyncio.ensure_future(_ask(batcher, [1]))
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(_ask(batcher, [2, 3]))
        dropped = asyncio.ensure_future(_ask(batcher, [4, 5]))
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded, match="--max-queue"):
            await _ask(batcher, [6])
        dropped.cancel()  # its client went away (or its timeout passed)
        run.gate.set()
        assert await first == [2] and await waiting == [4, 6]
        assert [4, 5] not in run.runs and all(4 not in items for items in run.runs)
        assert batcher.queued == 0 and batcher.arriving == 0  # nobody is left announced
        await batcher.close()

    asyncio.run(main())


def test_an_error_reaches_the_requests_of_its_run_and_the_loop_goes_on() -> None:
    async def main() -> None:
        run = Recorder()
        batcher = await _batcher(run)
        with pytest.raises(ValueError, match="negative item"):
            await _ask(batcher, [-1])
        assert await _ask(batcher, [3]) == [6]
        await batcher.close()

    asyncio.run(main())


def test_up_to_concurrency_runs_are_in_flight() -> None:
    async def main() -> None:
        run = Recorder()
        run.gate.clear()
        batcher = MicroBatcher(
            run,
            executor=ThreadPoolExecutor(2),
            max_batch=1,
            max_wait_s=0.0,
            max_queue=8,
            concurrency=2,
        )
        batcher.start()
        asks = [asyncio.ensure_future(_ask(batcher, [i])) for i in range(3)]
        await asyncio.sleep(0.1)
        assert sorted(run.started) == [[0], [1]]  # two runs at once, the third waits
        run.gate.set()
        assert await asyncio.gather(*asks) == [[0], [2], [4]]
        await batcher.close()

    asyncio.run(main())


def test_the_queue_is_also_bounded_in_time_by_the_recent_cost_of_an_item() -> None:
    async def main() -> None:
        run = Recorder()
        batcher = MicroBatcher(
            lambda items: (time.sleep(0.05 * len(items)), run(items))[1],
            executor=ThreadPoolExecutor(1),
            max_batch=8,
            max_wait_s=0.0,
            max_queue=64,
            max_queue_s=0.12,
        )
        batcher.start()
        assert await _ask(batcher, [1]) == [2]  # learns: about 50 ms an item
        run.gate.clear()
        held = asyncio.ensure_future(_ask(batcher, [2]))  # running, held at the gate
        await asyncio.sleep(0.1)
        queued = asyncio.ensure_future(_ask(batcher, [3]))  # 1 queued: ~50 ms of wait
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded, match="--max-queue-ms"):
            await _ask(batcher, [4, 5])  # 3 queued would wait ~150 ms
        run.gate.set()
        assert await held == [4] and await queued == [6]
        await batcher.close()

    asyncio.run(main())
