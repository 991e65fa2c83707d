"""Package versions and the machine, recorded beside every artifact and result (torch-free)."""

from __future__ import annotations

import contextlib
import os
import platform
from importlib import metadata

PACKAGES = (
    "rec-edge",
    "onnxruntime",
    "onnxruntime-gpu",
    "tokenizers",
    "numpy",
    "onnx",
    "torch",
    "transformers",
    "optimum",
    "optimum-onnx",
    "peft",
    "accelerate",
    "fastembed",  # the bench's peers, where installed
    "sentence-transformers",
)


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def machine() -> dict[str, object]:
    flags: list[str] = []
    model = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and model in ("", platform.machine()):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    break
    except OSError:
        pass
    wanted = (
        "avx2",
        "avx512f",
        "avx512_vnni",
        "avx512_bf16",
        "amx_int8",
        "avx_vnni",
        "fma",
        "f16c",
    )
    memory = None
    with contextlib.suppress(ValueError, OSError, AttributeError):
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpu": model,
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "flags": [f for f in wanted if f in flags],
        "memory_bytes": memory,
        "os": platform.platform(),
    }
