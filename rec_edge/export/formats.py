"""BUILD SIDE (onnx and onnxruntime's tools, no torch): a bundle for other runtimes, the verb
behind `rec-edge convert`.

- ``ort``: an ONNX Runtime Mobile bundle: ``model.ort`` (onnxruntime's own
  ``convert_onnx_models_to_ort``, fixed optimizations) in place of ``model.onnx``, and
  ``model.required_operators.config``, the operator list a reduced-operator onnxruntime build
  for Android or iOS is made from. The manifest names ``model.ort``, so ``Predictor`` loads it
  as any bundle (on the desktop too).
- ``triton``: a Triton model repository: ``NAME/config.pbtxt`` (``onnxruntime_onnx``,
  ``max_batch_size``, dynamic batching, a CPU instance group, onnxruntime's thread counts) and
  the graph under ``NAME/1/model.onnx``. The tokenizer is the client's job: ``NAME/tokenizer.json``
  and the manifest travel beside it (Triton ignores them), and the inputs are the token ids.

Both are written in a staging folder and renamed into place, as an export is.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from rec_edge.bundle import MANIFEST_FILE, load_bundle, write_manifest
from rec_edge.errors import ConfigError, ExportError
from rec_edge.export.folders import check_target, replace_folder, scratch_folders

FORMATS = ("ort", "triton")
ORT_MODEL = "model.ort"
OPERATORS = "model.required_operators.config"
# onnx element types -> Triton's
TRITON_TYPES = {
    "tensor(int64)": "TYPE_INT64",
    "tensor(int32)": "TYPE_INT32",
    "tensor(float)": "TYPE_FP32",
    "tensor(float16)": "TYPE_FP16",
}


@dataclass(frozen=True)
class ConvertConfig:
    """`rec-edge convert`: ``bundle`` to ``to`` (ort | triton) in ``out``."""

    bundle: str
    to: str
    out: str
    force: bool = False
    name: str | None = None  # triton: the model's name; None: the bundle folder's
    max_batch_size: int = 32  # triton: rows a request may carry, and dynamic batching's limit
    queue_delay_us: int = 2000  # triton: how long dynamic batching waits for more rows
    instances: int = 1  # triton: model instances on the CPU
    threads: int | None = None  # triton: onnxruntime's intra-op threads; None: its default

    def __post_init__(self) -> None:
        problems = []
        if self.to not in FORMATS:
            problems.append(f"to={self.to!r} (one of {', '.join(FORMATS)})")
        for field in ("max_batch_size", "instances"):
            if getattr(self, field) < 1:
                problems.append(f"{field}={getattr(self, field)} (must be >= 1)")
        if self.queue_delay_us < 0 or (self.threads is not None and self.threads < 1):
            problems.append("queue_delay_us must be >= 0 and threads >= 1")
        if problems:
            raise ConfigError("ConvertConfig: " + "; ".join(problems))


def convert_bundle(config: ConvertConfig) -> Path:
    """Write ``config.bundle`` as ``config.to`` into ``config.out``; returns the folder written."""
    bundle = load_bundle(config.bundle)
    if bundle.manifest.family == "decoder":
        raise ConfigError(
            f"{config.bundle} is a decoder bundle (a KV cache and a generation loop): convert "
            "takes encoder bundles"
        )
    out = Path(config.out)
    check_target(out, config.force, [config.bundle])
    out.parent.mkdir(parents=True, exist_ok=True)
    work, staging = scratch_folders(out)
    try:
        if config.to == "ort":
            _ort_bundle(bundle.path, staging, work)
        else:
            _triton_repository(bundle.path, staging, config)
        replace_folder(staging, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _ort_bundle(source: Path, staging: Path, work: Path) -> None:
    from onnxruntime.tools.convert_onnx_models_to_ort import (
        OptimizationStyle,
        convert_onnx_models_to_ort,
    )

    bundle = load_bundle(source)
    manifest = bundle.manifest
    for name in manifest.files:  # everything but the graphs
        if not name.endswith((".onnx", ".onnx.data")):
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source / name, staging / name)
    graph = work / "model.onnx"
    shutil.copy(source / manifest.model_file, graph)
    data = source / (manifest.model_file + ".data")
    if data.is_file():
        shutil.copy(data, work / data.name)
    convert_onnx_models_to_ort(graph, work / "ort", [OptimizationStyle.Fixed])
    for name in (ORT_MODEL, OPERATORS):
        if not (work / "ort" / name).is_file():
            raise ExportError(f"onnxruntime's converter wrote no {name} for {source}")
        shutil.copy(work / "ort" / name, staging / name)
    manifest.model_file = ORT_MODEL
    manifest.source = {**manifest.source, "converted": {"to": "ort", "from": str(source)}}
    write_manifest(staging, manifest)


def _triton_repository(source: Path, staging: Path, config: ConvertConfig) -> None:
    import onnxruntime as ort

    bundle = load_bundle(source)
    name = config.name or source.name
    model_dir = staging / name
    (model_dir / "1").mkdir(parents=True)
    graph = source / bundle.manifest.model_file
    shutil.copy(graph, model_dir / "1" / "model.onnx")
    if Path(str(graph) + ".data").is_file():
        shutil.copy(str(graph) + ".data", model_dir / "1" / "model.onnx.data")
    for extra in (bundle.manifest.tokenizer_file, MANIFEST_FILE):
        shutil.copy(source / extra, model_dir / extra)
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    (model_dir / "config.pbtxt").write_text(
        triton_config(name, session.get_inputs(), session.get_outputs(), config), encoding="utf-8"
    )


def triton_config(name: str, inputs: list, outputs: list, config: ConvertConfig) -> str:
    """config.pbtxt: the graph's inputs and outputs without their batch dimension."""

    def tensors(args: list) -> str:
        rows = []
        for arg in args:
            if arg.type not in TRITON_TYPES:
                raise ExportError(f"{arg.name}: {arg.type} has no Triton type here")
            dims = ", ".join(str(d) if isinstance(d, int) else "-1" for d in arg.shape[1:])
            rows.append(
                f'  {{ name: "{arg.name}" data_type: {TRITON_TYPES[arg.type]} dims: [ {dims} ] }}'
            )
        return ",\n".join(rows)

    threads = [("intra_op_thread_count", config.threads)] if config.threads else []
    parameters = "".join(
        f'parameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}\n'
        for key, value in [*threads, ("inter_op_thread_count", 1)]
    )
    return (
        f'name: "{name}"\n'
        'platform: "onnxruntime_onnx"\n'
        f"max_batch_size: {config.max_batch_size}\n"
        f"input [\n{tensors(inputs)}\n]\n"
        f"output [\n{tensors(outputs)}\n]\n"
        "dynamic_batching {\n"
        f"  max_queue_delay_microseconds: {config.queue_delay_us}\n"
        "}\n"
        f"instance_group [ {{ count: {config.instances} kind: KIND_CPU }} ]\n"
        f"{parameters}"
    )
