"""The generated model card (README.md) of a bundle."""

from __future__ import annotations

from rec_edge.bundle import Manifest
from rec_edge.tasks import task_spec


def model_card(m: Manifest) -> str:
    fp32, chosen = m.metrics["fp32"], m.metrics["chosen"]
    metric = fp32.get("metric", "accuracy")
    usage = task_spec(m.task).usage
    collab = m.source.get("collaborative")
    tables = (
        f"\n- Collaborative tables (dim {collab['config']['dim']}, fitted on {collab['rows']} rows "
        f"with the encoder frozen): validation AUC {collab['validation_auc']:.4f}, text alone "
        f"{collab['validation_auc_text_only']:.4f}; `rank` orders by P(watches) x P(enjoys)"
        if collab
        else ""
    )
    rows = "\n".join(
        f"| {r['recipe']} | {r[r['metric']]:.4f} | {r['drop_points']:+.2f} "
        f"| {r.get('allowed_drop', float('nan')):.2f} "
        f"| {r.get('fp32_shift', float('nan')):.3f} | {r.get('fp32_label_changes', '-')} "
        f"| {r.get('batch_variance', float('nan')):.1e} "
        f"| {r['ms_per_item']:.2f} | {r['size_mb']:.1f} | {'yes' if r['passed'] else 'no'} |"
        for r in m.metrics["gate"]
    )
    head = m.source.get("head", {})
    added = m.source.get("added_labels") or {}
    described = (
        f"\n- Head: each text's mean-pooled embedding scored against each label's description "
        f"(scale {head.get('scale')}); {len(added)} label(s) added at export without training"
        + (": " + ", ".join(f"`{k}` ({v!r})" for k, v in added.items()) if added else "")
        if head.get("kind") == "descriptions"
        else ""
    )
    invariance = (
        "scores do not depend on batching (measured: largest probability change "
        f"{m.recipe['batch_variance']:.1e} between batch 1, 32 and a mix)"
        if m.recipe.get("batch_invariant")
        else "**scores depend on what a text is batched with** (exported with --allow-batch-variance)"
    )
    return f"""# {m.source.get("run_name", "bundle")}: a rec-edge bundle

Task `{m.task}` with {len(m.labels)} labels, from `{m.source.get("model")}` (`{m.source.get("model_type")}`),
exported {m.created} with rec-edge {m.versions.get("rec-edge", "?")}.

- Recipe: **{m.recipe["name"]}** ({m.recipe["kind"]}, per-channel {m.recipe["per_channel"]},
  reduce_range {m.recipe["reduce_range"]}, {len(m.recipe["exclude"])} nodes left in fp32); optimize `{m.recipe["optimize"]}`;
  {invariance}
- {metric} on {m.metrics["eval_n"]} examples of {m.metrics["eval_source"]}: fp32 {fp32[metric]:.4f},
  this bundle {chosen[metric]:.4f} (drop {chosen["drop_points"]:+.2f} points)
- Size: {chosen["size_mb"]:.1f} MB (fp32 {fp32["size_mb"]:.1f} MB)
- Parity of the fp32 graph with PyTorch: max |diff| {m.parity["max_abs_diff"]:.2e} on {m.parity["n"]} texts
- Inference template: `{m.templates["templates"][0]!r}`, max length {m.max_length} tokens{described}{tables}

## Recipes tried

| recipe | {metric} | drop (pts) | allowed (pts) | shift from fp32 | labels changed | batch variance | ms/item | MB | passed |
|---|---|---|---|---|---|---|---|---|---|
{rows}

Chosen by: {m.recipe.get("choice_rule", "the fastest passing recipe (before rec-edge 0.2)")}.
Latency here is the gate's quick measure on the export machine; use `rec-edge bench` for figures.

```python
from rec_edge import Predictor
from rec_edge.tasks import task_spec
predictor = Predictor.load("path/to/this/folder")
{usage}
```
"""
