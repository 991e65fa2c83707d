"""A real BANKING77 int8 bundle (MiniLM, LoRA, optimum export) predicts with torch blocked."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rec_edge.config import ExportConfig, TrainConfig
from tests.helpers import BANKING77, BLOCK_TORCH

pytestmark = pytest.mark.slow


@pytest.mark.skipif(
    not (BANKING77 / "train.csv").is_file(), reason="../shared/data/banking77 not present"
)
def test_banking77_int8_bundle_without_torch(tmp_path) -> None:
    from rec_edge.export import export
    from rec_edge.train import train

    # Few-shot and one epoch keep CI short: this test is about the runtime, not accuracy
    # (benchmarks/ reports the full-data figures).
    run = train(
        TrainConfig(
            train_file=str(BANKING77 / "train.csv"),
            label_field="category",
            shots=4,
            epochs=1,
            runs_dir=str(tmp_path),
            name="b77",
            max_length=64,
            instruction="Decide which banking intent this message expresses.",
        )
    )
    bundle = export(
        ExportConfig(
            run_dir=str(run.run_dir),
            out=str(tmp_path / "b77-int8"),
            quantize="avx512-vnni",
            max_accuracy_drop=100.0,
            eval_limit=200,
        ),
        log=lambda _: None,
    ).bundle_dir
    code = BLOCK_TORCH + (
        "from rec_edge import Predictor\n"
        f"p = Predictor.load({str(bundle)!r})\n"
        "assert p.manifest.recipe['kind'] == 'calibrated' and len(p.labels) == 77\n"
        "out = p.predict(['I am still waiting on my card?', 'How do I top up by cheque?'])\n"
        "assert all(o.label in p.labels and 0 < o.score <= 1 for o in out)\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'optimum', 'peft')]\n"
        "print('ok', out[0].label)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok ")
