from __future__ import annotations

from collections import Counter

import pytest

from rec_edge.data.readers import Example
from rec_edge.data.sampling import few_shot, stratified_split
from rec_edge.data.templates import TemplateSet, load_template_file
from rec_edge.errors import ConfigError


def test_render_and_verbalizer() -> None:
    ts = TemplateSet(
        ["{instruction} [{labels}] {text}"], "Choose.", {"card_arrival": "card not arrived"}
    )
    assert (
        ts.render("hi", labels=["card_arrival", "top_up"])
        == "Choose. [card not arrived, top up] hi"
    )


def test_mixed_templates_are_seeded_and_inference_is_fixed() -> None:
    ts = TemplateSet(["A {text}", "B {text}", "C {text}"])
    texts = [f"t{i}" for i in range(30)]
    first = ts.render_mixed(texts, [None] * 30, seed=1)
    assert first == ts.render_mixed(texts, [None] * 30, seed=1)
    assert {t[0] for t in first} == {"A", "B", "C"}
    assert ts.render("x") == "A x"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{instruction} only", "no {text} placeholder"),
        ("{text} {user}", "unknown fields \\['user'\\]"),
        ("{text", "malformed"),
    ],
)
def test_bad_templates(template: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TemplateSet([template])


def test_template_file(tmp_path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('templates = ["Q: {text}"]\ninstruction = "Go."\n[label_names]\na = "alpha"\n')
    assert load_template_file(path) == {
        "templates": ["Q: {text}"],
        "instruction": "Go.",
        "label_names": {"a": "alpha"},
    }
    path.write_text('templatez = ["x"]\n')
    with pytest.raises(ConfigError, match="unknown keys \\['templatez'\\]"):
        load_template_file(path)


def _examples() -> list[Example]:
    return [
        Example(f"{label}{i}", label)
        for label, n in (("a", 30), ("b", 10), ("c", 3))
        for i in range(n)
    ]


def test_few_shot_is_stratified_and_seeded() -> None:
    chosen = few_shot(_examples(), 5, seed=7)
    assert Counter(e.label for e in chosen) == {"a": 5, "b": 5, "c": 3}
    assert chosen == few_shot(_examples(), 5, seed=7)
    assert chosen != few_shot(_examples(), 5, seed=8)


def test_stratified_split_keeps_every_class() -> None:
    train, held = stratified_split(_examples(), 0.2, seed=0)
    assert Counter(e.label for e in held) == {"a": 6, "b": 2, "c": 1}
    assert not {e.text for e in train} & {e.text for e in held}
    assert len(train) + len(held) == 43
