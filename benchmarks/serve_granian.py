"""The same app on uvicorn and on granian (the ASGI server choice of issue 16), interleaved, 2 rounds:
predict at 1 and 32 clients, and GET /healthz at 1 client (the HTTP floor). Access logs off on both.

    .venv-serve/bin/pip install -c constraints.txt granian==2.8.7
    .venv-serve/bin/python benchmarks/serve_granian.py > benchmarks/results/serve-granian/granian-vs-uvicorn.txt
"""

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import serve_load as sl  # noqa: E402

out = Path(tempfile.mkdtemp())
(out / "empty.json").write_text(json.dumps([{}] * 10))
bodies = sl.predict_bodies(Path("../shared/data/banking77/test.csv"), 3000, 0)
f = out / "bodies.json"
f.write_text(json.dumps(bodies))
bundle = "exports/banking77-invariance-auto1"
os.environ["REC_EDGE_SERVE_CONFIG"] = json.dumps({"bundles": {"m": bundle}, "access_log": False})
servers = [
    sl.Server(
        "uvicorn",
        [
            str(sl.BIN / "rec-edge"),
            "serve",
            "--bundle",
            "m={bundle}",
            "--port",
            "{port}",
            "--no-access-log",
        ],
        "/v1/models/m/predict",
    ),
    sl.Server(
        "granian",
        [
            str(sl.BIN / "granian"),
            "--interface",
            "asgi",
            "--factory",
            "rec_edge.serve.server:app_from_environment",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--loop",
            "uvloop",
            "--no-access-log",
        ],
        "/v1/models/m/predict",
    ),
]
for rnd in range(2):
    for server in servers if rnd == 0 else servers[::-1]:
        proc, url = sl.start(server, bundle, bodies[0], out / "granian.log")
        try:
            sl.locust(url, server.path, f, 8, 3)
            for c in (1, 32):
                r = sl.summarize(sl.locust(url, server.path, f, c, 10))
                print(rnd, server.name, c, r["ok_per_s"], r["p50_ms"], r["p99_ms"], flush=True)
            r = sl.summarize(sl.locust(url, "/healthz", out / "empty.json", 1, 5))
            print(rnd, server.name, "healthz c=1", r["p50_ms"], r["ok_per_s"], flush=True)
        finally:
            sl.stop(proc)
