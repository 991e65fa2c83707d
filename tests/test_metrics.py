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
