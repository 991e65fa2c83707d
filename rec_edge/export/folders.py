"""TORCH-FREE: the output folder of an export: written in a staging folder beside it and renamed
into place when complete; never replaced without --force; what a killed export left is removed."""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rec_edge.bundle import MANIFEST_FILE
from rec_edge.errors import OutputExistsError
from rec_edge.overwrite import check_replaceable


def scratch_folders(out: Path) -> tuple[Path, Path]:
    """The work folder (in the temp dir) and the staging folder (beside ``out``, renamed into
    place when complete). Both names carry this process's id, so that the next export removes
    what a killed one (kill -9: no finally runs) left behind."""
    pid = os.getpid()
    _remove_orphans(Path(tempfile.gettempdir()), "rec-edge-export-")
    _remove_orphans(out.parent, f".{out.name}.")
    work = Path(tempfile.mkdtemp(prefix=f"rec-edge-export-{pid}-"))
    staging = Path(
        tempfile.mkdtemp(prefix=f".{out.name}.{pid}-", suffix=".partial", dir=out.parent)
    )
    return work, staging


def _remove_orphans(folder: Path, prefix: str) -> None:
    for path in folder.glob(f"{glob.escape(prefix)}*"):
        pid = path.name.removeprefix(prefix).split("-")[0]
        if path.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def check_target(out: Path, force: bool, inputs: Sequence[str | Path] = ()) -> None:
    """``out`` may be written: it does not exist, or ``force`` and it is a bundle (or empty) that
    holds none of ``inputs`` (``overwrite.check_replaceable``)."""
    if out.exists() and not force:
        raise OutputExistsError(
            f"{out} exists. Pass --force to replace it, or choose another --out."
        )
    if force:
        check_replaceable(out, MANIFEST_FILE, inputs)


def replace_folder(staging: Path, out: Path) -> None:
    staging.chmod(0o755)  # mkdtemp made it private; a bundle is meant to be shared
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old)
    else:
        staging.rename(out)
