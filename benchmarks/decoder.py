"""Decoder bundles: what each weight format keeps of fp32, and how fast each writes.

    python benchmarks/decoder.py --model smollm2 --out benchmarks/results/decoder

1. Export the model once at fp32 (rec-edge export --model ... --weights fp32), then quantize it
   into each candidate (int4 and int8 MatMulNBits, symmetric or not, several block sizes) and
   measure what the export gate measures: on the gate's probe prompts, the share of fp32's
   greedy tokens each candidate picks (teacher forcing) and the answers' mean NLL.
2. Speed at batch 1 on the same prompts, interleaved (one prompt per engine in turn, the order
   rotated): time to first token (the prompt's run and the first token) and decode tokens/s
   (the tokens after the first over their time), for each bundle, for transformers' PyTorch
   `generate` on the same fp32 weights, and for optimum's ORTModelForCausalLM `generate` on the
   int4 bundle's own graph file, and for llama.cpp (llama-cpp-python, its own venv: run
   benchmarks/llamacpp.sh first) on Q4_0 and Q8_0 GGUFs of the same fp32 weights, fed the same
   prompt text; greedy, 64 new tokens, no stop. The bundles hold rec-edge's fused graph where
   its builder knows the model (convert.llama_graph); optimum's graph of the same weights at
   int4 runs beside them (``rec-edge-optimum-int4-b32-asym``), and onnxruntime-genai's own int4
   build of the same weights (its environment and model: benchmarks/genai.sh, after a first run
   of this script has written WORK/hf). The int4 bundle runs twice: decoding in place (its
   cache one buffer bound once, the runtime's default for the fused graph) and ``-copying``
   (the cache fed back as the graph's output each step), and ``-whole``: each prompt run whole,
   its prompt frame too (the runtime's default runs a prompt from the end of the frame's cache:
   the chat format's system turn, computed once per Generator; onnxruntime-genai's and
   llama.cpp's workers run every prompt whole). ``--engines`` picks some of them.

Writes weights.json and speed{--tag}.json (every timing, the machine, the versions) into --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import shutil
import statistics
import time
from pathlib import Path

from rec_edge.bundle import Manifest, write_manifest
from rec_edge.config import DecoderExportConfig, GenerationConfig
from rec_edge.convert.causal import quantize_weights
from rec_edge.export.decoder import PROBE_PROMPTS, _agreement, _probe_sequences, export_decoder
from rec_edge.runtime.generator import Generator
from rec_edge.versions import machine, versions

CANDIDATES = [  # (bits, block size, symmetric)
    (4, 32, True),
    (4, 32, False),
    (4, 16, False),
    (4, 64, False),
    (8, 32, True),
    (8, 32, False),
]
NEW_TOKENS = 64
LLAMA_VENV = Path(".venv-llama")  # benchmarks/llamacpp.sh
GENAI_VENV = Path(".venv-genai")  # benchmarks/genai.sh


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("model.onnx*"))


def weights(fp32: Path, work: Path) -> list[dict]:
    reference = Generator.load(fp32)
    probes = _probe_sequences(reference)
    rows = [{"weights": "fp32", "size_bytes": _size(fp32)}]
    for bits, block, symmetric in CANDIDATES:
        folder = work / f"int{bits}-b{block}-{'sym' if symmetric else 'asym'}"
        seconds = _quantize(fp32, folder, bits, block, symmetric)
        row = {
            "weights": folder.name,
            "bits": bits,
            "block_size": block,
            "symmetric": symmetric,
            "quantize_seconds": round(seconds, 1),
            "size_bytes": _size(folder),
            "size_of_fp32": round(_size(folder) / rows[0]["size_bytes"], 3),
            **_agreement(reference, Generator.load(folder), probes),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _quantize(fp32: Path, folder: Path, bits: int, block: int, symmetric: bool) -> float:
    """A bundle of ``fp32``'s graph with MatMulNBits weights; the seconds it took."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    quantize_weights(fp32 / "model.onnx", folder / "model.onnx", bits, block, 4, symmetric)
    seconds = time.perf_counter() - started
    shutil.copy(fp32 / "tokenizer.json", folder / "tokenizer.json")
    manifest = Manifest.from_dict(json.loads((fp32 / "rec_edge.json").read_text("utf-8")))
    write_manifest(folder, manifest)
    return seconds


