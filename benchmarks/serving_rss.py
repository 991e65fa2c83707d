"""Peak RSS of a process that serves a bundle: load, then predict every text of a file, at
batch 1 and at batch 32, each in a fresh interpreter (runtime only: no torch is imported).

    python benchmarks/serving_rss.py exports/banking77 ../shared/data/banking77/test.csv
"""

import json
import subprocess
import sys

CHILD = """
import csv, json, resource, sys
from rec_edge import Predictor
bundle, path, batch, arena = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
predictor = Predictor.load(bundle, enable_mem_arena=arena)
loaded = rss()
with open(path, encoding="utf-8", newline="") as f:
    texts = [row["text"] for row in csv.DictReader(f)]
for start in range(0, len(texts), batch):
    predictor.predict(texts[start:start + batch], batch_size=batch)
print(json.dumps({"batch": batch, "arena": arena, "texts": len(texts), "loaded_mb": loaded / 1e6,
                  "peak_mb": rss() / 1e6, "torch_imported": "torch" in sys.modules}))
"""


def main(bundle: str, path: str) -> None:
    for batch in (1, 32):
        for arena in ("1", "0"):
            done = subprocess.run([sys.executable, "-c", CHILD, bundle, path, str(batch), arena],
                                  capture_output=True, text=True, check=True)
            print(json.loads(done.stdout))


if __name__ == "__main__":
    main(*sys.argv[1:3])
