"""TORCH-FREE: the words a decoder bundle is asked in, one definition for training and the runtime.

A user turn is ``USER_TEMPLATE`` (an instruction, then the input). A rank question (TALLRec's
pointwise form) is cut in two so that one user's history is encoded once for all of their
candidates: the history part ends where the candidate's title begins, and the candidate part
holds the title and the question. Training tokenizes the two parts apart and joins the ids, as
the runtime does, so that both see the same tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

USER_TEMPLATE = "{instruction}\n\n{text}"
RANK_INSTRUCTION = (
    "Given the titles a user liked and disliked, say whether they will enjoy the next one."
)
RANK_HISTORY = 'The user liked: {liked}.\nThe user disliked: {disliked}.\nWill the user enjoy "'
RANK_CANDIDATE = '{candidate}"? Answer Yes or No.'
RANK_ANSWERS = ("Yes", "No")  # the first token of each: P(Yes) / (P(Yes) + P(No))


def user_turn(text: str, instruction: str | None) -> str:
    """The user's words: ``text`` after ``instruction`` (the text alone without one)."""
    return USER_TEMPLATE.format(instruction=instruction, text=text) if instruction else text


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
