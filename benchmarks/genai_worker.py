"""onnxruntime-genai as a peer of benchmarks/decoder.py, in its own environment (.venv-genai, made
by benchmarks/genai.sh): the model its builder wrote, then one JSON request a line on stdin
({"ids": [...], "tokens": N}: the prompt's token ids from the bundle's tokenizer, because
onnxruntime-genai 0.18's tokenizer mis-reads this model's tokenizer.json, a new line becoming
-1), one JSON answer a line on stdout with the timings taken here (time to first token from the
call, then each token's time), greedy, no early stop.

    .venv-genai/bin/python benchmarks/genai_worker.py MODEL_DIR THREADS
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    import onnxruntime_genai as og

    folder, threads = Path(sys.argv[1]), int(sys.argv[2])
    config_file = folder / "genai_config.json"
    config = json.loads(config_file.read_text())
    options = config["model"]["decoder"].setdefault("session_options", {})
    options["intra_op_num_threads"] = threads
    config_file.write_text(json.dumps(config, indent=2))
    model = og.Model(str(folder))
    print(json.dumps({"ready": True, "model": str(folder)}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        ids, tokens = request["ids"], request["tokens"]
        params = og.GeneratorParams(model)
        length = len(ids) + tokens
        params.set_search_options(do_sample=False, max_length=length, min_length=length)
        generator = og.Generator(model, params)
        stamps = []
        started = time.perf_counter()
        generator.append_tokens(ids)
        while len(stamps) < tokens and not generator.is_done():
            generator.generate_next_token()
            stamps.append(time.perf_counter())
        answer = {"started": started, "stamps": stamps, "prompt_tokens": len(ids)}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
