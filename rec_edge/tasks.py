"""Torch-free: the tasks rec-edge knows, each declared once with what it means to the code that
reads, trains, exports, serves and scores it. The one module that branches on a task's name:
everywhere else asks ``task_spec(name)`` for the property it needs.

A new task is a new ``TaskSpec`` here, then its pieces in the tables that name it: the runtime's
classes (``Predictor``/``Generator`` subclasses), ``SERVED_TASKS``, ``SCORED_TASKS``, the
decoder's training ``TASKS``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rec_edge.errors import ConfigError


@dataclass(frozen=True)
class TaskSpec:
    name: str
    labelled: bool  # the answer is one of a label set (2 or more) read from the data
    ranks: bool  # users' histories against items: an item index, a time split, Yes/No answers
    writes: bool  # the answer is free text: no label set, no accuracy gate
    metric: str  # the key of the gate's measure on held-out rows ("" when none)
    metric_name: str  # the same for people
    validation: str  # how a run holds rows out to choose and gate on
    answer_labels: tuple[str, ...] | None  # fixed answer classes (rank: no / yes), else None
    usage: str  # the Python line a model card shows


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="classify",
            labelled=True,
            ranks=False,
            writes=False,
            metric="accuracy",
            metric_name="label accuracy",
            validation="hold-out",
            answer_labels=None,
            usage='print(predictor.predict(["your text"])[0].label)',
        ),
        TaskSpec(
            name="rank",
            labelled=False,
            ranks=True,
            writes=False,
            metric="auc",
            metric_name="AUC",
            validation="time-split validation",
            answer_labels=("no", "yes"),
            usage='print(predictor.rank({"liked": ["A", "B"], "disliked": ["C"]}, ["D", "E", "F"]))',
        ),
        TaskSpec(
            name="generate",
            labelled=False,
            ranks=False,
            writes=True,
            metric="",
            metric_name="agreement with fp32",
            validation="",
            answer_labels=None,
            usage='print(generator.generate("your instruction"))',
        ),
    )
}


def task_spec(name: str) -> TaskSpec:
    """The declaration of task ``name``; an unknown name is a ConfigError listing the known."""
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r} (known: {', '.join(TASKS)})") from None
