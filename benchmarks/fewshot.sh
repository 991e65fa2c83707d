#!/usr/bin/env bash
# Few-shot and zero-shot (make bench-fewshot): rec-edge vs SetFit vs a logistic probe, on BBC News,
# BANKING77 (Casanueva et al. 2020, CC BY 4.0) and drug reviews (UCI Drug Review Dataset,
# Graesser et al. 2018, CC BY 4.0), K = 0, 8, 16, 64 per label, SEEDS seeds.
# The peers run in .venv-peers (pinned by benchmarks/peers-constraints.txt), never in .venv.
# Extra arguments go to benchmarks/fewshot.py (e.g. --datasets bbc --shots 8 --seeds 3).
set -euo pipefail
cd "$(dirname "$0")/.."
peers=.venv-peers
if [ ! -f "$peers/.installed-stamp" ] || [ benchmarks/peers-constraints.txt -nt "$peers/.installed-stamp" ]; then
  python3 -m venv "$peers"
  "$peers/bin/pip" install --disable-pip-version-check -q -c benchmarks/peers-constraints.txt \
    torch setfit sentence-transformers scikit-learn
  touch "$peers/.installed-stamp"
fi
python benchmarks/fewshot.py --seeds "${SEEDS:-5}" "$@"
