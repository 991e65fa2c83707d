"""TORCH-FREE: the configs of the torch-free verbs: ``BenchConfig`` (`rec-edge bench`),
``ServeConfig`` (`rec-edge serve`), ``ScoreConfig`` (`rec-edge score`) and ``GenerationConfig``
(how a decoder bundle writes)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from rec_edge.config._base import _check, option, option_problems

BENCH_ENGINES = ("onnx", "ort-raw", "torch", "optimum", "fastembed", "st-onnx")


@dataclass
class BenchConfig:
    """Everything `rec-edge bench` needs. Engines run in worker processes, interleaved."""

    bundles: list[str]
    engines: list[str] = option(
        factory=lambda: ["onnx", "ort-raw"],
        help="Comma-separated: onnx (rec-edge), ort-raw (bare session.run), torch, optimum "
        "([train] extra), fastembed and st-onnx (sentence-transformers' ONNX backend; the "
        "[peers] extra).",
        parse="names",
    )
    batch_sizes: list[int] = option(
        factory=lambda: [1, 32], help="Comma-separated batch sizes.", parse="ints"
    )
    seq_lengths: list[int] = option(  # synthetic mode (no text_file)
        factory=list,
        help="Synthetic inputs of these token lengths (without --text-file). [default: 32,128]",
        parse="ints",
    )
    text_file: str | None = option(  # realistic mode: real texts, dynamic padding
        None, "Real texts (JSONL/CSV/TSV or plain lines): the realistic mode.", path=True
    )
    text_field: str = option("text", "Field of the text in --text-file.")
    label_field: str | None = option(
        None, "Field of the label in --text-file: accuracy is measured too."
    )
    threads: list[int] = option(
        factory=list,
        help="Comma-separated thread counts to sweep. [default: usable cores]",
        parse="ints",
    )
    warmup: int = option(5, "Untimed calls per engine and batch size.", minimum=0)
    iterations: int = option(50, "Timed calls per engine and batch size.", minimum=3)
    max_texts: int = option(2000, "At most this many texts from --text-file.", minimum=1)
    whole_list: int = option(
        3,
        "With --text-file (classify): time each engine on every text in one call, as a user "
        "with a list writes it, this many times after one untimed call (0: skip).",
        minimum=0,
    )
    baseline: str | None = option(
        None, "Engine kind the speedups refer to. [default: torch if run, else the first]"
    )
    cold_start_runs: int = option(
        3, "Fresh processes per engine for cold start (0: skip).", minimum=0
    )
    peak: bool = option(True, "Measure the machine's matmul peak through onnxruntime.")
    out: str | None = option(None, "Write bench.json, bench.md and bench.png here.")
    plot: bool = option(True, "A PNG chart too, where matplotlib is installed.")

    def __post_init__(self) -> None:
        p: list[str] = []
        if not self.bundles:
            p.append("bundles is empty (give at least one bundle folder)")
        unknown = [e for e in self.engines if e not in BENCH_ENGINES]
        if unknown or not self.engines:
            p.append(f"engines={self.engines} (allowed: {', '.join(BENCH_ENGINES)})")
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            p.append(f"batch_sizes={self.batch_sizes} (positive integers)")
        if any(s < 4 for s in self.seq_lengths):
            p.append(f"seq_lengths={self.seq_lengths} (each >= 4)")
        if self.text_file is None and not self.seq_lengths:
            self.seq_lengths = [32, 128]
        if any(t < 1 for t in self.threads):
            p.append(f"threads={self.threads} (positive integers)")
        p += option_problems(self)
        if self.baseline is not None and self.baseline not in self.engines:
            p.append(f"baseline={self.baseline!r} is not among the engines {self.engines}")
        _check(p, "BenchConfig")


@dataclass
class ServeConfig:
    """Everything `rec-edge serve` needs: the bundles by name, the socket, batching and limits."""

    bundles: dict[str, str]  # name -> bundle folder
    host: str = option("127.0.0.1", "Address to bind (loopback unless told otherwise).")
    port: int = option(8000, "Port; 0 picks a free one (printed).")
    max_batch: int = option(
        32, "Items (texts, or rank requests) gathered from the queue into one batch.", minimum=1
    )
    # None: on the CPU the fastest of 1, 2, 4, ... max_batch, timed at load (a padded batch of 32
    # short texts ran at 0.35-0.55x the rate of the best short runs: benchmarks/RESULTS.md)
    session_batch: int | None = option(
        None,
        "Texts per session run within a batch, sorted by length. [default: on the CPU the "
        "fastest of 1, 2, 4, ... up to --max-batch, timed at load; --max-batch on other "
        "providers]",
        minimum=1,
    )
    max_wait_ms: float = option(
        2.0, "How long a batch waits for requests already being read.", minimum=0.0
    )
    max_queue: int = option(64, "Items waiting per bundle; past it: 503 + Retry-After.", minimum=1)
    # Off by default: measured on 2 cores, it did not lower the admitted p99 under overload (the
    # HTTP loop's backlog ruled) and clients that retry at once turned its refusals into a storm
    # (benchmarks/RESULTS.md)
    max_queue_ms: float | None = option(
        None,
        "And no longer than this in waiting time, by the recent run time per item. [default: off]",
    )
    max_body_bytes: int = option(1 << 20, "Largest request body (413 past it).", minimum=1)
    max_texts: int = option(64, "Texts per predict request (413 past it).", minimum=1)
    max_candidates: int = option(2000, "Candidates per rank request (413 past it).", minimum=1)
    max_chars: int = option(10_000, "Characters per text (413 past it).", minimum=1)
    timeout_s: float = option(30.0, "Per request, queue and run (504 past it).")
    # On 2 cores, 1 run x 2 spinning threads served as many texts at 32 clients as 2 runs x 1
    # thread and answered a lone request 3-4 ms sooner (benchmarks/RESULTS.md)
    runs: int = option(
        1, "Session runs in flight per bundle (with --threads: cores / runs).", minimum=1
    )
    spinning: bool = option(True, "onnxruntime threads spin between runs: lower latency, more CPU.")
    threads: int | None = option(
        None, "onnxruntime intra-op threads per run. [default: one per core]", minimum=1
    )
    workers: int = option(1, "Server processes, each with every bundle.", minimum=1)
    # None: no auth, and POST .../reload only on a loopback host
    api_key_file: str | None = option(
        None,
        "Bearer tokens, one per line: turns on auth. Beyond loopback, POST .../reload needs it.",
        path=True,
    )
    show_paths: bool = option(
        False, "GET /v1/models shows each bundle's folder (hidden from clients by default)."
    )
    access_log: bool = option(True, "One JSON line per request on stderr.")
    provider: str = option("cpu", "cpu, cuda, ... or an onnxruntime name.")

    def __post_init__(self) -> None:
        p = option_problems(self)  # choices and minimums, as declared
        if not self.bundles:
            p.append("bundles is empty (give at least one bundle folder)")
        bad = [n for n in self.bundles if not n or not all(c.isalnum() or c in "-_." for c in n)]
        if bad:
            p.append(f"bundle names {bad} (letters, digits, '-', '_', '.' only: they go in URLs)")
        if not 0 <= self.port < 65536:
            p.append(f"port={self.port} (0..65535; 0 picks a free port)")
        if self.max_texts > self.max_queue:
            p.append(
                f"max_texts={self.max_texts} > max_queue={self.max_queue}: a request that large "
                "could never be queued"
            )
        if self.max_queue_ms is not None and self.max_queue_ms <= 0:
            p.append(f"max_queue_ms={self.max_queue_ms} (must be > 0)")
        if self.timeout_s <= 0:
            p.append(f"timeout_s={self.timeout_s} (must be > 0)")
        _check(p, "ServeConfig")

    @property
    def on_cpu(self) -> bool:
        return self.provider.lower() in ("cpu", "cpuexecutionprovider")

    @property
    def loopback(self) -> bool:
        """Whether the server listens on this machine only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name
            return False


