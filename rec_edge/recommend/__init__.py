"""Recommendation as instruction following (TALLRec, InstructRec): every piece of the rank task in
one package, each module on its side (``import-linter`` keeps each in its layer).

Torch-free:

- ``interactions``: user-item ratings (MovieLens-100K, or JSONL) and each item's fields;
- ``protocols``: the TALLRec pointwise questions and the InstructRec ranking lists, split by time;
- ``baselines``: random, most popular, item-kNN and ALS (``implicit``) for the same evaluation;
- ``tables``: a rank bundle's collaborative tables and stack, as the runtime reads them (numpy).

Torch (the build side):

- ``pairs``: the two-tower scorer trained on the questions;
- ``collab``: the run's collaborative stage (tables fitted with the encoder frozen);
- ``stack``: the stack over the text score, the tables and the counts, fitted on validation rows;
- ``items``: a rank bundle's item index at export.

The task's runtime is ``rec_edge.runtime.ranker.Ranker`` (``GenerativeRanker`` for a language
model), its request ``rec_edge.runtime.requests.RankRequest``; serving and scoring reach it through
``SERVED_TASKS`` and ``SCORED_TASKS``.
"""
