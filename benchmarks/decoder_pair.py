"""Two decoder bundles side by side in one process, batch 1: 24 requests each (4 prompts, 64 greedy
tokens, 2 threads), the bundles alternated per request in rotated order; median decode tokens/s
and time to first token (ms). A quick check beside benchmarks/decoder.py (no peers).

    python benchmarks/decoder_pair.py WORK/int4-b32-asym WORK/int4-b32-sym
"""

import dataclasses
import statistics
import sys
import time

from rec_edge.config import GenerationConfig
from rec_edge.runtime.generator import Generator

names = sys.argv[1:]
gens = {}
for n in names:
    g = Generator.load(n, threads=2)
    g.spec = dataclasses.replace(g.spec, stop_token_ids=())
    g.generate(g.prompt("warm"), GenerationConfig(max_new_tokens=4))
    gens[n] = g
cfg = GenerationConfig(max_new_tokens=64)
texts = (
    "Write one sentence about the sea.",
    "Name three colors.",
    "What is the capital of France? Answer briefly.",
    "Explain what a cache is in one sentence.",
)
res = {n: ([], []) for n in names}
for i in range(24):
    order = names[i % len(names) :] + names[: i % len(names)]
    for n in order:
        g = gens[n]
        p = g.prompt(texts[i % 4])
        st = []
        t0 = time.perf_counter()
        for _ in g.tokens(p, cfg):
            st.append(time.perf_counter())
        res[n][0].append((len(st) - 1) / (st[-1] - st[0]))
        res[n][1].append(st[0] - t0)
for n, (r, t) in res.items():
    print(n, round(statistics.median(r), 1), round(1000 * statistics.median(t), 1))
