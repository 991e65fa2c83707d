"""TORCH: a generate run's task: Alpaca rows, chat rows or a mixture of tasks (``data.instructions``)
encoded through the model's chat format, the loss on every answer.

A conversation of one user turn is asked exactly as the bundle asks (the chat format's prefix,
the user's words, its suffix), so that ``Generator.generate`` and a classify bundle made from the
run see the tokens training saw; a longer one (a system turn, several turns) goes through the
tokenizer's chat template, each assistant turn found by rendering the conversation up to it.
Validation: the answers' mean token loss, and each classify part's label accuracy (its label
words scored by likelihood, as a classify bundle scores them).
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

from rec_edge.config import TrainConfig
from rec_edge.convert.causal import ChatFormat
from rec_edge.data.instructions import Conversation, read_instruction_data
from rec_edge.data.prompts import fit_prompt
from rec_edge.errors import DataError
from rec_edge.metrics import classification_report
from rec_edge.train.answers import DecoderTask, Row, answer_losses, likeliest, token_ids

DEFAULT_MAX_LENGTH = 512  # prompt + answer tokens, as the other decoder tasks
VALIDATION_ROWS = 200  # rows scored at the end when the run sets no --validation-limit
LOSS_BATCH = 8


def generate_task(config: TrainConfig, tokenizer: Any, fmt: ChatFormat) -> DecoderTask:
    """Rows of every part (a plain JSONL file is one part), validated on each part's hold-out."""
    data = read_instruction_data(
        config.train_file,
        config.validation_fraction,
        config.seed,
        config.shots,
        config.skip_invalid,
    )
    encoder = _Encoder(tokenizer, fmt, config.max_length or DEFAULT_MAX_LENGTH)
    rows: list[Row] = []
    skipped = list(data.skipped)
    for conversation in data.train:
        try:
            rows.append(encoder.row(conversation))
        except DataError as error:
            if not config.skip_invalid:
                raise
            skipped.append(f"{conversation.source}: {error}")
    if not rows:
        raise DataError(f"{config.train_file}: no training rows left")
    validation = data.validation
    limit = config.validation_limit or VALIDATION_ROWS
    if len(validation) > limit:
        validation = random.Random(config.seed).sample(validation, limit)

    def evaluate(model: Any) -> dict[str, Any]:
        return {"validation": _report(model, encoder, validation), "test": None}

    record = {
        "labels": None,
        "instruction": None,
        "parts": data.parts,
        "truncated": {"train": encoder.cut},
    }
    return DecoderTask(rows, evaluate, record, skipped)


class _Encoder:
    """Conversations to (ids, labels) rows in ``limit`` tokens, counting the rows it cut."""

    def __init__(self, tokenizer: Any, fmt: ChatFormat, limit: int) -> None:
        self.tokenizer, self.fmt, self.limit = tokenizer, fmt, limit
        self.frame = (len(token_ids(tokenizer, fmt.prefix)), len(token_ids(tokenizer, fmt.suffix)))
        self.cut = 0

    def asked(self, user: str) -> list[int]:
        """A single user turn as the bundle asks it."""
        return token_ids(self.tokenizer, self.fmt.prefix + user + self.fmt.suffix)

    def answer(self, text: str) -> list[int]:
        return token_ids(self.tokenizer, text + self.fmt.end_of_turn)

    def row(self, conversation: Conversation) -> Row:
        messages = conversation.messages
        if [role for role, _ in messages] == ["user", "assistant"]:
            asked, answer = self.asked(messages[0][1]), self.answer(messages[1][1])
            if (
                len(asked) + len(answer) > self.limit
            ):  # the text's end goes first, then the answer's
                self.cut += 1
                room = max(self.limit - len(answer), self.limit // 2)
                asked = fit_prompt(asked, *self.frame, room)
                answer = answer[: self.limit - len(asked)]
            return asked + answer, [-100] * len(asked) + answer
        return self._turns(messages)

    def _turns(self, messages: tuple[tuple[str, str], ...]) -> Row:
        """Every assistant turn of a longer conversation, rendered by the chat template."""
        if not getattr(self.tokenizer, "chat_template", None):
            raise DataError("a conversation of several turns needs a model with a chat template")
        pieces: list[tuple[str, bool]] = []  # (text, is an answer)
        rendered = ""
        for i, (role, content) in enumerate(messages):
            if role != "assistant":
                continue
            before = self._render(messages[:i], prompt=True)
            if not before.startswith(rendered):
                raise DataError("the chat template renders the earlier turns differently later on")
            pieces += [(before[len(rendered) :], False), (content + self.fmt.end_of_turn, True)]
            rendered = before + content + self.fmt.end_of_turn
            if not self._render(messages[: i + 1], prompt=False).startswith(rendered):
                raise DataError(
                    "the chat template changes the assistant's words (cannot learn them)"
                )
        ids: list[int] = []
        labels: list[int] = []
        for text, is_answer in pieces:
            piece = token_ids(self.tokenizer, text)
            ids += piece
            labels += piece if is_answer else [-100] * len(piece)
        if len(ids) > self.limit:  # the first turns are kept
            self.cut += 1
            ids, labels = ids[: self.limit], labels[: self.limit]
        if all(label == -100 for label in labels):
            raise DataError(f"no answer token within --max-length {self.limit}")
        return ids, labels

    def _render(self, messages: tuple[tuple[str, str], ...], prompt: bool) -> str:
        turns = [{"role": role, "content": content} for role, content in messages]
        return str(
            self.tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=prompt)
        )


def _report(model: Any, encoder: _Encoder, validation: list[Conversation]) -> dict[str, Any]:
    """The answers' mean token loss over the validation rows, and each classify part's
    accuracy (the likeliest label words after its prompt)."""
    rows = [encoder.row(c) for c in validation]
    total, count = 0.0, 0
    for start in range(0, len(rows), LOSS_BATCH):
        losses, counts = answer_losses(model, rows[start : start + LOSS_BATCH])
        total, count = total + float(losses.sum()), count + int(counts.sum())
    by_part: dict[str, list[Conversation]] = defaultdict(list)
    for conversation in validation:
        if conversation.label is not None:
            by_part[conversation.part].append(conversation)
    parts = {}
    for name, part in sorted(by_part.items()):
        labels = [label for label, _ in part[0].words]
        answers = [encoder.answer(words) for _, words in part[0].words]
        room = encoder.limit - max(len(answer) for answer in answers)
        predicted = [
            likeliest(
                model, fit_prompt(encoder.asked(c.messages[0][1]), *encoder.frame, room), answers
            )
            for c in part
        ]
        truth = [labels.index(str(c.label)) for c in part]
        parts[name] = classification_report(truth, predicted, labels)
    return {"loss": round(total / max(count, 1), 4), "n": len(rows), "parts": parts}
