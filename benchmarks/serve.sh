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
# PIN=SERVER_CPUS:CLIENT_CPUS (default 0:1 with 2 or more cores; PIN= to share every core);
# OUT=FOLDER for the results (default benchmarks/results/serve-pinned, or serve when not pinned)
cores=$(nproc)
pin=${PIN-$([ "$cores" -ge 2 ] && echo "0:$((cores - 1))" || true)}
out=${OUT:-benchmarks/results/serve${pin:+-pinned}}
bundle=${BUNDLE:-exports/banking77-invariance-auto1}
"$venv/bin/python" benchmarks/serve_load.py --predict-bundle "$bundle" \
  --rank-bundle "${RANK_BUNDLE:-exports/ml100k-demo}" ${pin:+--pin "$pin"} --out "$out" "$@"
"$venv/bin/python" benchmarks/serve_report.py "$out"
# how long a session run should be, on the server's CPUs with one thread
${pin:+taskset -c "${pin%%:*}"} "$venv/bin/python" benchmarks/serve_runs.py "$bundle" \
  "${BANKING77:-../shared/data/banking77}/test.csv" --threads 1 > "$out/session-runs.json"
