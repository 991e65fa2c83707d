"""TORCH-FREE: the words a decoder bundle is asked in, one definition for training and the runtime.

A user turn is ``USER_TEMPLATE`` (an instruction, then the input). A rank question (TALLRec's
pointwise form) is cut in two so that one user's history is encoded once for all of their
candidates: the history part ends where the candidate's title begins, and the candidate part
holds the title and the question. Training tokenizes the two parts apart and joins the ids, as
the runtime does, so that both see the same tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rec_edge.errors import DataError, MissingDependencyError

USER_TEMPLATE = "{instruction}\n\n{text}"
RANK_INSTRUCTION = (
    "Given the titles a user liked and disliked, say whether they will enjoy the next one."
)
RANK_HISTORY = 'The user liked: {liked}.\nThe user disliked: {disliked}.\nWill the user enjoy "'
RANK_CANDIDATE = '{candidate}"? Answer Yes or No.'
RANK_ANSWERS = ("Yes", "No")  # the first token of each: P(Yes) / (P(Yes) + P(No))


def fit_prompt(ids: list[int], head: int, tail: int, limit: int, keep: str = "start") -> list[int]:
    """``ids`` in ``limit`` tokens: the first ``head`` (the chat format before the user's words)
    and the last ``tail`` (after them) are kept, and the words between lose their end
    (``keep="start"``: the instruction leads the user's turn) or their start (``"end"``). A
    limit below the frame itself keeps the last ``limit`` tokens. Training and the runtime
    cut alike."""
    if len(ids) <= limit:
        return ids
    room = limit - head - tail
    if room <= 0:
        return ids[-limit:] if limit > 0 else []
    words = ids[head : len(ids) - tail]
    kept = words[:room] if keep == "start" else words[len(words) - room :]
    return ids[:head] + kept + ids[len(ids) - tail :]


def user_turn(text: str, instruction: str | None) -> str:
    """The user's words: ``text`` after ``instruction`` (the text alone without one)."""
    return USER_TEMPLATE.format(instruction=instruction, text=text) if instruction else text


def label_instruction(instruction: str | None, words: Sequence[str]) -> str:
    """A classify instruction that offers the label words: ``{labels}`` in ``instruction`` is
    replaced by them ("a, b, c"); no instruction: "Answer with one of: a, b, c."."""
    listed = ", ".join(words)
    if instruction is None:
        return f"Answer with one of: {listed}."
    return instruction.replace("{labels}", listed)


def rank_history(
    liked: Sequence[str],
    disliked: Sequence[str],
    instruction: str | None,
    template: str = RANK_HISTORY,
) -> str:
    """The user turn's words up to the candidate's title (without the chat format)."""
    history = template.format(
        liked="; ".join(liked) or "nothing yet", disliked="; ".join(disliked) or "nothing"
    )
    return user_turn(history, instruction)


def rank_candidate(candidate: str, template: str = RANK_CANDIDATE) -> str:
    """The user turn's words from the candidate's title to its end."""
    return template.format(candidate=candidate)


def render_chat(
    template: str, messages: Sequence[Mapping[str, Any]], special_tokens: Mapping[str, str]
) -> str:
    """A conversation through a model's chat template, up to the assistant's answer, rendered
    as transformers renders it (a sandboxed jinja2 environment, blocks trimmed, loop controls);
    needs jinja2 (the ``[serve]`` extra). A template that refuses the conversation (its
    ``raise_exception``) is a DataError with its words."""
    try:
        from jinja2.exceptions import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:
        raise MissingDependencyError(
            "Conversations need jinja2 to render the model's chat template: "
            "pip install 'rec-edge[serve]' (or jinja2)."
        ) from None

    def raise_exception(message: str) -> None:
        raise DataError(f"the model's chat template refuses this conversation: {message}")

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    environment.globals["raise_exception"] = raise_exception
    try:
        return environment.from_string(template).render(
            messages=[dict(m) for m in messages], add_generation_prompt=True, **special_tokens
        )
    except TemplateError as error:
        raise DataError(
            f"the model's chat template cannot render this conversation: {error}"
        ) from None
