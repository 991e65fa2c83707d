"""The decoder's prompt pieces (torch-free, no model): the cut of a long prompt keeps the chat
format's frame, the TALLRec question's two parts join into the whole question."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rec_edge.data.prompts import RANK_INSTRUCTION, fit_prompt, rank_candidate, rank_history


def test_fit_prompt_keeps_the_frame_and_cuts_the_words() -> None:
    ids = [1, 2] + list(range(100, 110)) + [8, 9]  # frame: 2 before, 2 after the words
    assert fit_prompt(ids, 2, 2, 14) == ids
    assert fit_prompt(ids, 2, 2, 8) == [1, 2, 100, 101, 102, 103, 8, 9]
    assert fit_prompt(ids, 2, 2, 8, keep="end") == [1, 2, 106, 107, 108, 109, 8, 9]
    assert fit_prompt(ids, 2, 2, 3) == [109, 8, 9]  # no room for the words: the last tokens


@given(
    st.lists(st.integers(0, 9), min_size=0, max_size=40),
    st.integers(0, 5),
    st.integers(0, 5),
    st.integers(0, 50),
)
def test_fit_prompt_never_passes_the_limit(
    ids: list[int], head: int, tail: int, limit: int
) -> None:
    head, tail = min(head, len(ids)), min(tail, len(ids) - min(head, len(ids)))
    out = fit_prompt(ids, head, tail, limit)
    assert len(out) == min(len(ids), limit)
    if len(ids) > limit >= head + tail + 1:
        assert out[:head] == ids[:head] and out[len(out) - tail :] == ids[len(ids) - tail :]


def test_the_rank_question_in_two_parts() -> None:
    question = rank_history(["Heat", "Fargo"], [], RANK_INSTRUCTION) + rank_candidate("Babe")
    assert question.startswith(RANK_INSTRUCTION + "\n\nThe user liked: Heat; Fargo.")
    assert "The user disliked: nothing." in question
    assert question.endswith('Will the user enjoy "Babe"? Answer Yes or No.')
