"""Natural-language instruction templates (torch-free: the runtime renders them too).

A template is a string with named placeholders: ``{instruction}``, ``{text}``, ``{labels}`` (the
verbalized label names) and any task field. A task carries several templates: training mixes them
(InstructRec wrote 39 and mixed them), inference always uses the first.
"""

from __future__ import annotations

import json
import random
import string
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rec_edge.errors import ConfigError

DEFAULT_INSTRUCTION = "Decide which category this text belongs to."
# What the description head embeds for a label without a written description: a sentence reads
# closer to a text than a bare word (zero-shot BBC News 0.79 against 0.72, benchmarks/RESULTS.md).
DEFAULT_DESCRIPTION = "This is about {label}."
DEFAULT_INSTRUCTIONS = {
    "classify": DEFAULT_INSTRUCTION,
    "rank": "Given the user's preferences, find an item the user will enjoy.",
}
# task -> (fields a template must have one of, fields it may use)
TASK_FIELDS = {
    "classify": ({"text"}, {"text", "instruction", "labels"}),
    "rank": ({"liked"}, {"instruction", "liked", "disliked", "n_liked", "n_rated"}),
}

BUILTIN_TEMPLATES: dict[str, list[str]] = {
    "classify": [
        "{instruction}\nText: {text}",
        "Instruction: {instruction}\nInput: {text}",
        "{text}\n\n{instruction}",
        "Read the following and answer. {instruction}\n{text}",
    ],
    # InstructRec / TALLRec style: the instruction and the user's stated preference. The candidate
    # item is encoded on its own and scored against this text (a two-tower model), so that one
    # user's history is encoded once for all of their candidates.
    "rank": [
        "{instruction}\nOf the last {n_rated} titles the user rated, they liked {n_liked}: {liked}.\nThey disliked: {disliked}.",
        "Liked ({n_liked} of {n_rated}): {liked}. Disliked: {disliked}. {instruction}",
        "A user enjoyed {liked} and did not enjoy {disliked} ({n_liked} of {n_rated} liked). {instruction}",
    ],
}
RAW_TEMPLATES = {"classify": "{text}", "rank": "{liked} | {disliked}"}


