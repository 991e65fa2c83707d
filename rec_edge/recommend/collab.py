"""TORCH: the rank run's collaborative stage: with the trained text model frozen (an encoder's
pair score, or a decoder's log-odds of "Yes"), fit per-item tables on the run's own training
rows (formulas in ``rec_edge.recommend.tables``).

A title says little about who watches a film and whether they like it; the run's interactions
say both. The encoder's outputs for every training row and catalog title are computed once, then
the tables are fitted in seconds: the like head on (user, item, liked?) rows, the exposure head
on (user, rated item) against never-rated items drawn per batch. Epochs stop early on the
validation AUC of the like head. ``collab.npz`` in the run folder holds them; export copies them
into the bundle's item index.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rec_edge.bundle import sha256_file
from rec_edge.errors import ConfigError, RunError
from rec_edge.recommend.interactions import InteractionData
from rec_edge.recommend.protocols import PointwiseExample
from rec_edge.recommend.tables import TABLES, CollaborativeTables
from rec_edge.runtime.ranker import pair_scores
from rec_edge.tasks import task_spec
from rec_edge.train.runs import RunRecord, load_run

COLLAB_FILE = "collab.npz"
TEXT_CACHE = "collab_text.npz"  # the frozen encoder's scores of the rows the tables fit on
STAGE_METRICS = ("validation_auc", "validation_auc_text_only", "best_epoch")  # a run's summary


@dataclass(frozen=True)
class CollabConfig:
    # defaults chosen on MovieLens-100K validation rows that did not choose the epoch
    # (benchmarks/RESULTS.md): dim 16 to 64, l2 1e-3 to 1e-2, rate 1e-3 to 3e-3 all within 0.01 AUC
    dim: int = 16
    learning_rate: float = 3e-3
    l2: float = 1e-2  # on the vectors a batch touches, per row
    batch_size: int = 256
    negatives: int = 64  # never-rated items drawn per batch, shared by its users
    epochs: int = 8
    patience: int = 1  # epochs without a better validation AUC before stopping
    validation_limit: int | None = 3000  # validation rows that choose the epoch (seeded sample)
    seed: int = 0
    # how the frozen encoder's scores are computed: int8 (an onnxruntime session of the model,
    # convert.bulk: several times faster) | torch (PyTorch fp32)
    engine: str = "int8"
    # combine text, tables and counts by weights fitted on the validation rows (recommend.stack);
    # False keeps like = text + the tables' terms
    stack: bool = True

    def __post_init__(self) -> None:
        if self.engine not in ("int8", "torch"):
            raise ConfigError(f"CollabConfig.engine={self.engine!r} (allowed: int8, torch)")


def text_scores(
    run_dir: Path,
    run: RunRecord,
    rows: list[PointwiseExample],
    titles: list[str],
    cache: str = TEXT_CACHE,
    engine: str = "int8",
) -> np.ndarray:
    """The frozen encoder's pair logits of each row's (user text, candidate), encoded once by
    ``engine`` (see CollabConfig): kept in ``run_dir / cache`` under a key of the texts, the
    engine and the model's weights, so refitting the tables with other settings costs seconds."""
    from rec_edge.data.templates import TemplateSet

    render = TemplateSet.from_dict(run.templates).preference_renderer()
    users = [render(r.preference.liked, r.preference.disliked) for r in rows]
    candidates = [r.candidate for r in rows]
    key = hashlib.sha256()
    for part in (*users, "\0", *candidates, "\0", str(run.max_length), engine, "rows"):
        key.update(part.encode("utf-8") + b"\n")
    for path in sorted((run_dir / "model").glob("*.safetensors")):
        key.update(sha256_file(path).encode())
    path = run_dir / cache
    if path.is_file():
        with np.load(path, allow_pickle=False) as kept:
            if str(kept["key"]) == key.hexdigest():
                return np.asarray(kept["scores"])
    texts, model = users + titles, run_dir / "model"
    if engine == "int8":
        from rec_edge.convert.bulk import int8_session_logits

        encoded = int8_session_logits(model, texts, run.max_length, batch_size=32)
    else:
        from rec_edge.convert.onnx_export import torch_logits

        encoded = torch_logits(model, texts, run.max_length, batch_size=64)
    user_rows, item_rows = encoded[: len(users)], encoded[len(users) :]
    index = {t: i for i, t in enumerate(titles)}
    scores = pair_scores(user_rows, item_rows[[index[c] for c in candidates]])
    np.savez(path, key=np.array(key.hexdigest()), scores=scores, item_rows=item_rows)
    return np.asarray(scores)


def cached_item_rows(run_dir: Path, cache: str = TEXT_CACHE) -> np.ndarray:
    """The catalog titles' output rows that the last ``text_scores`` call encoded (sorted titles)."""
    with np.load(run_dir / cache, allow_pickle=False) as kept:
        return np.asarray(kept["item_rows"])


