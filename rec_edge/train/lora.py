"""LoRA target modules per architecture, and the peft wrapping.

By default LoRA goes into the upper half of the layers only. Backpropagation then stops at the
lowest adapted layer: the lower half runs forward alone, without autograd, and a training step
costs about a quarter less on a CPU (benchmarks/RESULTS.md, "Training speed"), while the upper
layers, which carry the task-specific features, still adapt.
"""

from __future__ import annotations

import math
from typing import Any

from rec_edge.errors import ConfigError

# Regexes over module names: encoder linears only, so the pooler and head stay in modules_to_save.
TARGET_MODULES: dict[str, str] = {
    "bert": r".*encoder\.layer\.\d+\..*(query|key|value|dense)$",
    "roberta": r".*encoder\.layer\.\d+\..*(query|key|value|dense)$",
    "xlm-roberta": r".*encoder\.layer\.\d+\..*(query|key|value|dense)$",
    "electra": r".*encoder\.layer\.\d+\..*(query|key|value|dense)$",
    "distilbert": r".*transformer\.layer\.\d+\..*(q_lin|k_lin|v_lin|out_lin|lin1|lin2)$",
    "llama": r".*layers\.\d+\..*(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$",
    "qwen2": r".*layers\.\d+\..*(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$",
}
# Trained fully and saved with the adapter: the new head (and BERT's pooler, untrained in MiniLM).
MODULES_TO_SAVE: dict[str, list[str]] = {
    "bert": ["classifier", "pooler"],
    "distilbert": ["pre_classifier", "classifier"],
    "llama": ["score"],
    "qwen2": ["score"],
}


def layer_count(config: Any) -> int:
    for name in ("num_hidden_layers", "n_layers", "num_layers"):
        if isinstance(getattr(config, name, None), int):
            return int(getattr(config, name))
    raise ConfigError(
        f"Cannot tell how many layers a {config.model_type!r} model has; pass --target-modules."
    )


def adapted_layers(total: int, lora_layers: int | None) -> list[int]:
    """The indices of the layers that get adapters: the last ``lora_layers`` (None: the upper
    half, rounded up)."""
    count = math.ceil(total / 2) if lora_layers is None else min(lora_layers, total)
    return list(range(total - count, total))


def default_targets(model_type: str, layers: list[int]) -> str | None:
    """The architecture's target regex restricted to ``layers``."""
    pattern = TARGET_MODULES.get(model_type)
    if pattern is None:
        return None
    chosen = "(?:" + "|".join(str(i) for i in layers) + ")"
    return pattern.replace(r"\d+", chosen, 1)


def wrap_lora(
    model: Any,
    r: int,
    alpha: int,
    dropout: float,
    target_modules: list[str] | None,
    features: bool = False,
    lora_layers: int | None = None,
) -> Any:
    """LoRA on the encoder's linears in the layers ``adapted_layers`` picks (``target_modules``,
    when given, name the modules instead). ``features``: ``model`` is a bare encoder (AutoModel)
    whose head lives outside it (modeling.heads), so there is no classifier to train and save."""
    from peft import LoraConfig, TaskType, get_peft_model

    model_type = model.config.model_type
    targets: str | list[str] | None = target_modules
    if targets is None and model_type in TARGET_MODULES:
        layers = adapted_layers(layer_count(model.config), lora_layers)
        targets = default_targets(model_type, layers)
    if targets is None:
        raise ConfigError(
            f"No default LoRA target modules for model type {model_type!r} "
            f"(known: {', '.join(sorted(TARGET_MODULES))}). Pass --target-modules NAME,NAME."
        )
    config = LoraConfig(
        task_type=TaskType.FEATURE_EXTRACTION if features else TaskType.SEQ_CLS,
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=targets,
        modules_to_save=None if features else MODULES_TO_SAVE.get(model_type, ["classifier"]),
    )
    return get_peft_model(model, config)
