"""Training precision (TORCH): ``--precision auto|fp32|bf16`` resolved against the machine.

bf16 here is mixed precision: the Trainer's autocast runs matmuls in bfloat16 while the master
weights, the optimizer state and the LoRA/head parameters stay float32 (transformers'
``TrainingArguments(bf16=True)``). It pays only where the hardware computes in bf16: AVX-512 BF16
or AMX on x86 CPUs, a CUDA GPU of compute capability 8.0 or newer. Elsewhere oneDNN emulates
it, and a step costs more than in fp32, so ``auto`` takes fp32 there and says why.
"""

from __future__ import annotations

from dataclasses import dataclass

PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class Precision:
    requested: str  # auto | fp32 | bf16 (what the user asked for)
    used: str  # fp32 | bf16 (what the Trainer runs)
    note: str | None  # why auto chose what it chose, or a warning for a forced bf16

    def to_dict(self) -> dict[str, str | None]:
        return {"requested": self.requested, "used": self.used, "note": self.note}


def bf16_hardware(cuda: bool | None = None) -> str | None:
    """The bf16 unit training would run on ("AVX-512 BF16", "AMX", "CUDA"), or None where
    bf16 would be emulated. ``cuda``: whether the Trainer will use a GPU (default: if one is
    visible)."""
    import torch

    if cuda is None:
        cuda = torch.cuda.is_available()
    if cuda:
        return "CUDA" if torch.cuda.is_bf16_supported(including_emulation=False) else None
    cpu = getattr(torch, "cpu", None)
    if getattr(cpu, "_is_amx_tile_supported", lambda: False)():
        return "AMX"
    if getattr(cpu, "_is_avx512_bf16_supported", lambda: False)():
        return "AVX-512 BF16"
    return None


def resolve_precision(requested: str, hardware: str | None) -> Precision:
    """``requested`` against ``hardware`` (from :func:`bf16_hardware`)."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision={requested!r} (allowed: {', '.join(PRECISIONS)})")
    if requested == "fp32":
        return Precision(requested, "fp32", None)
    if requested == "bf16":
        note = (
            None
            if hardware
            else "bf16 forced on hardware without a bf16 unit: it is emulated and slower than "
            "fp32 here (--precision auto picks fp32 on this machine)"
        )
        return Precision(requested, "bf16", note)
    if hardware:
        return Precision(requested, "bf16", f"bf16 mixed precision on {hardware}")
    return Precision(
        requested,
        "fp32",
        "fp32: this machine has no bf16 unit (AVX-512 BF16, AMX or a CUDA GPU of compute "
        "capability 8.0+), where emulated bf16 trains slower than fp32",
    )