SCORE_ENGINES = ("local", "ray", "spark")
SCORE_FORMATS = ("jsonl", "csv", "tsv", "parquet")


@dataclass
class ScoreConfig:
    """Everything `rec-edge score` needs: a bundle, an input, an output folder, an engine.

    The input is cut into parts of ``part_rows`` rows; each part is scored and its output file
    committed (renamed into place) alone, whatever the engine, so that parts are the same files
    on every engine and an interrupted job resumes at the first part not committed.
    """

    bundle: str
    input: str  # a file, or a folder of files of one format
    out: str = option(  # a folder: part-NNNNN.<format>, rejects/, _job.json, _SUCCESS.json
        help="Output folder: part-NNNNN.<format> files, rejects/, _SUCCESS.json when whole."
    )
    engine: str = option("local", "Where the parts are scored.", choices=SCORE_ENGINES)
    input_format: str | None = option(
        None, "[default: from the suffix]", choices=SCORE_FORMATS
    )  # .jsonl/.json, .csv, .tsv, .parquet
    out_format: str | None = option(
        None, "Output format. [default: the input's]", choices=SCORE_FORMATS, flag="--format"
    )
    text_field: str = option("text", "Classify: the text column.")
    all_scores: bool = option(False, "Classify: every label's probability as well.")
    embed: bool = option(False, "Classify: each row's sentence vector ('embedding') as well.")
    prefix: str = option(
        "", "Classify: before the output names (label, score, scores).", show_default=False
    )
    user_field: str = option("user", "Rank: the user id column.")  # liked/disliked: title lists
    candidates: str | None = option(
        None,
        "Rank: titles to rank, one per line (or JSONL). [default: the bundle's catalog]",
        path=True,
    )
    k: int = option(10, "Rank: items kept per user.", minimum=1)
    on_error: str = option(
        "fail",
        "A bad row: stop naming its file and line, or write it to rejects/ and go on.",
        choices=("fail", "skip"),
    )
    resume: bool = option(False, "Continue a stopped job in --out (the same job).")
    force: bool = option(False, "Delete --out first.")
    # the unit of commit, resume and distribution
    part_rows: int | None = option(
        None,
        "Rows per part (the unit of commit and resume). [default: about 64 parts, 100 to 10,000 "
        "rows each]",
        minimum=1,
    )
    # never read whole or tokenized
    max_row_bytes: int = option(
        1 << 20,
        "A record longer than this is a row error (see --on-error), never read whole.",
        minimum=1,
    )
    batch_size: int = option(
        32,
        "At most this many texts per session run (shorter runs where they pay: run_length).",
        minimum=1,
    )  # length-sorted in a part
    threads: int | None = option(
        None,
        "onnxruntime threads per worker. [default: local with 1 worker: every core; else cores "
        "/ workers, ray and spark 1]",
        minimum=1,
    )
    workers: int | None = option(
        None,
        "Parts at once: local threads (default 1), Ray actors, Spark tasks (default cores / "
        "threads).",
        minimum=1,
    )
    address: str | None = option(
        None, "Ray: an existing cluster ('auto', 'ray://host:10001'). [default: a local one]"
    )
    master: str | None = option(
        None, "Spark master, e.g. spark://host:7077. [default: local[--workers]]"
    )
    progress: bool = True  # a progress bar on stderr

    def __post_init__(self) -> None:
        p = option_problems(self)  # choices and minimums, as declared
        if self.resume and self.force:
            p.append("resume and force together (resume keeps the parts done, force deletes them)")
        if self.address is not None and self.engine != "ray":
            p.append(f"address is for engine 'ray' (engine is {self.engine!r})")
        if self.master is not None and self.engine != "spark":
            p.append(f"master is for engine 'spark' (engine is {self.engine!r})")
        _check(p, "ScoreConfig")


@dataclass(frozen=True)
class GenerationConfig:
    """How a decoder bundle writes: greedy at temperature 0, else sampled from the tokens
    within ``top_p`` of the probability mass, seeded; it stops at ``max_new_tokens``, at the
    model's end of turn, or before the first of the ``stop`` strings."""

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        p: list[str] = []
        if self.max_new_tokens < 1:
            p.append(f"max_new_tokens={self.max_new_tokens} (must be >= 1)")
        if self.temperature < 0:
            p.append(f"temperature={self.temperature} (must be >= 0; 0 is greedy)")
        if not 0.0 < self.top_p <= 1.0:
            p.append(f"top_p={self.top_p} (must be in (0, 1])")
        if any(not s for s in self.stop):
            p.append("stop strings must not be empty")
        _check(p, "GenerationConfig")