def speed(
    bundles: dict[str, Path],
    hf_folder: Path | None,
    rounds: int,
    threads: int,
    work: Path,
    only: set[str] | None = None,
) -> dict:
    """Each engine's time to first token and decode rate (``only``: those engines alone)."""
    makers = {
        name: functools.partial(_rec_edge_engine, path, threads) for name, path in bundles.items()
    }
    if "rec-edge-int4-b32-asym" in bundles:
        asym = bundles["rec-edge-int4-b32-asym"]
        # the same bundle, the cache fed back each step
        makers["rec-edge-int4-b32-asym-copying"] = functools.partial(
            _rec_edge_engine, asym, threads, in_place=False
        )
        # the same bundle, each prompt run whole (the prompt frame's cache not reused): the
        # same ids through the same operators as onnxruntime-genai's worker
        makers["rec-edge-int4-b32-asym-whole"] = functools.partial(
            _rec_edge_engine, asym, threads, reuse_prefix=False
        )
    if hf_folder is not None:
        makers["torch-fp32"] = functools.partial(_torch_engine, hf_folder, threads)
        if "rec-edge-optimum-int4-b32-asym" in bundles:  # optimum's int4 file, its own loop
            makers["optimum-int4-b32-asym"] = functools.partial(
                _optimum_engine, bundles["rec-edge-optimum-int4-b32-asym"], hf_folder, work, threads
            )
    reference = Generator.load(next(iter(bundles.values())))
    prompt_of = reference.prompt
    for kind in ("q4_0", "q8_0"):  # llama.cpp on GGUFs of the same weights
        gguf = work / f"smollm2-{kind}.gguf"
        if gguf.is_file() and (LLAMA_VENV / "bin" / "python").is_file():
            makers[f"llama.cpp-{kind}"] = functools.partial(
                _worker_engine,
                LLAMA_VENV,
                "llamacpp_worker.py",
                gguf,
                threads,
                lambda t: {"prompt": prompt_of(t)},
            )
    genai = work / "genai-int4"  # onnxruntime-genai's builder, int4 (benchmarks/genai.sh)
    if (genai / "genai_config.json").is_file() and (GENAI_VENV / "bin" / "python").is_file():
        makers["onnxruntime-genai-int4"] = functools.partial(
            _worker_engine,
            GENAI_VENV,
            "genai_worker.py",
            genai,
            threads,
            lambda t: {"ids": reference.encode(prompt_of(t))},
        )
    engines = {name: make() for name, make in makers.items() if not only or name in only}
    prompts = list(PROBE_PROMPTS)
    timings: dict[str, list[dict]] = {name: [] for name in engines}
    names = list(engines)
    for r in range(rounds):
        for i, prompt in enumerate(prompts):
            shift = (r * len(prompts) + i) % len(names)
            for name in names[shift:] + names[:shift]:
                timings[name].append(engines[name](prompt))
    summary = {}
    for name, rows in timings.items():
        ttft = sorted(t["ttft_s"] for t in rows)
        decode = [t["decode_tokens_per_s"] for t in rows if t["decode_tokens_per_s"]]
        summary[name] = {
            "ttft_ms_p50": round(1000 * statistics.median(ttft), 2),
            "ttft_ms_p95": round(1000 * ttft[int(0.95 * (len(ttft) - 1))], 2),
            "decode_tokens_per_s_p50": round(statistics.median(decode), 1),
            "prompt_tokens_p50": statistics.median(t["prompt_tokens"] for t in rows),
            "runs": len(rows),
        }
        print(name, json.dumps(summary[name]), flush=True)
    return {"summary": summary, "timings": timings}


