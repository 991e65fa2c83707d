"""Cold start: a fresh interpreter per run that imports, loads and predicts once."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_PRELUDE = "import time, json\nt0 = time.perf_counter()\n"
_EPILOGUE = (  # the peak RSS as bench.worker reads it (not ru_maxrss: the parent's, on Linux)
    "\nfrom rec_edge.bench.worker import peak_rss_bytes\n"
    "print(json.dumps({'in_process': time.perf_counter() - t0, 'rss': peak_rss_bytes()}))\n"
)
SCRIPTS = {
    "onnx": "from rec_edge import Predictor\np = Predictor.load(BUNDLE)\np.predict([TEXT])",
    "onnx-rank": (
        "from rec_edge import Predictor\nfrom rec_edge.runtime.requests import parse_rank_request\n"
        "p = Predictor.load(BUNDLE)\nr = parse_rank_request(TEXT)\np.rank(r.history, r.candidates)"
    ),
    "ort-raw": (
        "import onnxruntime as ort, numpy as np\nfrom tokenizers import Tokenizer\n"
        "tok = Tokenizer.from_file(BUNDLE + '/tokenizer.json')\n"
        "s = ort.InferenceSession(BUNDLE + '/model.onnx', providers=['CPUExecutionProvider'])\n"
        "e = tok.encode(TEXT)\nfeed = {'input_ids': np.array([e.ids]), 'attention_mask': np.array([e.attention_mask]),"
        " 'token_type_ids': np.array([e.type_ids])}\n"
        "s.run(None, {i.name: feed[i.name] for i in s.get_inputs()})"
    ),
    "torch": (
        "import torch\nfrom transformers import AutoModelForSequenceClassification, AutoTokenizer\n"
        "tok = AutoTokenizer.from_pretrained(MODEL_DIR)\n"
        "m = AutoModelForSequenceClassification.from_pretrained(MODEL_DIR).eval()\n"
        "with torch.inference_mode():\n    m(**tok([TEXT], return_tensors='pt')).logits.argmax(-1)"
    ),
    "optimum": (
        "from optimum.onnxruntime import ORTModelForSequenceClassification\n"
        "from transformers import AutoTokenizer, pipeline\n"
        "m = ORTModelForSequenceClassification.from_pretrained(OPTIMUM_DIR, file_name='model.onnx')\n"
        "pipeline('text-classification', model=m, tokenizer=AutoTokenizer.from_pretrained(OPTIMUM_DIR))([TEXT])"
    ),
}
# the other engines (the peers): their bench class, loaded and asked once, as the bench runs it
ENGINE_SCRIPT = (
    "import os\nfrom pathlib import Path\nfrom rec_edge.bench.engines import ENGINES\n"
    "e = ENGINES[KIND](Path(BUNDLE), len(os.sched_getaffinity(0)))\ne.predict([TEXT])\n"
    "getattr(e, 'close', lambda: None)()"
)


def cold_start(
    kind: str,
    bundle: Path,
    text: str,
    runs: int,
    model_dir: Path | None = None,
    optimum_dir: Path | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Median whole-process wall time (interpreter start included) and in-process time, peak RSS."""
    names = (
        f"BUNDLE = {str(bundle)!r}\nTEXT = {text!r}\nMODEL_DIR = {str(model_dir)!r}\n"
        f"OPTIMUM_DIR = {str(optimum_dir)!r}\nKIND = {kind!r}\n"
    )
    code = names + _PRELUDE + SCRIPTS.get(kind, ENGINE_SCRIPT) + _EPILOGUE
    walls, inner, rss = [], [], []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
        )
        walls.append(time.perf_counter() - start)
        if done.returncode != 0:
            return {
                "error": done.stderr.strip().splitlines()[-1]
                if done.stderr.strip()
                else f"exit {done.returncode}"
            }
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        inner.append(figures["in_process"])
        rss.append(figures["rss"])
    return {
        "runs": runs,
        "process_seconds_p50": statistics.median(walls),
        "process_seconds": walls,
        "in_process_seconds_p50": statistics.median(inner),
        "peak_rss_bytes": max(rss),
    }
