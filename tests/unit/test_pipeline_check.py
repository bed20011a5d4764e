"""The output check: empty answers and repetition loops fail it, ordinary transcriptions pass."""

from __future__ import annotations

import pytest

from pagescribe.pipeline.check import LoopRule, check_output, find_loop, is_blank
from pagescribe.types import ImageInput

PROSE = (
    "The process flow starts with ingestion, then rendering and description. Revenue grew by 12 percent "
    "in the northern region, while costs stayed flat. The prices are the following: 3.50 EUR for a widget, "
    "7.25 EUR for a gadget."
)
TABLE = "| Item | Price |\n|---|---|\n| Widget | 3.50 |\n| Gadget | 7.25 |\n| Gizmo | 1.00 |"


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_output_fails(text: str) -> None:
    assert check_output(text) == "empty output"


@pytest.mark.parametrize("text", [PROSE, TABLE, "Short answer.", "ok ok ok"])
def test_ordinary_transcriptions_pass(text: str) -> None:
    assert check_output(text) is None


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        (
            PROSE + " the the the the the the the the the the the the the the the the the the the the the the "
            "the the the the the the the the the the",
            "the",
        ),
        (PROSE + " " + "Revenue grew by 12 percent. " * 6, "Revenue grew by 12 percent."),
        (PROSE + "\n" + "| 0 | 0 |\n" * 40, "| 0 |"),
        ("=" * 200, "="),
    ],
)
def test_a_tail_that_repeats_is_a_loop(text: str, unit: str) -> None:
    problem = check_output(text)
    assert problem is not None and problem.startswith("repetition loop")
    found = find_loop(text)
    assert found is not None and unit in found[0] * 2


def test_the_rule_sets_how_long_a_loop_must_be() -> None:
    text = PROSE + " again" * 8
    assert find_loop(text) is None
    assert find_loop(text, rule=LoopRule(min_span=40, min_repeats=4)) is not None


def test_a_page_of_one_colour_is_blank_and_a_page_with_a_mark_is_not() -> None:
    white = bytearray(b"\xff" * (50 * 40 * 3))
    assert is_blank(ImageInput(50, 40, bytes(white)))
    white[3000:3003] = b"\x00\x00\x00"
    assert not is_blank(ImageInput(50, 40, bytes(white)))
