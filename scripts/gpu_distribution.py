"""Write the source of the `rec-edge-gpu` distribution: rec-edge itself, with onnxruntime-gpu in
place of onnxruntime.

The two onnxruntime builds install the same module (`onnxruntime`), so one environment must hold
exactly one of them; an extra cannot take a dependency away, so the GPU build is a distribution
of its own, as fastembed ships fastembed-gpu. `make dist-gpu` builds its wheel:

    python scripts/gpu_distribution.py build/gpu && pip wheel --no-deps -w dist build/gpu
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "rec-edge-gpu"


def gpu_pyproject(text: str) -> str:
    """rec-edge's pyproject.toml with the GPU build's name and onnxruntime."""
    text, names = re.subn(r'(?m)^name = "rec-edge"$', f'name = "{NAME}"', text)
    text, runtimes = re.subn(r'"onnxruntime(>=[^"]*)"', r'"onnxruntime-gpu\1"', text)
    text = re.sub(r"(?m)^gpu = \[.*\]\n", "", text)  # an older extra, if any
    if names != 1 or runtimes != 1:
        raise SystemExit("pyproject.toml changed shape: update scripts/gpu_distribution.py")
    return text


def write(out: Path) -> Path:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copytree(
        ROOT / "rec_edge", out / "rec_edge", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "README.md", out / "README.md")
    source = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    (out / "pyproject.toml").write_text(gpu_pyproject(source), encoding="utf-8")
    return out


if __name__ == "__main__":
    print(write(Path(sys.argv[1] if len(sys.argv) > 1 else "build/gpu")))