def collab_module(n_items: int, dim: int) -> Any:
    """The tables as a torch module, row ``n_items`` a zero pad; the runtime's formulas."""
    import torch
    from torch import nn

    class Tables(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.like_bias = nn.Parameter(torch.zeros(n_items + 1))
            self.exposure_bias = nn.Parameter(torch.zeros(n_items + 1))
            self.like_vectors = nn.Parameter(torch.randn(n_items + 1, dim) * 0.01)
            self.liked_vectors = nn.Parameter(torch.randn(n_items + 1, dim) * 0.01)
            self.disliked_vectors = nn.Parameter(torch.randn(n_items + 1, dim) * 0.01)
            self.exposure_vectors = nn.Parameter(torch.randn(n_items + 1, dim) * 0.01)
            self.share_weight = nn.Parameter(torch.zeros(()))

        def user(self, liked: Any, disliked: Any) -> tuple[Any, Any]:
            """``liked``, ``disliked``: [B, L] catalog rows, ``n_items`` where empty."""
            q, counts = 0, []
            for rows, table in ((liked, self.liked_vectors), (disliked, self.disliked_vectors)):
                mask = (rows < n_items).float()
                count = mask.sum(1, keepdim=True)
                q = q + (table[rows] * mask[..., None]).sum(1) / count.clamp(min=1).sqrt()
                counts.append(count.squeeze(1))
            share = counts[0] / (counts[0] + counts[1]).clamp(min=1)
            return q, self.share_weight * share

        def like(self, q: Any, offset: Any, items: Any) -> Any:
            """[B] items: one per user; [K] items with ``cross``: every user against all."""
            return (q * self.like_vectors[items]).sum(-1) + self.like_bias[items] + offset

        def exposure(self, q: Any, items: Any, cross: bool = False) -> Any:
            if cross:
                return q @ self.exposure_vectors[items].T + self.exposure_bias[items][None, :]
            return (q * self.exposure_vectors[items]).sum(-1) + self.exposure_bias[items]

        def tables(self, titles: list[str]) -> CollaborativeTables:
            arrays = {k: getattr(self, k).detach()[:n_items].numpy().copy() for k in TABLES}
            return CollaborativeTables(
                {t: i for i, t in enumerate(titles)},
                **arrays,
                share_weight=float(self.share_weight.detach()),
            )

    return Tables()


def _history_rows(rows: list[Any], index: dict[str, int], history: int) -> tuple[Any, Any]:
    import torch

    pad = len(index)
    out = []
    for side in ("liked", "disliked"):
        table = np.full((len(rows), history), pad, dtype=np.int64)
        for r, row in enumerate(rows):
            titles = getattr(row.preference, side)[-history:]
            table[r, : len(titles)] = [index[t] for t in titles]
        out.append(torch.from_numpy(table))
    return out[0], out[1]


def choosing_rows(
    validation: list[PointwiseExample], config: CollabConfig, run_limit: int | None = None
) -> list[PointwiseExample]:
    """The validation rows that choose the epoch and fit the stack: ``validation_limit`` of them,
    seeded, and no more than the run itself validated on (``run_limit``: a few-shot run's
    ``--validation-limit`` holds for its tables too)."""
    limits = [n for n in (config.validation_limit, run_limit) if n]
    if limits and len(validation) > min(limits):
        return random.Random(config.seed).sample(validation, min(limits))
    return validation


def fit_collaborative(run_dir: str | Path, config: CollabConfig = CollabConfig()) -> dict[str, Any]:
    """Fit the tables of the rank run in ``run_dir`` (its ``model`` frozen) and write
    ``collab.npz``; returns the stage's record, also kept in run.json under "collaborative"."""
    from rec_edge.data.tasks import rank_rows

    run_dir = Path(run_dir)
    run = load_run(run_dir)
    if not task_spec(run.task).ranks or not (run_dir / "model" / "config.json").is_file():
        raise RunError(
            f"{run_dir} is not a finished rank run with a merged model (model/config.json): "
            "collaborative tables fit on a rank run's model (rec-edge train --task rank)."
        )
    train_config = run.train_config()
    data, splits = rank_rows(train_config)
    train = splits["train"]
    validation = choosing_rows(splits["validation"], config, train_config.validation_limit)
    titles = sorted(set(data.titles.values()))  # the bundle's item index is keyed by title
    started = time.perf_counter()
    item_rows: dict[str, np.ndarray] | None = None
    if run.family == "decoder":  # its answer's log-odds; no item space (similarity parts 0)
        from rec_edge.train.decoder import rank_text_scores

        text, scorer = rank_text_scores(run_dir, train + validation), "torch"
    else:
        text = text_scores(run_dir, run, train + validation, titles, engine=config.engine)
        item_rows, scorer = dict(zip(titles, cached_item_rows(run_dir), strict=True)), config.engine
    encode_seconds = time.perf_counter() - started
    tables, record = fit_tables(
        data,
        train,
        validation,
        text[: len(train)],
        text[len(train) :],
        train_config.history,
        config,
    )
    if config.stack:
        from rec_edge.recommend.protocols import ranking_targets, unrated_sampler
        from rec_edge.recommend.stack import fit_stack

        held_out = ranking_targets(data, train_config.history)
        draw = unrated_sampler(data, config.seed, held_out)
        tables, record["stack"] = fit_stack(
            tables, train, validation, text[len(train) :], draw, data.titles, item_rows, config.seed
        )
    arrays = {"titles": np.array(titles), **tables.to_arrays()}
    np.savez(run_dir / COLLAB_FILE, **arrays)  # type: ignore[arg-type]
    record.update(
        encoder=scorer,
        encode_seconds=round(encode_seconds, 1),
        fit_seconds=round(time.perf_counter() - started - encode_seconds, 1),
    )
    run.collaborative = record
    run.save(run_dir)
    return record


def fit_tables(
    data: InteractionData,
    train: list[PointwiseExample],
    validation: list[PointwiseExample],
    text_train: np.ndarray,
    text_validation: np.ndarray,
    history: int,
    config: CollabConfig = CollabConfig(),
) -> tuple[CollaborativeTables, dict[str, Any]]:
    """The tables over the catalog of ``data`` (keyed by title), given the frozen text logits of
    each training and validation row; the best epoch by validation AUC of the like logits."""
    import torch

    from rec_edge.metrics import roc_auc

    titles = sorted(set(data.titles.values()))
    index = {t: i for i, t in enumerate(titles)}
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    module = collab_module(len(titles), config.dim)
    optimizer = torch.optim.Adam(module.parameters(), lr=config.learning_rate)
    liked, disliked, target, label = _tensors(train, index, history)
    base = torch.from_numpy(np.asarray(text_train, dtype=np.float32))
    unrated = _unrated(data, train, titles, history)
    owners = [r.preference.user for r in train]
    v_liked, v_disliked, v_target, _ = _tensors(validation, index, history)
    v_labels = [int(r.label == "yes") for r in validation]
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def validation_auc() -> float:
        with torch.no_grad():
            q, offset = module.user(v_liked, v_disliked)
            like = module.like(q, offset, v_target).numpy()
            return roc_auc(v_labels, (text_validation + like).tolist())

    best: tuple[float, dict[str, Any], int] = (validation_auc(), _snapshot(module), 0)
    epochs: list[dict[str, float]] = []
    for epoch in range(1, config.epochs + 1):
        total = 0.0
        order = torch.from_numpy(rng.permutation(len(train)))
        for start in range(0, len(train), config.batch_size):
            b = order[start : start + config.batch_size]
            q, offset = module.user(liked[b], disliked[b])
            # like: (user, item, liked?) as trained; exposure: the rated item against
            # never-rated ones drawn for the batch, masked where the user rated one
            loss = bce(base[b] + module.like(q, offset, target[b]), label[b])
            loss = loss + bce(module.exposure(q, target[b]), torch.ones(len(b)))
            negatives = torch.from_numpy(rng.integers(0, len(titles), config.negatives))
            mask = torch.stack([unrated[owners[i]][negatives] for i in b.tolist()]).float()
            negative = bce(
                module.exposure(q, negatives, cross=True),
                torch.zeros(len(b), config.negatives),
                reduction="none",
            )
            loss = loss + ((negative * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()
            touched = module.like_vectors[target[b]].pow(2).sum() + q.pow(2).sum()
            loss = loss + config.l2 * touched / len(b)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(b)
        auc = validation_auc()
        epochs.append({"epoch": epoch, "loss": total / len(train), "validation_auc": auc})
        if auc > best[0]:
            best = (auc, _snapshot(module), epoch)
        elif epoch - best[2] >= config.patience:
            break
    module.load_state_dict(best[1])
    record = {
        "config": asdict(config),
        "rows": len(train),
        "catalog": len(titles),
        "epochs": epochs,
        "best_epoch": best[2],
        "validation_auc": best[0],
        "validation_auc_text_only": roc_auc(v_labels, np.asarray(text_validation).tolist()),
    }
    return module.tables(titles), record


def _tensors(rows: list[PointwiseExample], index: dict[str, int], history: int) -> tuple[Any, ...]:
    """The rows' liked and disliked history rows, candidates (catalog positions) and labels."""
    import torch

    liked, disliked = _history_rows(rows, index, history)
    target = torch.tensor([index[r.candidate] for r in rows])
    label = torch.tensor([float(r.label == "yes") for r in rows])
    return liked, disliked, target, label


def _unrated(
    data: InteractionData, train: list[PointwiseExample], titles: list[str], history: int
) -> dict[str, Any]:
    """user -> [catalog] True where the user rated no item of that title (a training target
    may be a negative, so the ranking targets count as rated)."""
    import torch

    from rec_edge.recommend.protocols import ranking_targets, rated_items

    rated = rated_items(data, ranking_targets(data, history))
    unrated = {}
    for user in {r.preference.user for r in train}:
        seen = {data.titles[item] for item in rated.get(user, set())}
        unrated[user] = torch.tensor([t not in seen for t in titles])
    return unrated


def _snapshot(module: Any) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
