"""Broken bundles: every file corrupted, truncated, missing or swapped, with the manifest's sha256
telling the truth or lying. Each case is a BundleError that names the file and says to re-export,
never an error from inside onnxruntime, tokenizers or numpy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rec_edge.bundle import MANIFEST_FILE, sha256_file
from rec_edge.errors import BundleError
from rec_edge.runtime import Predictor

pytestmark = pytest.mark.slow

FAULTS = ("garbage", "truncated", "empty", "missing", "swapped", "other bundle's")


def _damage(folder: Path, name: str, fault: str, other: Path) -> None:
    path = folder / name
    if fault == "garbage":
        path.write_bytes(b"\x00\xffnot what it should be" * 64)
    elif fault == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif fault == "empty":
        path.write_bytes(b"")
    elif fault == "missing":
        path.unlink()
    elif fault == "swapped":  # another file of this bundle in its place
        source = folder / ("tokenizer.json" if name != "tokenizer.json" else "model.onnx")
        shutil.copy(source, path)
    elif fault == "other bundle's":  # the same file of another bundle
        shutil.copy(other / name, path)


def _lie(folder: Path) -> None:
    """Rewrite the manifest's checksums to match the damaged files: only the contents can tell."""
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["files"] = {
        name: sha256_file(folder / name) if (folder / name).is_file() else digest
        for name, digest in manifest["files"].items()
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))


def _cases(bundle_fixture: str, names: tuple[str, ...]) -> list[tuple[str, str, str, bool]]:
    return [
        (bundle_fixture, name, fault, lying)
        for name in names
        for fault in FAULTS
        for lying in (False, True)
        if not (lying and fault == "missing")
        # the tiny bundles share MiniLM's tokenizer (that swap is no fault); one has items.npz
        and not (fault == "other bundle's" and name != "model.onnx")
    ]


CASES = _cases("tiny_bundle", ("model.onnx", "tokenizer.json")) + _cases(
    "rank_bundle", ("model.onnx", "items.npz")
)


@pytest.mark.parametrize(("fixture", "name", "fault", "lying"), CASES)
def test_damaged_file_is_a_bundle_error(
    fixture: str, name: str, fault: str, lying: bool, request, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    source = request.getfixturevalue(fixture)
    other = request.getfixturevalue("rank_bundle" if fixture == "tiny_bundle" else "tiny_bundle")
    folder = tmp_path / "bundle"
    shutil.copytree(source, folder)
    _damage(folder, name, fault, other)
    if lying:
        _lie(folder)
    with pytest.raises(BundleError, match="Re-export") as info:
        Predictor.load(folder)
    assert name in str(info.value) or "graph" in str(info.value), str(info.value)


def test_swapped_same_kind_model_is_refused(tiny_bundle: Path, rank_bundle: Path, tmp_path) -> None:
    """A rank graph under a classify manifest (checksums rewritten): the graph's output width
    does not fit the labels."""
    folder = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, folder)
    shutil.copy(rank_bundle / "model.onnx", folder / "model.onnx")
    _lie(folder)
    with pytest.raises(BundleError, match="scores for 3 labels"):
        Predictor.load(folder)


MANIFEST_FAULTS = {
    "not json": "{not json",
    "a list": "[1, 2]",
    "major schema 2": {"schema_version": "2.0"},
    "no schema": {"schema_version": None},
    "no labels": {"labels": None},
    "labels not a list": {"labels": "finance"},
    "max_length a string": {"max_length": "32"},
    "unknown task": {"task": "translate"},
    "model outside the bundle": {"model_file": "../model.onnx"},
    "files not an object": {"files": ["model.onnx"]},
    "templates not usable": {"templates": {"templates": ["{nope}"]}},
    "model not listed": {"files": {"tokenizer.json": "0" * 64}},
    "lying sha256": {"files": {"model.onnx": "0" * 64, "tokenizer.json": "0" * 64}},
}


@pytest.mark.parametrize("fault", sorted(MANIFEST_FAULTS))
def test_bad_manifest_is_a_bundle_error(fault: str, tiny_bundle: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, folder)
    change = MANIFEST_FAULTS[fault]
    if isinstance(change, str):
        (folder / MANIFEST_FILE).write_text(change)
    else:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        manifest.update(change)
        if manifest["schema_version"] is None:
            del manifest["schema_version"]
        if manifest["labels"] is None:
            del manifest["labels"]
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=MANIFEST_FILE + "|Re-export") as info:
        Predictor.load(folder)
    assert str(folder) in str(info.value)


def test_missing_manifest_and_folder(tiny_bundle: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, folder)
    (folder / MANIFEST_FILE).unlink()
    with pytest.raises(BundleError, match="is not a rec-edge bundle"):
        Predictor.load(folder)
    with pytest.raises(BundleError, match="does not exist"):
        Predictor.load(tmp_path / "nowhere")


def test_item_index_that_does_not_fit(rank_bundle: Path, tmp_path: Path) -> None:
    """A well-formed npz whose arrays disagree (sha256 rewritten to match)."""
    folder = tmp_path / "bundle"
    shutil.copytree(rank_bundle, folder)
    with np.load(folder / "items.npz") as index:
        arrays = {k: index[k] for k in index.files}
    arrays["vectors"] = arrays["vectors"][:-1]
    np.savez(folder / "items.npz", **arrays)
    _lie(folder)
    with pytest.raises(BundleError, match=r"items\.npz is not a usable item index"):
        Predictor.load(folder)


def test_batch_variant_bundle_is_flagged_at_load(tiny_bundle: Path, tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """A bundle made before calibrated int8 (or with --allow-batch-variance) still loads, with a
    warning that says how to get batch-invariant scores."""
    folder = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, folder)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["recipe"].update(kind="dynamic", name="dynamic-per-channel-rr")
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    with caplog.at_level("WARNING", logger="rec_edge"):
        Predictor.load(folder)
    assert "depend on what it is batched with" in caplog.text and "Re-export" in caplog.text