def _rec_edge_engine(  # type: ignore[no-untyped-def]
    path: Path, threads: int, in_place: bool = True, reuse_prefix: bool = True
):
    generator = Generator.load(path, threads=threads)
    generator.reuse_prefix = reuse_prefix  # False: each prompt runs whole, its frame too
    generator._in_place &= in_place  # False: the loop that feeds the cache back (a copy a step)
    generator.batching &= in_place  # one stream: the batch of one row (the default), or not
    config = GenerationConfig(max_new_tokens=NEW_TOKENS)
    generator.spec = dataclasses.replace(generator.spec, stop_token_ids=())  # 64 tokens each

    def run(text: str) -> dict:
        prompt = generator.prompt(text)
        stamps = []
        started = time.perf_counter()
        for _ in generator.tokens(prompt, config):
            stamps.append(time.perf_counter())
        return _timing(started, stamps, len(generator.encode(prompt)))

    generator.generate(generator.prompt("warm up"), GenerationConfig(max_new_tokens=4))
    return run


def _torch_engine(folder: Path, threads: int):  # type: ignore[no-untyped-def]
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()

    run = _generate_timer(model, tokenizer)
    run("warm up")
    return run


def _optimum_engine(bundle: Path, hf_folder: Path, work: Path, threads: int):  # type: ignore[no-untyped-def]
    """optimum's ORTModelForCausalLM (its own generate loop, io-binding off on the CPU) on the
    bundle's own graph file, with the model's config beside it."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper
    from optimum.onnxruntime import ORTModelForCausalLM
    from transformers import AutoTokenizer

    folder = work / f"optimum-{bundle.name}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    # a hard link: onnxruntime refuses external data that a symlink points outside the folder
    os.link(bundle / "model.onnx.data", folder / "model.onnx.data")
    # optimum feeds the inputs it knows: the bundle's logits_to_keep becomes a constant 0 (every
    # position, as optimum's own export computes them); the weights are the bundle's file
    graph = onnx.load(str(bundle / "model.onnx"), load_external_data=False)
    kept = [i for i in graph.graph.input if i.name != "logits_to_keep"]
    if len(kept) < len(graph.graph.input):
        del graph.graph.input[:]
        graph.graph.input.extend(kept)
        graph.graph.initializer.append(
            helper.make_tensor("logits_to_keep", TensorProto.INT64, [], [0])
        )
    onnx.save_model(graph, str(folder / "model.onnx"))
    for name in ("config.json", "generation_config.json"):
        if (hf_folder / name).is_file():
            shutil.copy(hf_folder / name, folder / name)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    model = ORTModelForCausalLM.from_pretrained(folder, use_cache=True, session_options=options)
    tokenizer = AutoTokenizer.from_pretrained(hf_folder)

    run = _generate_timer(model, tokenizer)
    run("warm up")
    return run


def _worker_engine(venv: Path, script: str, model: Path, threads: int, request):  # type: ignore[no-untyped-def]
    """A peer in its own environment (llama.cpp: benchmarks/llamacpp.sh; onnxruntime-genai:
    benchmarks/genai.sh) in a worker process, fed the bundles' prompt (``request``: its text, or
    its token ids), timed inside the worker."""
    import subprocess

    worker = subprocess.Popen(
        [
            str(venv / "bin" / "python"),
            str(Path(__file__).parent / script),
            str(model),
            str(threads),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdin is not None and worker.stdout is not None
    json.loads(worker.stdout.readline())  # {"ready": true}

    def run(text: str) -> dict:
        worker.stdin.write(json.dumps({**request(text), "tokens": NEW_TOKENS}) + "\n")
        worker.stdin.flush()
        answer = json.loads(worker.stdout.readline())
        return _timing(answer["started"], answer["stamps"], answer["prompt_tokens"])

    run("warm up")
    return run


def _generate_timer(model, tokenizer):  # type: ignore[no-untyped-def]
    """A transformers-style ``generate`` (PyTorch or optimum's) timed token by token through a
    streamer: the chat format from the tokenizer, greedy, exactly NEW_TOKENS tokens."""
    import torch
    from transformers import TextIteratorStreamer

    def run(text: str) -> dict:
        messages = [{"role": "user", "content": text}]
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
        stamps: list[float] = []

        class Clock(TextIteratorStreamer):
            def put(self, value):  # type: ignore[no-untyped-def]
                stamps.append(time.perf_counter())

            def end(self) -> None:
                pass

        started = time.perf_counter()
        with torch.no_grad():
            model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=NEW_TOKENS,
                min_new_tokens=NEW_TOKENS,
                do_sample=False,
                streamer=Clock(tokenizer),
            )
        return _timing(started, stamps[1:], ids.shape[1])  # the first put is the prompt

    return run


COLD = (
    "import json, sys, time\nt = time.perf_counter()\n"
    "from rec_edge.runtime.generator import Generator\nfrom rec_edge.config import GenerationConfig\n"
    "from rec_edge.bench.worker import peak_rss_bytes\n"
    "g = Generator.load(sys.argv[1])\ng.generate(g.prompt('Hello.'), GenerationConfig(max_new_tokens=1))\n"
    "print(json.dumps({'seconds': time.perf_counter() - t,"
    " 'rss_bytes': peak_rss_bytes()}))"
)


def cold_start(bundle: Path, runs: int = 3) -> dict:
    """A fresh process: import, load the bundle, write one token; its time and peak RSS."""
    import subprocess
    import sys

    rows = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", COLD, str(bundle)], capture_output=True, text=True, check=True
        )
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append({**row, "process_seconds": time.perf_counter() - started})
    print(bundle.name, "cold start", rows, flush=True)
    return {
        "process_seconds_p50": statistics.median(r["process_seconds"] for r in rows),
        "in_process_seconds_p50": statistics.median(r["seconds"] for r in rows),
        "peak_rss_bytes": max(r["rss_bytes"] for r in rows),
    }


def _timing(started: float, stamps: list[float], prompt_tokens: int) -> dict:
    if not stamps:
        return {"ttft_s": 0.0, "decode_tokens_per_s": None, "tokens": 0, "prompt_tokens": 0}
    decode = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else None
    return {
        "ttft_s": stamps[0] - started,
        "decode_tokens_per_s": decode,
        "tokens": len(stamps),
        "prompt_tokens": prompt_tokens,
    }


def streams(bundle: Path, counts: list[int], rounds: int, threads: int) -> dict:
    """Several requests writing at once through one Generator (as ``rec-edge serve`` runs
    them: a thread each, one onnxruntime session): for each number of streams, ``rounds``
    waves of that many requests (the probe prompts in turn, 64 new tokens each), the tokens
    all of them wrote over the wave's wall time, and each request's own figures; each wave
    three times in turn: the answers decoded together (``runtime.batching``, the default:
    prompts first), together with prompts and steps taking turns, and each alone
    (``Generator.batching = False``: its own cache, concurrent session runs)."""
    from concurrent.futures import ThreadPoolExecutor

    generator = Generator.load(bundle, threads=threads)
    generator.spec = dataclasses.replace(generator.spec, stop_token_ids=())
    config = GenerationConfig(max_new_tokens=NEW_TOKENS)
    generator.generate(generator.prompt("warm up"), GenerationConfig(max_new_tokens=4))

    def one(text: str) -> dict:
        prompt = generator.prompt(text)
        stamps: list[float] = []
        started = time.perf_counter()
        for _ in generator.tokens(prompt, config):
            stamps.append(time.perf_counter())
        return {**_timing(started, stamps, len(generator.encode(prompt))), "end": stamps[-1]}

    result: dict = {}
    prompts = list(PROBE_PROMPTS)
    # batched (prompts first: the default), batched with prompts and steps taking turns, alone
    modes = {"batched": (True, True), "batched-turns": (True, False), "alone": (False, True)}
    assert generator._batcher is not None
    for count in counts:
        waves: dict[str, list] = {mode: [] for mode in modes}
        with ThreadPoolExecutor(count) as pool:
            for r in range(rounds):
                texts = [prompts[(r * count + i) % len(prompts)] for i in range(count)]
                for mode, (batching, prompts_first) in modes.items():
                    generator.batching = batching
                    generator._batcher.prompts_first = prompts_first
                    before = generator.decode_stats
                    started = time.perf_counter()
                    rows = list(pool.map(one, texts))
                    wall = max(row["end"] for row in rows) - started
                    tokens = sum(row["tokens"] for row in rows)
                    after = generator.decode_stats  # batched steps, and the answers they carried
                    steps = after["steps"] - before["steps"]
                    answers = after["rows"] - before["rows"]
                    waves[mode].append(
                        {
                            "wall_s": wall,
                            "tokens": tokens,
                            "rows": rows,
                            "steps": steps,
                            "step_answers": answers,
                        }
                    )
        result[str(count)] = {mode: _streams_summary(w) for mode, w in waves.items()}
        for mode in modes:
            summary = {k: v for k, v in result[str(count)][mode].items() if k != "waves"}
            print(f"{count} streams {mode}", json.dumps(summary), flush=True)
    return result


def _streams_summary(waves: list[dict]) -> dict:
    per_request = [row["decode_tokens_per_s"] for w in waves for row in w["rows"]]
    ttft = sorted(row["ttft_s"] for w in waves for row in w["rows"])
    return {
        "aggregate_tokens_per_s_p50": round(
            statistics.median(w["tokens"] / w["wall_s"] for w in waves), 1
        ),
        "per_request_decode_tokens_per_s_p50": round(statistics.median(per_request), 1),
        "ttft_ms_p50": round(1000 * statistics.median(ttft), 1),
        "ttft_ms_p99": round(1000 * ttft[int(0.99 * (len(ttft) - 1))], 1),
        "answers_per_step": round(
            sum(w["step_answers"] for w in waves) / max(1, sum(w["steps"] for w in waves)), 2
        ),
        "waves": waves,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--out", default="benchmarks/results/decoder")
    parser.add_argument("--work", default="runs/decoder-bench")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--part", choices=["weights", "speed", "streams", "all"], default="all")
    parser.add_argument("--streams", default="1,2,4,8", help="--part streams: concurrent requests")
    parser.add_argument(
        "--engines", default="", help="--part speed: these engines alone (comma-separated names)"
    )
    parser.add_argument("--tag", default="", help="a suffix of the result file's name")
    args = parser.parse_args()
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    fp32 = work / "fp32"
    if not fp32.is_dir():  # the fused graph (convert.llama_graph) where the builder knows the model
        export_decoder(DecoderExportConfig(model=args.model, out=str(fp32), weights="fp32"))
    optimum = work / "optimum-int4-b32-asym"  # optimum's graph of the same weights, int4
    if not optimum.is_dir():
        config = DecoderExportConfig(
            model=args.model, out=str(work / "optimum-fp32"), weights="fp32", graph="optimum"
        )
        export_decoder(config)
        _quantize(work / "optimum-fp32", optimum, 4, 32, False)
    if args.part in ("speed", "streams"):  # the bundles the speed rows read, without the table
        for bits, symmetric in ((4, False), (8, True)):
            folder = work / f"int{bits}-b32-{'sym' if symmetric else 'asym'}"
            if not folder.is_dir():
                _quantize(fp32, folder, bits, 32, symmetric)
    meta = {"model": args.model, "machine": machine(), "versions": versions()}
    if args.part in ("weights", "all"):
        rows = weights(fp32, work)
        (out / "weights.json").write_text(json.dumps({**meta, "rows": rows}, indent=2))
    if args.part in ("speed", "all"):
        bundles = {"rec-edge-fp32": fp32}
        for name in ("int4-b32-asym", "int8-b32-sym", "optimum-int4-b32-asym"):
            if (work / name).is_dir():
                bundles[f"rec-edge-{name}"] = work / name
        hf = _hf_folder(args.model, work)
        only = {e for e in args.engines.split(",") if e} or None
        result = speed(bundles, hf, args.rounds, args.threads, work, only)
        result["cold_start"] = {
            name: cold_start(path) for name, path in bundles.items() if not only or name in only
        }
        (out / f"speed{args.tag}.json").write_text(json.dumps({**meta, **result}, indent=2))
    if args.part in ("streams", "all") and (work / "int4-b32-asym").is_dir():
        counts = [int(n) for n in args.streams.split(",")]
        result = streams(work / "int4-b32-asym", counts, args.rounds * 3, args.threads)
        (out / "streams.json").write_text(json.dumps({**meta, "streams": result}, indent=2))


def _hf_folder(model: str, work: Path) -> Path:
    """The same fp32 weights as a transformers folder (for the PyTorch peer)."""
    folder = work / "hf"
    if not folder.is_dir():
        from rec_edge.convert.causal import load_causal_lm
        from rec_edge.models import resolve_model

        loaded, tokenizer = load_causal_lm(resolve_model(model))
        loaded.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return folder


if __name__ == "__main__":
    main()
