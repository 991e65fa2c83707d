"""TORCH-FREE: instruction data for a language model, read into conversations.

Three inputs, one output (``Conversation``: messages that end with the assistant's answer):

- Alpaca rows, JSONL: ``{"instruction", "input" (optional), "output"}``; the user's turn is the
  instruction, then the input (``data.prompts.user_turn``), the answer is ``output``;
- chat rows, JSONL: ``{"messages": [{"role", "content"}, ...]}`` with roles system, user and
  assistant, ending with an assistant turn (every assistant turn is an answer to learn);
- a mixture, TOML: several files, each with its own task and instruction, so that one run learns
  many tasks (InstructRec's point)::

      [[parts]]
      file = "bbc/train.jsonl"          # relative to the TOML file
      task = "classify"                 # labelled texts; the answer is the label's words
      instruction = "What is this article about? Answer with one of: {labels}."
      shots = 64                        # per label (generate parts: rows); default all
      label_names = { tech = "technology" }

      [[parts]]
      file = "alpaca.jsonl"             # task = "generate" (the default): Alpaca or chat rows

  ``{labels}`` in a classify part's instruction lists the label words, in a new seeded order for
  each row (so that the model reads the list instead of learning its order).

Every problem names its file and line (or the mixture's part), as ``data.readers`` does.
"""

from __future__ import annotations

import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rec_edge.data.prompts import label_instruction, user_turn
from rec_edge.data.readers import Example, json_rows, read_examples
from rec_edge.data.sampling import few_shot, stratified_split
from rec_edge.errors import DataError
from rec_edge.tasks import task_spec

ROLES = ("system", "user", "assistant")
PART_TASKS = ("classify", "generate")
PART_KEYS = {"file", "task", "instruction", "shots", "label_names", "text_field", "label_field"}


@dataclass(frozen=True)
class Conversation:
    """Messages (role, content) that end with an assistant turn; ``label`` and ``words``: a
    classify part's label and every label's words, for its accuracy."""

    messages: tuple[tuple[str, str], ...]
    source: str  # "file:line"
    part: str  # the mixture part's name (its file's stem); a plain file's stem
    label: str | None = None
    words: tuple[tuple[str, str], ...] = ()  # classify: (label, words) of every label


@dataclass
class InstructionData:
    """Training and validation conversations, the skipped rows, and each part's record."""

    train: list[Conversation]
    validation: list[Conversation]
    skipped: list[str] = field(default_factory=list)
    parts: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Part:
    """One file of a mixture (a plain JSONL file is a mixture of one generate part)."""

    file: Path
    task: str = "generate"
    instruction: str | None = None
    shots: int | None = None
    label_names: dict[str, str] = field(default_factory=dict)
    text_field: str = "text"
    label_field: str = "label"

    @property
    def name(self) -> str:
        return self.file.stem if self.file.stem not in ("train", "data") else self.file.parent.name


def read_instruction_data(
    path: str | Path,
    validation_fraction: float,
    seed: int,
    shots: int | None = None,
    skip_invalid: bool = False,
) -> InstructionData:
    """A generate run's data: a JSONL file of Alpaca or chat rows, or a TOML mixture. Each part
    holds out ``validation_fraction`` (seeded; stratified for classify parts) before its
    ``shots`` are drawn; ``shots`` applies to a plain file, a part says its own."""
    path = Path(path)
    parts = _mixture(path) if path.suffix.lower() == ".toml" else [Part(path, shots=shots)]
    data = InstructionData([], [])
    for part in parts:
        train, validation = _read_part(part, validation_fraction, seed, skip_invalid, data.skipped)
        data.train += train
        data.validation += validation
        data.parts.append(
            {
                "name": part.name,
                "file": str(part.file),
                "task": part.task,
                "instruction": part.instruction,
                "train": len(train),
                "validation": len(validation),
            }
        )
    random.Random(seed).shuffle(data.train)
    return data


def _mixture(path: Path) -> list[Part]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a valid TOML mixture ({error})") from None
    rows = spec.get("parts")
    if not isinstance(rows, list) or not rows:
        raise DataError(f"{path}: a mixture lists its files as [[parts]] tables (none found)")
    problems: list[str] = []
    parts = []
    for number, row in enumerate(rows, start=1):
        where = f"{path}: part {number}"
        unknown = sorted(set(row) - PART_KEYS)
        if unknown:
            problems.append(f"{where}: unknown keys {unknown} (known: {sorted(PART_KEYS)})")
        if not isinstance(row.get("file"), str):
            problems.append(f"{where}: 'file' (a path relative to the mixture) is missing")
            continue
        task = row.get("task", "generate")
        if task not in PART_TASKS:
            problems.append(f"{where}: task={task!r} (allowed: {', '.join(PART_TASKS)})")
        shots = row.get("shots")
        if shots is not None and (not isinstance(shots, int) or shots < 1):
            problems.append(f"{where}: shots={shots!r} (a whole number >= 1)")
        names = row.get("label_names", {})
        if not isinstance(names, dict) or not all(isinstance(v, str) for v in names.values()):
            problems.append(f"{where}: label_names is a table of label = words")
            continue
        known = {k: row[k] for k in ("instruction", "text_field", "label_field") if k in row}
        parts.append(
            Part(
                (path.parent / row["file"]).resolve(), task, shots=shots, label_names=names, **known
            )
        )
    if problems:
        raise DataError(problems)
    return parts


