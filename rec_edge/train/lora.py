"""LoRA target modules per architecture, and the peft wrapping."""

from __future__ import annotations

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


def wrap_lora(
    model: Any,
    r: int,
    alpha: int,
    dropout: float,
    target_modules: list[str] | None,
    features: bool = False,
) -> Any:
    """LoRA on the encoder's linears. ``features``: ``model`` is a bare encoder (AutoModel) whose
    head lives outside it (train.heads), so there is no classifier to train and save with it."""
    from peft import LoraConfig, TaskType, get_peft_model

    model_type = model.config.model_type
    targets: str | list[str] | None = target_modules or TARGET_MODULES.get(model_type)
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
