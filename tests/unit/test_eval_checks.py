"""The page checks of `pagescribe eval`: each passes on a right transcription and fails, saying why, on a wrong one."""

from __future__ import annotations

import re

import pytest

from pagescribe.eval.checks import CheckSyntaxError, find, parse_check, parse_checks, run_checks
from pagescribe.eval.normalize import normalize, normalize_lines, words

RIGHT = """# Harbour Lights

The lighthouse at **Kestrel Point** was first lit in 1842, after a winter in which four ships were lost.
The station was auto-
mated in 1987.

| Region | Units | Revenue |
|--------|------:|--------:|
| North  | 1,204 | 38.5    |
| East   | 1,530 | 47.9    |

Nickel: 41.7 kt, Tin: 18.4 kt
"""

# The same page as a poor model might write it: a figure misread, a row's cells scattered, a sentence missing.
WRONG = """Harbour Lights
The station was automated in 1987. The lighthouse at Kestrel Point was first lit in 1824.
North East
1,204 1,530 38.5 47.9
Nickel: 14.7 kt, Tin: 18.4 kt. Page 7
"""

CHECKS = [
    {"type": "present", "text": "first lit in 1842"},
    {"type": "absent", "text": "Page 7"},
    {"type": "order", "before": "Kestrel Point", "after": "automated in 1987"},
    {"type": "table", "cells": ["North", "1,204", "38.5"]},
    {"type": "number", "label": "Nickel", "value": 41.7},
]


def results(text: str) -> dict[str, tuple[bool, str]]:
    checks = parse_checks(CHECKS)
    return {c["type"]: (r.passed, r.why) for c, r in zip(CHECKS, run_checks(checks, text), strict=True)}


def test_every_check_passes_on_the_right_transcription() -> None:
    assert {kind: passed for kind, (passed, _) in results(RIGHT).items()} == dict.fromkeys(
        ("present", "absent", "order", "table", "number"), True
    )


def test_every_check_fails_on_a_wrong_transcription_and_says_why() -> None:
    got = results(WRONG)
    assert {kind: passed for kind, (passed, _) in got.items()} == dict.fromkeys(
        ("present", "absent", "order", "table", "number"), False
    )
    assert got["present"][1].startswith("not found")
    assert got["absent"][1].startswith("'Page 7' found at character")
    assert got["order"][1] == "'automated in 1987' comes before 'Kestrel Point'"
    assert got["table"][1].startswith("not in any one row: missing")
    assert got["number"][1] == "the label's number is 14.7"


def test_markup_case_quotes_dashes_and_hyphenation_do_not_count() -> None:
    assert normalize("**Bold** _it_ `code`  “Quoted” — it’s\n## Next") == 'bold it code "quoted" - it\'s next'
    assert normalize("auto-\nmated, ﬁne") == "automated, fine"
    assert normalize("<b>Total</b><br>sum") == "total sum"
    assert words("Revenue grew 12.5 % to 1,200 units.") == ["revenue", "grew", "12.5", "to", "1,200", "units"]


def test_a_short_text_must_match_whole_words_and_a_long_one_may_have_a_slip() -> None:
    assert find("12", normalize("it was 120 units")) == []
    assert find("12", normalize("it was 12 units")) == [7]
    sentence = normalize("the keeper kept a logbook of every vessel that passed")
    assert find(sentence, normalize("The keeper kept a 1ogbook of every vessel that passed.")) != []
    assert find(sentence, normalize("The keeper kept a diary of some ships that sailed by.")) == []
    assert find(sentence, normalize("The keeper kept a 1ogbook of every vessel that passed."), max_diffs=0) == []
    year = normalize("the lighthouse was first lit in 1842")
    assert find(year, normalize("The lighthouse was first lit in 1842.")) == [0]
    assert find(year, normalize("The lighthouse was first lit in 1824.")) == []  # a wrong figure is no slip
    assert find(year, normalize("The 1ighthouse was first lit in 1842.")) == [0]
    assert find(year, normalize("The lighthouse was first lit in 18420.")) == []


def test_a_present_check_says_how_close_the_nearest_text_came() -> None:
    check = parse_check({"type": "present", "text": "the range of the light grew from fourteen miles"})
    (result,) = run_checks([check], "The range of the lamp was short.")
    assert not result.passed
    assert re.fullmatch(r"not found: the closest stretch is \d+ % alike \(96 % needed\)", result.why)


def test_a_table_row_may_be_markdown_html_or_a_plain_line() -> None:
    check = parse_check({"type": "table", "cells": ["East", "1,530", "47.9"]})
    html = "<table><tr><td>North</td><td>1,204</td><td>38.5</td></tr><tr><td>East</td><td>1,530</td><td>47.9</td></tr>"
    for text in (RIGHT, html, "East 1,530 47.9\nWest 764 22.6"):
        assert run_checks([check], text)[0].passed, text
    assert normalize_lines(html) == ["north 1,204 38.5", "east 1,530 47.9"]
    anywhere = parse_check({"type": "table", "cells": ["East", "47.9"], "same_row": False})
    assert run_checks([anywhere], "East\n\n47.9")[0].passed
    assert not run_checks([check], "East\n1,530\n47.9")[0].passed


def test_a_number_is_read_after_its_label_else_just_before_it() -> None:
    check = parse_check({"type": "number", "label": "Zinc", "value": "1,200"})
    assert run_checks([check], "| Zinc | 1200 |")[0].passed
    assert run_checks([check], "1,200 t of zinc")[0].passed
    (far,) = run_checks([check], "Zinc" + " word" * 20 + " 1200")
    assert not far.passed and far.why == "no number within 40 characters of the label"
    (missing,) = run_checks([check], "Copper 1200")
    assert missing.why == "label 'Zinc' not found"


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ("present", "a check is a JSON object, not str"),
        ({"type": "heading", "text": "x"}, "type 'heading' is not one of present, absent, order, table, number"),
        ({"type": "order", "before": "a"}, "a order check needs 'after'"),
        ({"type": "present", "text": "a", "case": True}, "a present check has no field 'case'"),
        ({"type": "present", "text": "  "}, "'text' is a non-empty text"),
        ({"type": "table", "cells": []}, "'cells' is a non-empty list of texts"),
        ({"type": "number", "label": "Q3", "value": "lots"}, "'lots' is not a number"),
        ({"type": "present", "text": "a", "max_diffs": -1}, "'max_diffs' is a whole number, 0 or more"),
    ],
)
def test_a_malformed_check_is_named(check: object, message: str) -> None:
    with pytest.raises(CheckSyntaxError) as info:
        parse_checks([{"type": "present", "text": "fine"}, check])
    assert str(info.value) == f"checks[1]: {message}"
