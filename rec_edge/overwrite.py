"""TORCH-FREE: what ``--force`` may delete: only a folder that rec-edge wrote, never one that holds
an input of the command, the working folder or one of its parents.

A folder rec-edge writes carries a marker file (``MARKERS``); an empty folder may go too.
Anything else is refused with a message that says what is there, so that ``--out`` pointed at
the wrong place by mistake loses nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rec_edge.errors import OutputExistsError

MARKERS = {
    "_job.json": "a scoring job's output",
    "rec_edge.json": "a bundle",
    "run.json": "a training run",
}


def check_replaceable(
    folder: Path, marker: str | None, inputs: Sequence[str | Path] = (), option: str = "--out"
) -> None:
    """Raise OutputExistsError unless ``--force`` may remove ``folder``: it is missing, empty,
    or holds ``marker`` (None: a folder whose own name says rec-edge made it, such as an
    interrupted run's ``NAME.partial``), and it holds none of ``inputs``, nor the working folder."""
    if not folder.exists() and not folder.is_symlink():
        return
    if not folder.is_dir() or folder.is_symlink():
        raise OutputExistsError(
            f"{folder} is {'a link' if folder.is_symlink() else 'a file'}, not a folder rec-edge "
            f"wrote: --force does not remove it. Choose another {option}."
        )
    resolved = folder.resolve()
    for path in inputs:
        source = Path(path).resolve()
        if source == resolved or resolved in source.parents:
            raise OutputExistsError(
                f"--force would delete {path}, an input of this command, inside {folder}. "
                f"Choose another {option}."
            )
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise OutputExistsError(
            f"--force would delete {folder}, the working folder or one of its parents. Choose "
            f"another {option}."
        )
    entries = sorted(p.name for p in folder.iterdir())
    if marker is not None and entries and not (folder / marker).is_file():
        shown = ", ".join(entries[:5]) + (
            f" and {len(entries) - 5} more" if len(entries) > 5 else ""
        )
        raise OutputExistsError(
            f"{folder} holds {shown} but no {marker}: it is not {MARKERS[marker]} rec-edge wrote, "
            f"and --force replaces only those. Choose another {option}, or empty it yourself."
        )
