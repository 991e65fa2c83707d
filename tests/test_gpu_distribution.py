"""One onnxruntime build per environment: rec-edge needs the CPU one, rec-edge-gpu (the same code,
built by scripts/gpu_distribution.py) the GPU one, and no extra adds the second beside the first."""

from __future__ import annotations

import email
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_cpu_install_requires_no_gpu_package() -> None:
    requires = metadata.requires("rec-edge") or []
    assert any(r.startswith("onnxruntime>=") for r in requires)
    assert not [r for r in requires if "onnxruntime-gpu" in r or "onnxruntime_gpu" in r]
    installed = {d.metadata["Name"].lower() for d in metadata.distributions()}
    assert "onnxruntime-gpu" not in installed  # `make install` leaves one build importable


@pytest.mark.slow
def test_the_gpu_distribution_swaps_the_runtime(tmp_path: Path) -> None:
    source = tmp_path / "gpu"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_distribution.py"), str(source)], check=True
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("rec_edge_gpu-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        fields = email.message_from_bytes(archive.read(name))
        assert "rec_edge/runtime/predictor.py" in archive.namelist()
    requires = fields.get_all("Requires-Dist") or []
    assert fields["Name"] == "rec-edge-gpu"
    assert any(r.startswith("onnxruntime-gpu>=") for r in requires)
    assert not [r for r in requires if r.startswith("onnxruntime>") or r == "onnxruntime"]