def template_fields(template: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise ConfigError(
            f"Template {template!r} is malformed ({error}); escape braces as {{{{ }}}}."
        ) from None


def _trial_render(template: str, allowed: set[str]) -> list[str]:
    """A template whose fields are known can still fail to render (a format spec such as
    ``{text:d}`` or ``{text:{instruction}}``): find out now, not at the first prediction."""
    try:
        template.format(**({name: "x" for name in allowed} | {"n_liked": 1, "n_rated": 2}))
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as error:
        return [
            f"template {template!r} cannot be rendered ({error}); use plain {{field}} placeholders"
        ]
    return []


@dataclass
class TemplateSet:
    """The templates of one task, with the instruction and verbalizer they are rendered with."""

    templates: list[str]
    instruction: str = DEFAULT_INSTRUCTION
    label_names: dict[str, str] = field(default_factory=dict)
    task: str = "classify"  # classify: {text}; rank: {liked}, {disliked} (the user's side)
    descriptions: dict[str, str] = field(default_factory=dict)  # label -> a sentence, as written
    description_template: str = DEFAULT_DESCRIPTION  # {label}: the verbalized name

    def __post_init__(self) -> None:
        if not self.templates:
            raise ConfigError("A TemplateSet needs at least one template.")
        if self.task not in TASK_FIELDS:
            raise ConfigError(
                f"Unknown template task {self.task!r} (known: {', '.join(TASK_FIELDS)})."
            )
        required, allowed = TASK_FIELDS[self.task]
        problems: list[str] = []
        for template in self.templates:
            known = len(problems)
            names = template_fields(template)
            if not required & set(names):
                problems.append(
                    f"template {template!r} has no {{{sorted(required)[0]}}} placeholder"
                )
            unknown = set(names) - allowed
            if unknown:
                problems.append(
                    f"template {template!r} uses unknown fields {sorted(unknown)} (known: {', '.join(sorted(allowed))})"
                )
            if len(problems) == known:
                problems += _trial_render(template, allowed)
        if set(template_fields(self.description_template)) != {"label"}:
            problems.append(
                f"description template {self.description_template!r} must have exactly the "
                "{label} placeholder"
            )
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def inference_template(self) -> str:
        return self.templates[0]

    def verbalize(self, label: str) -> str:
        return self.label_names.get(label, label.replace("_", " "))

    def describe(self, label: str) -> str:
        """What the description head embeds for ``label``: its written description, else the
        description template around its verbalized name."""
        return self.descriptions.get(label) or self.description_template.format(
            label=self.verbalize(label)
        )

    def render(
        self,
        text: str,
        template: str | None = None,
        instruction: str | None = None,
        labels: Sequence[str] = (),
    ) -> str:
        return self.renderer(labels, template, instruction)(text)

    def renderer(
        self,
        labels: Sequence[str] = (),
        template: str | None = None,
        instruction: str | None = None,
    ) -> Callable[[str], str]:
        """``text -> prompt`` with everything but the text bound once (the runtime's hot path)."""
        fmt = (template or self.inference_template).format
        labels_text = ", ".join(self.verbalize(label) for label in labels)
        bound_instruction = instruction or self.instruction
        return lambda text: fmt(text=text, instruction=bound_instruction, labels=labels_text)

    def preference_renderer(
        self, template: str | None = None
    ) -> Callable[[Sequence[str], Sequence[str]], str]:
        """``(liked titles, disliked titles) -> the user's text`` for the rank task."""
        fmt = (template or self.inference_template).format

        def render(liked: Sequence[str], disliked: Sequence[str]) -> str:
            return fmt(
                instruction=self.instruction,
                liked="; ".join(liked) or "nothing yet",
                disliked="; ".join(disliked) or "nothing",
                n_liked=len(liked),
                n_rated=len(liked) + len(disliked),
            )

        return render

    def render_mixed(
        self,
        texts: Sequence[str],
        instructions: Sequence[str | None],
        seed: int,
        labels: Sequence[str] = (),
    ) -> list[str]:
        """Training: each example through a template drawn with a seeded generator."""
        rng = random.Random(seed)
        return [
            self.render(text, rng.choice(self.templates), instruction, labels)
            for text, instruction in zip(texts, instructions, strict=True)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "templates": self.templates,
            "instruction": self.instruction,
            "label_names": self.label_names,
            "task": self.task,
            "descriptions": self.descriptions,
            "description_template": self.description_template,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TemplateSet:
        task = data.get("task", "classify")
        return cls(
            list(data["templates"]),
            data.get("instruction") or DEFAULT_INSTRUCTIONS.get(task, DEFAULT_INSTRUCTION),
            dict(data.get("label_names") or {}),
            task,
            dict(data.get("descriptions") or {}),
            data.get("description_template") or DEFAULT_DESCRIPTION,
        )


TEMPLATE_FILE_KEYS = (
    "templates",
    "instruction",
    "label_names",
    "descriptions",
    "description_template",
)


def load_template_file(path: str | Path) -> dict[str, Any]:
    """Read ``templates``, ``instruction``, ``label_names``, ``descriptions`` (label -> sentence)
    and ``description_template`` from a TOML or JSON file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Template file {path} not found.")
    try:
        data = (
            tomllib.loads(path.read_text("utf-8"))
            if path.suffix == ".toml"
            else json.loads(path.read_text("utf-8"))
        )
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"Template file {path} is not valid {path.suffix.lstrip('.').upper()}: {error}"
        ) from None
    unknown = set(data) - set(TEMPLATE_FILE_KEYS)
    if unknown:
        raise ConfigError(
            f"Template file {path}: unknown keys {sorted(unknown)} (known: {', '.join(TEMPLATE_FILE_KEYS)})."
        )
    for key in ("label_names", "descriptions"):
        table = data.get(key, {})
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise ConfigError(
                f"Template file {path}: '{key}' must be a table of label = \"words\"."
            )
    if "templates" in data and (
        not isinstance(data["templates"], list)
        or not all(isinstance(t, str) for t in data["templates"])
    ):
        raise ConfigError(f"Template file {path}: 'templates' must be a list of strings.")
    return dict(data)
