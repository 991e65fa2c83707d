"""onnxruntime sessions: execution providers by friendly name, threads, optimization level."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from rec_edge.errors import BundleError, ConfigError, ProviderError, RecEdgeError

log = logging.getLogger("rec_edge")

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "directml": "DmlExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "nnapi": "NnapiExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
    "webgpu": "WebGpuExecutionProvider",
}
OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
_FRIENDLY = {v: k for k, v in PROVIDERS.items()}


@dataclass
class SessionConfig:
    provider: str = "cpu"  # a friendly name (cpu, cuda, ...) or onnxruntime's own name
    threads: int | None = None  # intra-op threads; None: onnxruntime's default (one per core)
    inter_op_threads: int | None = None
    graph_optimization_level: str = "all"  # applied in memory at load, for this machine only
    enable_mem_arena: bool = True
    fallback: bool = False  # fall back to the CPU (logged) when the provider is unavailable
    spinning: bool = True  # False: idle threads sleep (shared machines, several engines)

    def __post_init__(self) -> None:
        problems = []
        if self.graph_optimization_level not in OPT_LEVELS:
            problems.append(
                f"graph_optimization_level={self.graph_optimization_level!r} (allowed: {', '.join(OPT_LEVELS)})"
            )
        for name in ("threads", "inter_op_threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name}={value} (must be >= 1)")
        if problems:
            raise ConfigError("Invalid SessionConfig: " + "; ".join(problems))


def resolve_provider(name: str, fallback: bool = False) -> str:
    """Map a friendly or onnxruntime name to an available provider, or raise ProviderError."""
    wanted = PROVIDERS.get(name.lower(), name)
    available = ort.get_available_providers()
    if wanted in available:
        return wanted
    names = ", ".join(_FRIENDLY.get(p, p) for p in available)
    if wanted not in _FRIENDLY:
        raise ProviderError(
            f"Unknown execution provider {name!r} (known: {', '.join(PROVIDERS)}, or an onnxruntime "
            f"name such as CUDAExecutionProvider; available here: {names})."
        )
    if fallback:
        log.warning(
            "Provider %r is not available (available: %s); falling back to cpu.", name, names
        )
        return "CPUExecutionProvider"
    hint = (
        " Install rec-edge[gpu] (onnxruntime-gpu) in place of onnxruntime,"
        if wanted in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
        else ""
    )
    raise ProviderError(
        f"Provider {_FRIENDLY.get(wanted, name)!r} is not available (available: {names}).{hint} "
        "or pass --provider cpu, or --fallback (fallback=True) to fall back to the CPU."
    )


def create_session(model_path: Path, config: SessionConfig) -> ort.InferenceSession:
    provider = resolve_provider(config.provider, config.fallback)
    options = ort.SessionOptions()
    options.graph_optimization_level = OPT_LEVELS[config.graph_optimization_level]
    options.enable_mem_pattern = True
    options.enable_cpu_mem_arena = config.enable_mem_arena
    if config.threads:
        options.intra_op_num_threads = config.threads
    if config.inter_op_threads:
        options.inter_op_num_threads = config.inter_op_threads
    if not config.spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    providers = (
        [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
    )
    return ort.InferenceSession(str(model_path), sess_options=options, providers=providers)


def open_session(model_path: Path, config: SessionConfig) -> ort.InferenceSession:
    """``create_session`` for a bundle's graph: a file onnxruntime cannot load is a BundleError
    naming it."""
    try:
        return create_session(model_path, config)
    except RecEdgeError:
        raise
    except Exception as error:  # onnxruntime's own classes (InvalidProtobuf, Fail, ...)
        text = str(error).strip()
        reason = text.splitlines()[0][:200] if text else type(error).__name__
        raise BundleError(
            f"{model_path} cannot be loaded by onnxruntime ({reason}). Re-export the bundle."
        ) from None
