"""TORCH-FREE: a rank request (a user's liked and disliked titles, the candidates, how many to
keep): its fields, every problem of a decoded one, and its JSON form. Shared by the Predictor,
the Generator, `rec-edge predict`, `score` and `serve`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rec_edge.errors import DataError


@dataclass(frozen=True)
class RankRequest:
    """One user's request: the titles they liked and disliked, the candidates, how many to keep."""

    liked: list[str]
    disliked: list[str]
    candidates: list[str]
    k: int | None = None

    @property
    def history(self) -> dict[str, list[str]]:
        return {"liked": self.liked, "disliked": self.disliked}


def whole_number(value: Any) -> int | None:
    """``value`` as an int when it is a whole number (JSON's 3 and 3.0 alike, as JSON Schema's
    "integer"), else None (true and false are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


RANK_FIELDS = ("liked", "disliked", "candidates", "k")


def rank_request_problems(body: Any) -> list[tuple[str | None, str]]:
    """Every problem of a decoded rank request, each as (field, message); none: it is usable."""
    if not isinstance(body, dict) or "candidates" not in body:
        return [
            (None, "expected a JSON object with 'candidates' and optional 'liked', 'disliked', 'k'")
        ]
    problems: list[tuple[str | None, str]] = [
        (key, f"unknown field (known: {', '.join(RANK_FIELDS)})")
        for key in sorted(set(body) - set(RANK_FIELDS))
    ]
    problems += [
        (key, "must be a list of strings")
        for key in ("liked", "disliked", "candidates")
        if not isinstance(body.get(key, []), list)
        or not all(isinstance(t, str) for t in body.get(key, []))
    ]
    k = body.get("k")
    if k is not None and (whole_number(k) is None or k < 1):
        problems.append(("k", f"must be a positive integer, got {k!r}"))
    return problems


def rank_request(body: dict[str, Any]) -> RankRequest:
    """A RankRequest from a decoded body that ``rank_request_problems`` found usable."""
    return RankRequest(
        list(body.get("liked", [])),
        list(body.get("disliked", [])),
        list(body["candidates"]),
        whole_number(body.get("k")),
    )


def parse_rank_request(text: str, where: str = "request") -> RankRequest:
    """``{"liked": [...], "disliked": [...], "candidates": [...], "k": 10}`` from JSON; the
    error names ``where`` and the field at fault."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: not valid JSON ({error})") from None
    except RecursionError:
        raise DataError(f"{where}: JSON nested too deeply") from None
    problems = rank_request_problems(body)
    if problems:
        raise DataError(
            [
                f"{where}: {message}" if field is None else f"{where}: '{field}' {message}"
                for field, message in problems
            ]
        )
    return rank_request(body)
