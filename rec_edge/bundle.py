"""The bundle manifest (rec_edge.json): the ONE contract between the build side and the runtime.

A bundle folder holds model.onnx, tokenizer.json and rec_edge.json. The manifest says what
produced the bundle, from what, with what recipe and what it scored, and carries the sha256 of
every file, so that the runtime can refuse a bundle that is incomplete or was altered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rec_edge.errors import BundleError

SCHEMA_VERSION = "1.8"  # 1.1: items_file (rank bundles); 1.2: collaborative tables in it;
# 1.3: the stack of counts and weights beside them (recommend.tables.Stack); 1.4: its new-item
# exposure and the catalog's word weights; 1.5: the user's lenience and the co-liked history in
# its like weights, with the titles' co-like factors; 1.6: the model family (encoder | decoder)
# and a decoder's settings (task generate; bundles without the field are encoders); 1.7: a
# decoder rank bundle's item index (its collaborative tables and stack, no vectors); 1.8: a
# decoder classify bundle's label prior (decoder.label_prior: contextual calibration)
MANIFEST_FILE = "rec_edge.json"
TASKS = ("classify", "rank", "generate")
FAMILIES = ("encoder", "decoder")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Manifest:
    task: str  # classify | rank | generate (decoders)
    labels: list[str]
    templates: dict[str, Any]  # TemplateSet.to_dict(): templates, instruction, label_names
    max_length: int
    inputs: list[str]  # the graph's input names, in order
    outputs: list[str]
    model_file: str = "model.onnx"
    tokenizer_file: str = "tokenizer.json"
    items_file: str | None = None  # rank: npz of the catalog: titles, vectors, optional tables
    recipe: dict[str, Any] = field(default_factory=dict)  # the quantization recipe that was kept
    source: dict[str, Any] = field(default_factory=dict)  # model, run folder, run name
    metrics: dict[str, Any] = field(default_factory=dict)  # fp32, quantized, the gate's table
    parity: dict[str, Any] = field(default_factory=dict)  # torch vs fp32 ONNX
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    family: str = "encoder"  # encoder (a text -> scores graph) | decoder (a causal LM, KV cache)
    # decoder: the chat format rendered at export (prompt_prefix, prompt_suffix, end_of_turn),
    # stop_token_ids, the cache's shape (num_layers, num_kv_heads, head_dim), user_template,
    # instruction and label_words (classify); see runtime.decoding.DecoderSpec
    decoder: dict[str, Any] = field(default_factory=dict)
    schema_version: str = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = MANIFEST_FILE) -> Manifest:
        problems = []
        version = str(data.get("schema_version", ""))
        major = version.split(".")[0]
        if major != SCHEMA_VERSION.split(".")[0]:
            problems.append(
                f"schema_version {version or 'missing'} is not supported (this rec-edge reads {SCHEMA_VERSION.split('.')[0]}.x); "
                "re-export the bundle with this version, or upgrade rec-edge"
            )
        known = {f.name for f in fields(cls)}
        required = {
            f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
        }
        for name in sorted(required - set(data)):
            problems.append(f"field '{name}' is missing")
        if "task" in data and data["task"] not in TASKS:
            problems.append(f"field 'task' is {data.get('task')!r} (allowed: {', '.join(TASKS)})")
        family = data.get("family", "encoder")
        if family not in FAMILIES:
            problems.append(f"field 'family' is {family!r} (allowed: {', '.join(FAMILIES)})")
        elif family == "decoder" and not data.get("decoder"):
            problems.append("field 'decoder' is missing (a decoder bundle's settings)")
        if data.get("task") == "generate" and family != "decoder":
            problems.append("task 'generate' needs family 'decoder'")
        problems += _type_problems(data)
        if data.get("task") in ("classify", "rank") and data.get("labels") == []:
            problems.append("field 'labels' is empty (a classify or rank bundle names its labels)")
        if problems:
            raise BundleError(f"{source}: " + "; ".join(problems))
        return cls(**{k: v for k, v in data.items() if k in known})


def _is_list_of_str(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_file_name(value: Any) -> bool:
    """A file inside the bundle folder: relative, no way out of it."""
    return (
        isinstance(value, str)
        and bool(value)
        and not value.startswith("/")
        and ".." not in value.split("/")
    )


# field -> (check, what it must be)
_FIELD_TYPES: dict[str, tuple[Any, str]] = {
    "labels": (_is_list_of_str, "a list of strings"),
    "decoder": (lambda v: isinstance(v, dict), "an object"),
    "templates": (lambda v: isinstance(v, dict), "an object"),
    "max_length": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
        "a positive integer",
    ),
    "inputs": (_is_list_of_str, "a list of strings"),
    "outputs": (_is_list_of_str, "a list of strings"),
    "model_file": (_is_file_name, "a file name inside the bundle"),
    "tokenizer_file": (_is_file_name, "a file name inside the bundle"),
    "items_file": (
        lambda v: v is None or _is_file_name(v),
        "null or a file name inside the bundle",
    ),
    "recipe": (lambda v: isinstance(v, dict), "an object"),
    "source": (lambda v: isinstance(v, dict), "an object"),
    "metrics": (lambda v: isinstance(v, dict), "an object"),
    "parity": (lambda v: isinstance(v, dict), "an object"),
    "versions": (lambda v: isinstance(v, dict), "an object"),
    "created": (lambda v: isinstance(v, str), "a string"),
    "files": (
        lambda v: (
            isinstance(v, dict)
            and all(_is_file_name(k) and isinstance(h, str) for k, h in v.items())
        ),
        "an object of file name -> sha256",
    ),
}


def _type_problems(data: dict[str, Any]) -> list[str]:
    return [
        f"field '{name}' must be {what}, got {json.dumps(data[name])[:60]}"
        for name, (check, what) in _FIELD_TYPES.items()
        if name in data and not check(data[name])
    ]


@dataclass
class Bundle:
    path: Path
    manifest: Manifest

    @property
    def model_path(self) -> Path:
        return self.path / self.manifest.model_file

    @property
    def tokenizer_path(self) -> Path:
        return self.path / self.manifest.tokenizer_file


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Checksum every file in ``folder`` (but the manifest) into the manifest and write it."""
    manifest.files = {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST_FILE
    }
    (folder / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")


def load_bundle(path: str | Path, verify: bool = True) -> Bundle:
    """Read a bundle's manifest, check that every listed file is present and, with ``verify``,
    that every file matches its sha256."""
    folder = Path(path)
    manifest_path = folder / MANIFEST_FILE
    if not folder.is_dir():
        raise BundleError(
            f"Bundle folder {folder} does not exist. Create one with `rec-edge export`."
        )
    if not manifest_path.is_file():
        raise BundleError(f"{manifest_path} is missing: {folder} is not a rec-edge bundle.")
    try:
        data = json.loads(manifest_path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BundleError(
            f"{manifest_path} is not valid JSON ({error}). Re-export the bundle."
        ) from None
    if not isinstance(data, dict):
        raise BundleError(f"{manifest_path}: a JSON object is expected.")
    bundle = Bundle(folder, Manifest.from_dict(data, str(manifest_path)))
    manifest = bundle.manifest
    problems = [
        f"{name} is not listed in the manifest's files"
        for name in (manifest.model_file, manifest.tokenizer_file, manifest.items_file)
        if name is not None and name not in manifest.files
    ]
    problems += [
        f"{folder / name} is missing" for name in manifest.files if not (folder / name).is_file()
    ]
    _raise_if(bundle, problems)
    if verify:
        verify_files(bundle)
    return bundle


def verify_files(bundle: Bundle, names: Iterable[str] | None = None) -> None:
    """Raise BundleError unless each file (default: every listed file) matches its sha256."""
    files = bundle.manifest.files
    problems = []
    for name in files if names is None else names:
        if name not in files:
            problems.append(f"{name} is not listed in the manifest's files (no checksum)")
        elif sha256_file(bundle.path / name) != files[name]:
            problems.append(
                f"{bundle.path / name} does not match its sha256 in the manifest (altered or "
                "truncated)"
            )
    _raise_if(bundle, problems)


def _raise_if(bundle: Bundle, problems: list[str]) -> None:
    if problems:
        raise BundleError(
            f"Bundle {bundle.path} is broken: " + "; ".join(problems) + ". Re-export it."
        )
