"""llama.cpp as a peer of benchmarks/decoder.py, in its own environment (.venv-llama, made by
benchmarks/llamacpp.sh): one GGUF loaded with llama-cpp-python, then one JSON request a line on
stdin ({"prompt": TEXT, "tokens": N}), one JSON answer a line on stdout with the timings taken
here (time to first token from the call, then each token's time), greedy, no early stop.

    .venv-llama/bin/python benchmarks/llamacpp_worker.py MODEL.gguf THREADS
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    from llama_cpp import Llama

    path, threads = sys.argv[1], int(sys.argv[2])
    llm = Llama(path, n_threads=threads, n_threads_batch=threads, n_ctx=1024, verbose=False)
    print(json.dumps({"ready": True, "model": path}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        # the prompt already holds the chat format and its special tokens: no second BOS
        ids = llm.tokenize(request["prompt"].encode(), add_bos=False, special=True)
        llm.reset()
        stamps = []
        started = time.perf_counter()
        for _ in llm.generate(ids, temp=0.0, top_k=1, reset=True):
            stamps.append(time.perf_counter())
            if len(stamps) == request["tokens"]:
                break
        print(json.dumps({"started": started, "stamps": stamps, "prompt_tokens": len(ids)}), flush=True)


if __name__ == "__main__":
    main()
