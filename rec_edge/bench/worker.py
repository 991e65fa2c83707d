"""One engine in one process: the parent sends commands, the worker times only the call."""

from __future__ import annotations

import resource
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


def peak_rss_bytes() -> int:
    """This process's peak resident memory: Linux's VmHWM (``ru_maxrss`` there keeps the peak of
    the process that forked it, across exec: a worker would report its parent's), else
    ``ru_maxrss``."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)  # bytes on macOS, KiB on Linux


def serve(conn: Connection, kind: str, bundle: str, threads: int) -> None:
    from rec_edge.bench.engines import isolate_threads

    isolate_threads(threads)  # before torch or onnxruntime is imported in this process
    from rec_edge.bench.engines import ENGINES

    started = time.perf_counter()
    try:
        engine = ENGINES[kind](Path(bundle), threads)
    except Exception as error:  # reported to the parent, which skips the engine with the reason
        conn.send(("error", f"{type(error).__name__}: {error}"))
        return
    conn.send(("ok", time.perf_counter() - started))
    while True:
        command, argument = conn.recv()
        result: Any = None
        if command == "prepare":
            engine.prepare(*argument)  # (batches, whole)
        elif command == "run":
            start = time.perf_counter()
            engine.run(argument)
            result = time.perf_counter() - start
        elif command == "predict":
            result = engine.predict(argument)
        elif command == "rss":
            result = peak_rss_bytes()
        elif command == "stop":
            getattr(engine, "close", lambda: None)()
            conn.send(("ok", None))
            return
        conn.send(("ok", result))
