"""Word recall, character error rate and the routing matrix on strings and pages whose answers are known."""

from __future__ import annotations

from pathlib import Path

import pytest

from pagescribe.eval.metrics import PageOutput, aggregate, cer, routing, score_page, word_recall
from pagescribe.eval.pageset import PageSpec


def test_word_recall_counts_each_reference_word_once_per_occurrence() -> None:
    assert word_recall("the cat sat on the mat", "The **cat** sat on the mat.") == 1.0
    assert word_recall("the cat sat on the mat", "the cat sat") == pytest.approx(3 / 6)
    assert word_recall("the the the", "the") == pytest.approx(1 / 3)
    assert word_recall("a b c d", "d c b a") == 1.0  # a bag: order is the checks' and CER's business
    assert word_recall("", "anything") is None


def test_cer_is_edits_per_reference_character_after_normalisation() -> None:
    assert cer("Hello, World", "hello,   world") == 0.0
    assert cer("abcdefghij", "abcdefghiX") == pytest.approx(0.1)
    assert cer("abcd", "") == 1.0
    assert cer("ab", "ab and a great deal more") == pytest.approx(22 / 2)  # past 1 for a long hallucination
    assert cer("  ", "x") is None


def spec(page_id: str, expected: str | None, category: str = "c") -> PageSpec:
    return PageSpec(id=page_id, file=Path(f"{page_id}.png"), category=category, expected_route=expected)  # type: ignore[arg-type]


def test_the_routing_matrix_gives_each_route_its_precision_and_recall() -> None:
    taken = {"t1": "text", "t2": "text", "t3": "vlm", "f1": "vlm", "f2": "vlm", "s1": "ocr", "b1": "blank"}
    expected = {"t1": "text", "t2": "text", "t3": "text", "f1": "vlm", "f2": "vlm", "s1": "ocr", "b1": "blank"}
    scores = [score_page(spec(i, expected[i]), PageOutput(i, "", route=r)) for i, r in taken.items()]
    scores.append(score_page(spec("x", "vlm"), PageOutput("x", "", status="missing")))
    result = routing(scores)
    assert result.matrix["text"] == {"blank": 0, "text": 2, "ocr": 0, "vlm": 1, "none": 0}
    assert result.matrix["vlm"] == {"blank": 0, "text": 0, "ocr": 0, "vlm": 2, "none": 1}
    assert result.recall["text"] == pytest.approx(2 / 3) and result.precision["text"] == 1.0
    assert result.recall["vlm"] == pytest.approx(2 / 3) and result.precision["vlm"] == pytest.approx(2 / 3)
    assert result.pages == 8 and result.accuracy == pytest.approx(6 / 8)
    assert result.avoided_model == pytest.approx(4 / 7)  # of the pages whose route is known


def test_a_category_adds_up_its_checks_and_averages_recall_over_pages_with_a_reference() -> None:
    with_ref = PageSpec(id="a", file=Path("a.png"), category="scan", reference="one two three four")
    without = PageSpec(id="b", file=Path("b.png"), category="scan")
    scores = [
        score_page(with_ref, PageOutput("a", "one two", status="ok", route="ocr", seconds=2.0)),
        score_page(without, PageOutput("b", "", status="failed", route="vlm", seconds=4.0)),
    ]
    agg = aggregate(scores)
    assert (agg.pages, agg.word_recall, agg.cer, agg.not_ok) == (2, 0.5, pytest.approx(11 / 18), 1)
    assert dict(agg.routes) == {"ocr": 1, "vlm": 1} and agg.mean_seconds == 3.0
    assert agg.check_rate is None and agg.to_json()["checks_total"] == 0
