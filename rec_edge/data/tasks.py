"""Task builders: from files and a TrainConfig to rendered, label-checked splits (torch-free)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rec_edge.config import TrainConfig
from rec_edge.data.readers import Example, read_examples
from rec_edge.data.sampling import few_shot, stratified_split
from rec_edge.data.templates import (
    BUILTIN_TEMPLATES,
    DEFAULT_DESCRIPTION,
    DEFAULT_INSTRUCTIONS,
    RAW_TEMPLATES,
    TemplateSet,
    load_template_file,
)
from rec_edge.errors import DataError
from rec_edge.tasks import task_spec

if TYPE_CHECKING:
    from rec_edge.recommend.interactions import InteractionData
    from rec_edge.recommend.protocols import PointwiseExample


@dataclass
class Split:
    texts: list[str]  # rendered through the templates (rank: the user's side)
    label_ids: list[int]
    source: str
    candidates: list[str] | None = None  # rank: the item scored against each text
    negatives: list[tuple[str, ...]] | None = None  # rank, training: never-rated items ("no")
    rated: list[frozenset[str]] | None = None  # rank, training: the titles each text's user rated


@dataclass
class ClassificationData:
    labels: list[str]
    templates: TemplateSet
    train: Split
    validation: Split
    test: Split | None
    skipped: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def resolve_templates(config: TrainConfig) -> TemplateSet:
    from_file = load_template_file(config.template_file) if config.template_file else {}
    if not config.resolved_use_templates(from_file):
        templates = [RAW_TEMPLATES[config.task]]
    else:
        templates = config.templates or from_file.get("templates") or BUILTIN_TEMPLATES[config.task]
    instruction = (
        config.instruction or from_file.get("instruction") or DEFAULT_INSTRUCTIONS[config.task]
    )
    label_names = {**from_file.get("label_names", {}), **config.label_names}
    descriptions = {**from_file.get("descriptions", {}), **config.descriptions}
    return TemplateSet(
        list(templates),
        instruction,
        label_names,
        config.task,
        descriptions,
        from_file.get("description_template") or DEFAULT_DESCRIPTION,
    )


def _read(path: str, config: TrainConfig, skipped: list[str]) -> list[Example]:
    result = read_examples(
        path,
        config.text_field,
        config.label_field,
        config.instruction_field,
        config.file_format,
        config.skip_invalid,
    )
    skipped.extend(result.skipped)
    return result.examples


def _check_labels(train: list[Example], others: dict[str, list[Example]], source: str) -> list[str]:
    counts = Counter(str(e.label) for e in train)
    if len(counts) < 2:
        only = next(iter(counts), "none")
        raise DataError(
            f"{source}: field labels form a single class ({only!r}); classification needs at least two."
        )
    problems = []
    for where, examples in others.items():
        unseen = Counter(str(e.label) for e in examples if e.label not in counts)
        for label, n in sorted(unseen.items()):
            problems.append(
                f"{where}: class {label!r} ({n} examples) has no example in the training split {source}"
            )
    if problems:
        raise DataError(problems)
    return sorted(counts)


def read_splits(
    config: TrainConfig,
) -> tuple[list[Example], list[Example], list[Example] | None, list[str]]:
    """(train, validation, test or None, skipped rows) exactly as training sees them."""
    if config.spec.ranks:
        rank_train, rank_validation, rank_test, _ = _rank_splits(config)
        return (
            rank_train,
            _limit(rank_validation, config),
            rank_test if config.rank_test else None,
            [],
        )
    skipped: list[str] = []
    train = _read(config.train_file, config, skipped)
    if config.validation_file:
        validation = _read(config.validation_file, config, skipped)
    else:
        train, validation = stratified_split(train, config.validation_fraction, config.seed)
    test = _read(config.test_file, config, skipped) if config.test_file else None
    if config.shots:  # 0: zero-shot; the file still gives the label set (and calibration texts)
        train = few_shot(train, config.shots, config.seed)
    return train, _limit(validation, config), test, skipped


def _limit(examples: list[Example], config: TrainConfig) -> list[Example]:
    if config.validation_limit is None or len(examples) <= config.validation_limit:
        return examples
    return random.Random(config.seed).sample(examples, config.validation_limit)


def build_classification(config: TrainConfig) -> ClassificationData:
    templates = resolve_templates(config)
    train, validation, test, skipped = read_splits(config)
    others = {config.validation_file or f"{config.train_file} (hold-out)": validation}
    test_source = config.test_file or (f"{config.train_file} (test)" if config.spec.ranks else None)
    if test is not None and test_source:
        others[test_source] = test
    labels = _check_labels(train, others, config.train_file)
    index = {label: i for i, label in enumerate(labels)}

    def split(examples: list[Example], source: str, mixed: bool) -> Split:
        texts = [e.text for e in examples]
        instructions = [e.instruction for e in examples]
        if task_spec(templates.task).ranks:  # the prompts were rendered from the interactions
            rendered = texts
        elif mixed:  # training mixes the templates; evaluation uses the inference template
            rendered = templates.render_mixed(texts, instructions, config.seed, labels)
        else:
            rendered = [
                templates.render(t, None, i, labels)
                for t, i in zip(texts, instructions, strict=True)
            ]
        split = Split(rendered, [index[str(e.label)] for e in examples], source)
        if task_spec(templates.task).ranks:
            split.candidates = [e.candidate or "" for e in examples]
            if examples and all(e.negatives for e in examples):
                split.negatives = [e.negatives for e in examples]
                split.rated = [e.rated for e in examples]
        return split

    return ClassificationData(
        labels=labels,
        templates=templates,
        train=split(train, config.train_file, mixed=True),
        validation=split(validation, next(iter(others)), mixed=False),
        test=split(test, test_source, mixed=False) if test is not None and test_source else None,
        skipped=skipped,
        counts={"train": len(train), "validation": len(validation), "test": len(test or [])},
    )


def run_name(config: TrainConfig) -> str:
    return config.name or Path(config.train_file).stem


def rank_rows(
    config: TrainConfig, rng: random.Random | None = None
) -> tuple[InteractionData, dict[str, list[PointwiseExample]]]:
    """A rank run's interactions and its pointwise rows: the training split less the ranking
    targets (``shots`` of them, drawn with ``rng``, seeded by ``config.seed`` if not given), the
    validation and the test split. The one definition that training and its collaborative stage
    (``recommend.collab``) share."""
    from rec_edge.recommend.interactions import read_interactions
    from rec_edge.recommend.protocols import pointwise_splits, rank_training_rows

    data = read_interactions(config.train_file, config.items_file, config.item_template)
    splits = pointwise_splits(data, history=config.history)
    train = rank_training_rows(data, splits["train"], config.history)
    if config.shots:
        draw = rng or random.Random(config.seed)
        train = draw.sample(train, min(config.shots, len(train)))
    return data, {**splits, "train": train}


def _rank_splits(
    config: TrainConfig,
) -> tuple[list[Example], list[Example], list[Example], list[str]]:
    """TALLRec pointwise examples: the user's text, the candidate title and yes/no.

    ``shots`` counts training examples in all. Each training example also carries
    ``config.negatives`` items the user never rated (seeded), scored as "no", so that the model
    learns what users pick at all and not only which of their picks they liked, and the titles the
    user rated, so that training can score every user of a batch against all the batch's negatives
    (see recommend.pairs). The leave-one-out ranking targets are left out of training, so the ranking
    evaluation never scores a pair the model was trained on.
    """
    from rec_edge.recommend.protocols import ranking_targets, rated_items, unrated_sampler

    templates = resolve_templates(config)
    rng = random.Random(config.seed)
    data, splits = rank_rows(config, rng)
    train = splits["train"]
    held_out = ranking_targets(data, config.history)  # never known to training
    draw = unrated_sampler(data, config.seed, held_out)
    rated_titles = {  # one set per user, shared by the user's examples
        user: frozenset(data.titles[item] for item in items)
        for user, items in rated_items(data, held_out).items()
    }

    def examples(rows: list[PointwiseExample], split: str, mixed: bool) -> list[Example]:
        out = []
        for row in rows:
            render = templates.preference_renderer(
                rng.choice(templates.templates) if mixed else None
            )
            out.append(
                Example(
                    render(row.preference.liked, row.preference.disliked),
                    row.label,
                    None,
                    f"{config.train_file} ({split})",
                    candidate=row.candidate,
                    negatives=tuple(
                        data.titles[draw(row.preference.user)] for _ in range(config.negatives)
                    )
                    if mixed
                    else (),
                    rated=rated_titles[row.preference.user] if mixed else frozenset(),
                )
            )
        return out

    return (
        examples(train, "train", True),
        examples(splits["validation"], "validation", False),
        examples(splits["test"], "test", False),
        [],
    )