def _read_part(
    part: Part, fraction: float, seed: int, skip_invalid: bool, skipped: list[str]
) -> tuple[list[Conversation], list[Conversation]]:
    if task_spec(part.task).labelled:
        return _classify_part(part, fraction, seed, skip_invalid, skipped)
    rows = read_conversations(part.file, part.name, skip_invalid, skipped)
    rng = random.Random(seed)
    rows = rng.sample(rows, len(rows))
    held = min(max(1, round(len(rows) * fraction)), len(rows) - 1) if len(rows) > 1 else 0
    validation, train = rows[:held], rows[held:]
    if part.shots:
        train = train[: part.shots]
    return train, validation


def _classify_part(
    part: Part, fraction: float, seed: int, skip_invalid: bool, skipped: list[str]
) -> tuple[list[Conversation], list[Conversation]]:
    result = read_examples(part.file, part.text_field, part.label_field, skip_invalid=skip_invalid)
    skipped.extend(result.skipped)
    labels = sorted({str(e.label) for e in result.examples})
    if len(labels) < 2:
        raise DataError(f"{part.file}: a classify part needs at least two labels ({labels})")
    words = {label: part.label_names.get(label, label.replace("_", " ")) for label in labels}
    train, validation = stratified_split(result.examples, fraction, seed)
    if part.shots:
        train = few_shot(train, part.shots, seed)
    rng = random.Random(seed)

    def asked(example: Example) -> Conversation:
        listed = list(words.values())
        rng.shuffle(listed)  # the order of the options is no cue
        user = user_turn(example.text, label_instruction(part.instruction, listed))
        answer = words[str(example.label)]
        return Conversation(
            (("user", user), ("assistant", answer)),
            example.source,
            part.name,
            str(example.label),
            tuple(words.items()),
        )

    return [asked(e) for e in train], [asked(e) for e in validation]


def read_conversations(
    path: Path, part: str, skip_invalid: bool = False, skipped: list[str] | None = None
) -> list[Conversation]:
    """Every Alpaca or chat row of a JSONL file; one DataError lists every bad row (or, with
    ``skip_invalid``, they go to ``skipped``)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not valid UTF-8 at byte {error.start}; re-encode it") from None
    rows: list[Conversation] = []
    problems: list[str] = []
    for number, row in json_rows(text):
        where = f"{path}:{number}"
        try:
            if isinstance(row, str):
                raise DataError(row)
            rows.append(Conversation(_messages(row), where, part))
        except DataError as error:
            message = f"{where}: {error}"
            (skipped if skip_invalid and skipped is not None else problems).append(message)
    if problems:
        raise DataError(problems)
    if not rows:
        raise DataError(f"{path}: no rows (the file is empty or every row was skipped)")
    return rows


def _messages(row: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    if "messages" in row:
        messages = row["messages"]
        if not isinstance(messages, list) or not messages:
            raise DataError("'messages' must be a non-empty list of {role, content}")
        turns = []
        for i, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            content = message.get("content") if isinstance(message, dict) else None
            if role not in ROLES or not isinstance(content, str):
                raise DataError(
                    f"messages[{i}] must be {{role, content}} with role one of {', '.join(ROLES)} "
                    "and content a string"
                )
            turns.append((role, content))
        if turns[-1][0] != "assistant" or not turns[-1][1].strip():
            raise DataError("the last message must be the assistant's answer (role assistant)")
        return tuple(turns)
    if "instruction" in row and "output" in row:
        instruction, given, output = row["instruction"], row.get("input") or "", row["output"]
        if not all(isinstance(v, str) for v in (instruction, given, output)):
            raise DataError("'instruction', 'input' and 'output' must be strings")
        if not output.strip() or not (instruction.strip() or given.strip()):
            raise DataError("'output' and 'instruction' (or 'input') must not be empty")
        user = user_turn(given, instruction) if given.strip() else instruction
        return (("user", user), ("assistant", output))
    raise DataError(
        f"expected Alpaca fields (instruction, input, output) or chat 'messages' "
        f"(fields: {', '.join(map(str, row)) or 'none'})"
    )
