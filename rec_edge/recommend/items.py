"""TORCH side of recommendation at export: a rank bundle's item index (``items.npz``): the
output row of every title of the run's catalog, the run's collaborative tables, and the titles
that name an item whose text an item template rendered. Read by ``runtime.ranker``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rec_edge.errors import DataError, ExportError
from rec_edge.train.runs import RunRecord


def item_index(run: RunRecord, run_dir: Path, predictor: Any, folder: Path, log: Any) -> str | None:
    """Rank bundles: the vectors of every title in the run's catalog, so that serving never
    encodes a known item, and the run's collaborative tables if it has them (``collab.npz``, see
    recommend.collab); None (with a note) if the run's interactions cannot be read again."""
    import numpy as np

    from rec_edge.recommend.collab import COLLAB_FILE
    from rec_edge.recommend.interactions import read_interactions

    config = run.train_config()
    try:
        data = read_interactions(config.train_file, config.items_file, config.item_template)
    except DataError as error:
        log(f"note: no item index in the bundle: the run's interactions cannot be read ({error})")
        return None
    titles = sorted(set(data.titles.values()))
    vectors = predictor.logits(titles, batch_size=32).astype(np.float32)
    arrays: dict[str, Any] = {"titles": np.array(titles), "vectors": vectors}
    aliases = _aliases(data.names, data.titles)
    if aliases:  # an item template: requests may name catalog items by their titles
        arrays.update(
            alias_names=np.array(list(aliases)), alias_texts=np.array(list(aliases.values()))
        )
    collab = run_dir / COLLAB_FILE
    if collab.is_file():
        with np.load(collab, allow_pickle=False) as tables:
            if tables["titles"].tolist() != titles:
                raise ExportError(
                    f"{collab} was fitted on another catalog than {config.train_file}'s; "
                    "refit it: rec_edge.recommend.collab.fit_collaborative(run_dir)"
                )
            arrays.update((k, tables[k]) for k in tables.files if k != "titles")
        log(f"collaborative tables: {collab} (dim {arrays['like_vectors'].shape[1]})")
    np.savez(folder / "items.npz", **arrays)
    size = sum(a.nbytes for a in arrays.values()) / 1e6
    log(f"item index: {len(titles)} titles of the run's catalog ({size:.1f} MB)")
    return "items.npz"


def _aliases(names: dict[str, str], texts: dict[str, str]) -> dict[str, str]:
    """title -> the item's rendered text, for titles that name one item and are no item's text."""
    by_title: dict[str, set[str]] = {}
    for item, title in names.items():
        by_title.setdefault(title, set()).add(texts[item])
    rendered = set(texts.values())
    return {
        title: next(iter(found))
        for title, found in sorted(by_title.items())
        if len(found) == 1 and title not in rendered
    }
