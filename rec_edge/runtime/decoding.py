"""TORCH-FREE pieces of a decoder bundle's runtime (``Generator``): what its manifest says of the
model (``DecoderSpec``), what an answer cost (``Usage``), and how the next token is chosen and
where the answer stops (numpy and the standard library only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rec_edge.config import GenerationConfig
from rec_edge.errors import BundleError

DECODER_FIELDS = (
    "prompt_prefix",
    "prompt_suffix",
    "end_of_turn",
    "stop_token_ids",
    "num_layers",
    "num_kv_heads",
    "head_dim",
    "user_template",
)


@dataclass(frozen=True)
class DecoderSpec:
    """What a decoder bundle's manifest says of its model (``Manifest.decoder``)."""

    prompt_prefix: str  # the chat format before the user's words
    prompt_suffix: str  # after them, up to where the assistant's answer starts
    end_of_turn: str  # what closes the answer ("<|im_end|>"); "" for a model without a chat format
    stop_token_ids: tuple[int, ...]
    num_layers: int
    num_kv_heads: int
    head_dim: int
    user_template: str  # "{instruction}\n\n{text}" or "{text}"
    instruction: str | None = None
    label_words: dict[str, str] | None = None  # classify: label -> its answer words
    # classify: log P(label | a content-free input) in the bundle's label order; subtracted from
    # each answer's log-likelihood (contextual calibration), None where the export chose not to
    label_prior: tuple[float, ...] | None = None
    rank_history: str | None = None  # rank: the user turn up to the candidate (data.prompts)
    rank_candidate: str | None = None  # rank: from the candidate's title to the question's end
    rank_answers: tuple[str, str] | None = None  # rank: the words for yes and for no
    chat_template: str | None = None  # the model's (jinja2), for conversations (chat_prompt)
    special_tokens: dict[str, str] | None = None  # bos_token, eos_token: the template names them

    @classmethod
    def from_manifest(cls, decoder: dict[str, Any], source: str) -> DecoderSpec:
        missing = [name for name in DECODER_FIELDS if name not in decoder]
        if missing:
            raise BundleError(
                f"{source}: field 'decoder' lacks {', '.join(missing)}. Re-export the bundle."
            )
        try:
            return cls(
                **{
                    **{k: v for k, v in decoder.items() if k in cls.__dataclass_fields__},
                    "stop_token_ids": tuple(int(i) for i in decoder["stop_token_ids"]),
                    "rank_answers": tuple(decoder["rank_answers"])
                    if decoder.get("rank_answers")
                    else None,
                    "label_prior": tuple(float(v) for v in decoder["label_prior"])
                    if decoder.get("label_prior") is not None
                    else None,
                }
            )
        except (TypeError, ValueError) as error:
            raise BundleError(f"{source}: field 'decoder' is unusable ({error}).") from None


@dataclass
class Usage:
    """What one answer cost and why it ended (filled in as it is written)."""

    prompt_tokens: int = 0
    cached_tokens: int = 0  # of the prompt's, read from the bundle's prompt-frame cache
    completion_tokens: int = 0
    finish_reason: str | None = None  # "stop": the end of the turn or a stop string; "length"


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def next_token(logits: np.ndarray, config: GenerationConfig, rng: np.random.Generator) -> int:
    if config.temperature == 0:
        return int(np.argmax(logits))
    shifted = logits.astype(np.float64) - float(logits.max())  # <= 0: a tiny temperature
    with np.errstate(over="ignore", divide="ignore"):  # sends the rest to -inf, never to nan
        probabilities = np.exp(shifted / config.temperature)
    probabilities /= probabilities.sum()
    if config.top_p < 1.0:  # the smallest set of tokens holding top_p of the mass
        order = np.argsort(-probabilities, kind="stable")
        keep = np.cumsum(probabilities[order]) - probabilities[order] < config.top_p
        kept = order[keep]
        probabilities = probabilities[kept] / probabilities[kept].sum()
        return int(kept[rng.choice(len(kept), p=probabilities)])
    return int(rng.choice(len(probabilities), p=probabilities))


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


def stop_prefix(text: str, stops: Sequence[str]) -> int:
    """How many characters at the end of ``text`` could be the start of a stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest
