"""A manifest is checked on read (torch-free): every field's type, a known task, and every file the
runtime reads listed with its checksum, so that nothing loads unverified."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rec_edge.bundle import SCHEMA_VERSION, load_bundle, sha256_file, verify_files
from rec_edge.errors import BundleError


def fake_bundle(folder: Path, **fields: Any) -> Path:
    for name in ("model.onnx", "tokenizer.json", "items.npz"):
        (folder / name).write_bytes(name.encode())
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "task": "rank",
        "labels": ["no", "yes"],
        "templates": {},
        "max_length": 16,
        "inputs": ["input_ids"],
        "outputs": ["logits"],
        "items_file": "items.npz",
        "files": {
            n: sha256_file(folder / n) for n in ("model.onnx", "tokenizer.json", "items.npz")
        },
        **fields,
    }
    (folder / "rec_edge.json").write_text(json.dumps(manifest))
    return folder


def test_a_well_formed_manifest_loads(tmp_path: Path) -> None:
    assert load_bundle(fake_bundle(tmp_path)).manifest.items_file == "items.npz"


def test_an_unlisted_items_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    fake_bundle(tmp_path)  # writes the files
    files = {n: sha256_file(tmp_path / n) for n in ("model.onnx", "tokenizer.json")}
    fake_bundle(tmp_path, files=files)
    with pytest.raises(BundleError, match="items.npz is not listed in the manifest's files"):
        load_bundle(tmp_path, verify=False)


def test_verifying_an_unlisted_file_is_a_bundle_error(tmp_path: Path) -> None:
    bundle = load_bundle(fake_bundle(tmp_path))
    with pytest.raises(BundleError, match="README.md is not listed"):
        verify_files(bundle, ["README.md"])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("recipe", "int8", "field 'recipe' must be an object"),
        ("source", ["run"], "field 'source' must be an object"),
        ("task", None, "field 'task' is None"),
        ("created", 3, "field 'created' must be a string"),
        ("metrics", [], "field 'metrics' must be an object"),
    ],
)
def test_every_field_has_its_type(tmp_path: Path, field: str, value: Any, message: str) -> None:
    with pytest.raises(BundleError, match=message):
        load_bundle(fake_bundle(tmp_path, **{field: value}))
