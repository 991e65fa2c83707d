import numpy as np
import pytest

from rec_edge.metrics import classification_report


def test_against_hand_computed_values() -> None:
    # class a: tp=2 fp=1 fn=0 -> P=2/3 R=1 F1=0.8; class b: tp=1 fp=0 fn=1 -> P=1 R=0.5 F1=2/3; c never seen
    report = classification_report([0, 0, 1, 1], [0, 0, 1, 0], ["a", "b", "c"])
    assert report["accuracy"] == 0.75
    assert report["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert report["per_class"]["a"] == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    )
    assert "c" not in report["per_class"]


def test_empty_is_an_error() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        classification_report([], [], ["a"])


def test_auc_difference_se_is_delongs_paired_error() -> None:
    """Zero for a score against itself; close to the bootstrap's spread of the paired difference
    (ties included: one score is rounded); zero without two rows of each label."""
    from rec_edge.metrics import auc_difference_se, roc_auc

    rng = np.random.default_rng(1)
    labels = (rng.random(400) < 0.4).astype(int)
    first = np.round(labels + rng.normal(0, 1.5, 400), 1)
    second = first + labels * 0.3 + rng.normal(0, 0.8, 400)
    assert auc_difference_se(labels, first, first) == 0.0
    se = auc_difference_se(labels, second, first)
    draws = [rng.integers(0, 400, 400) for _ in range(500)]
    spread = np.std([roc_auc(labels[i], second[i]) - roc_auc(labels[i], first[i]) for i in draws])
    assert 0.9 < se / spread < 1.1
    assert auc_difference_se([1, 0, 0], [0.9, 0.1, 0.2], [0.1, 0.9, 0.2]) == 0.0
