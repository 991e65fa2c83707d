#!/usr/bin/env bash
# Serving load test (make bench-serve): rec-edge serve vs a hand-written FastAPI server vs LitServe,
# Locust as the client, loopback only, bounded in requests and time. Needs the BANKING77 int8
# bundle (BUNDLE, default exports/banking77-invariance-auto1 from make bench-invariance) and the
# MovieLens bundle (RANK_BUNDLE, default exports/ml100k-demo from make demo).
# The peers and Locust run in .venv-serve (pinned by benchmarks/serve-constraints.txt), never in .venv.
# Extra arguments go to benchmarks/serve_load.py (e.g. --kinds predict --rounds 1).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-serve
if [ ! -f "$venv/.installed-stamp" ] || [ benchmarks/serve-constraints.txt -nt "$venv/.installed-stamp" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --disable-pip-version-check -q -c benchmarks/serve-constraints.txt \
    -e '.[serve]' fastapi litserve locust httpx matplotlib
  touch "$venv/.installed-stamp"
fi
"$venv/bin/python" benchmarks/serve_load.py \
  --predict-bundle "${BUNDLE:-exports/banking77-invariance-auto1}" \
  --rank-bundle "${RANK_BUNDLE:-exports/ml100k-demo}" "$@"
"$venv/bin/python" benchmarks/serve_report.py benchmarks/results/serve
