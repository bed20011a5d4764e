"""Pass/fail checks on one page's text, in the style of olmOCR-bench: simple facts a reader can verify.

``present``   the text appears                     ``absent``  it does not (a header, a page number, a hallucination)
``order``     ``before`` appears before ``after``   ``table``   cell values appear together in one table row
``number``    a figure's key number sits next to its label (the value a bar chart labels, say)

Both sides are normalised first (``normalize``). A short text must match exactly, on word boundaries (``12`` is
not found in ``120``); a longer one may differ by up to ``max_diffs`` edits, by default ``FUZZ`` of its length
(rounded down), so one OCR slip in a sentence still counts as found, as in olmOCR-bench (rapidfuzz's
``partial_ratio`` alignment), but the numbers in it must all be right: ``1824`` for ``1842`` is never a slip.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from rapidfuzz import fuzz

from pagescribe.eval.normalize import normalize, normalize_lines

#: The share of a text's characters that may differ, by default, where it is looked for.
FUZZ = 0.05
#: Characters on each side of a ``number`` check's label in which its value is looked for.
NUMBER_WINDOW = 40

CheckType = Literal["present", "absent", "order", "table", "number"]
CHECK_TYPES: tuple[CheckType, ...] = ("present", "absent", "order", "table", "number")
# The numbers of a text: digits not stuck to letters (the 1 of an OCR'd "1ogbook" is a letter gone wrong).
_NUMBERS_IN = re.compile(r"(?<![^\W\d_])\d+(?:[.,]\d+)*(?![^\W\d_])")
_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check on one page: whether it passed, and why in words a person can act on."""

    check: str
    passed: bool
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "passed": self.passed, "why": self.why}


class Check(Protocol):
    """A fact about a page. ``run`` gets the page's text already normalised (``normalize``) and the raw text."""

    @property
    def type(self) -> CheckType:
        """Which kind of check it is."""
        ...

    @property
    def max_diffs(self) -> int | None:
        """Edits a match may have (None: ``FUZZ`` of the text's length)."""
        ...

    def describe(self) -> str:
        """The check in a few words, e.g. ``present 'Total revenue'``."""
        ...

    def run(self, text: str, raw: str) -> CheckResult: ...


def find(query: str, text: str, *, max_diffs: int | None = None) -> list[int]:
    """Where the normalised ``query`` starts in the normalised ``text``: every exact occurrence on word
    boundaries, else the best fuzzy one within ``max_diffs`` edits (default ``FUZZ`` of its length), else none."""
    if not query:
        return []
    left = r"(?<!\w)" if query[0].isalnum() else ""
    right = r"(?!\w)" if query[-1].isalnum() else ""
    exact = [m.start() for m in re.finditer(left + re.escape(query) + right, text)]
    diffs = allowed_diffs(query, max_diffs)
    if exact or diffs == 0 or len(text) < len(query) - diffs:
        return exact
    cutoff = 100.0 * (1.0 - diffs / len(query))
    hit = fuzz.partial_ratio_alignment(query, text, score_cutoff=cutoff)
    if hit is None:
        return []
    start, end = hit.dest_start, hit.dest_end
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    if _NUMBERS_IN.findall(text[start:end]) != _NUMBERS_IN.findall(query):
        return []  # a slip in a word is forgiven (1ogbook), never one in a number (1824 for 1842)
    return [hit.dest_start]


def allowed_diffs(query: str, max_diffs: int | None) -> int:
    """The edits a match of ``query`` may have: ``max_diffs`` when given, else ``FUZZ`` of its length."""
    return max_diffs if max_diffs is not None else math.floor(FUZZ * len(query))


def _closest(query: str, text: str, max_diffs: int | None) -> str:
    """Why ``query`` was not found: how alike the closest stretch of ``text`` is, against what was needed."""
    if not text:
        return "not found: the text is empty"
    needed = 100.0 * (1.0 - allowed_diffs(query, max_diffs) / len(query))
    best = fuzz.partial_ratio(query, text)
    if best >= needed:
        return f"not found as written: the closest stretch ({best:.0f} % alike) has another number or runs into a word"
    return f"not found: the closest stretch is {best:.0f} % alike ({needed:.0f} % needed)"


def _quote(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


@dataclass(frozen=True, slots=True)
class Presence:
    """``present``: ``text`` appears on the page; ``absent``: it does not."""

    text: str
    max_diffs: int | None = None
    type: Literal["present", "absent"] = "present"

    def describe(self) -> str:
        return f"{self.type} {_quote(self.text)}"

    def run(self, text: str, raw: str) -> CheckResult:
        query = normalize(self.text)
        found = find(query, text, max_diffs=self.max_diffs)
        if self.type == "present":
            why = "found" if found else _closest(query, text, self.max_diffs)
            return CheckResult(self.describe(), bool(found), why)
        why = f"{_quote(self.text)} found at character {found[0]}" if found else "not found"
        return CheckResult(self.describe(), not found, why)


@dataclass(frozen=True, slots=True)
class Order:
    before: str
    after: str
    max_diffs: int | None = None
    type: CheckType = "order"

    def describe(self) -> str:
        return f"order {_quote(self.before, 24)} before {_quote(self.after, 24)}"

    def run(self, text: str, raw: str) -> CheckResult:
        first = find(normalize(self.before), text, max_diffs=self.max_diffs)
        second = find(normalize(self.after), text, max_diffs=self.max_diffs)
        if not first or not second:
            missing = " and ".join(_quote(t) for t, at in ((self.before, first), (self.after, second)) if not at)
            return CheckResult(self.describe(), False, f"{missing} not found")
        if min(first) < max(second):
            return CheckResult(self.describe(), True, "in order")
        return CheckResult(self.describe(), False, f"{_quote(self.after)} comes before {_quote(self.before)}")


@dataclass(frozen=True, slots=True)
class Table:
    """``cells`` all appear in one row of the page's text (a Markdown or HTML table row, or a line), or with
    ``same_row`` false anywhere on the page."""

    cells: tuple[str, ...]
    same_row: bool = True
    max_diffs: int | None = None
    type: CheckType = "table"

    def describe(self) -> str:
        return f"table row {', '.join(_quote(c, 16) for c in self.cells)}"

    def run(self, text: str, raw: str) -> CheckResult:
        wanted = [normalize(c) for c in self.cells]
        rows = normalize_lines(raw) if self.same_row else [text]
        best: list[str] = list(self.cells)
        for row in rows:
            missing = [c for c, w in zip(self.cells, wanted, strict=True) if not find(w, row, max_diffs=self.max_diffs)]
            if not missing:
                return CheckResult(self.describe(), True, "found in one row" if self.same_row else "found")
            if len(missing) < len(best):
                best = missing
        where = "any one row" if self.same_row else "the page"
        return CheckResult(self.describe(), False, f"not in {where}: missing {', '.join(map(_quote, best))}")


@dataclass(frozen=True, slots=True)
class Number:
    """The first number after ``label`` (or, with none there, the last before it), within ``window``
    characters, equals ``value`` (thousands separators ignored; ``tolerance`` is absolute)."""

    label: str
    value: float
    window: int = NUMBER_WINDOW
    tolerance: float = 0.0
    max_diffs: int | None = None
    type: CheckType = "number"

    def describe(self) -> str:
        return f"number {_quote(self.label, 24)} = {self.value:g}"

    def run(self, text: str, raw: str) -> CheckResult:
        label = normalize(self.label)
        starts = find(label, text, max_diffs=self.max_diffs)
        if not starts:
            return CheckResult(self.describe(), False, f"label {_quote(self.label)} not found")
        seen: list[float] = []
        for start in starts:
            value = _number_near(text, start, start + len(label), self.window)
            if value is not None and abs(value - self.value) <= self.tolerance:
                return CheckResult(self.describe(), True, "found next to its label")
            if value is not None:
                seen.append(value)
        if not seen:
            return CheckResult(self.describe(), False, f"no number within {self.window} characters of the label")
        return CheckResult(self.describe(), False, f"the label's number is {', '.join(f'{v:g}' for v in seen)}")


def _number_near(text: str, start: int, end: int, window: int) -> float | None:
    after = _NUMBER.search(text, end, min(len(text), end + window))
    if after is not None:
        return _to_float(after.group())
    before = list(_NUMBER.finditer(text, max(0, start - window), start))
    return _to_float(before[-1].group()) if before else None


def _to_float(token: str) -> float:
    return float(token.replace(",", ""))


# ------------------------------------------------------------------------------------------------- parsing


class CheckSyntaxError(ValueError):
    """A check that is not well formed; the message says what is wrong (the page set adds where)."""


_FIELDS: Mapping[str, tuple[set[str], set[str]]] = {  # type -> (required, optional) fields besides "type"
    "present": ({"text"}, {"max_diffs"}),
    "absent": ({"text"}, {"max_diffs"}),
    "order": ({"before", "after"}, {"max_diffs"}),
    "table": ({"cells"}, {"same_row", "max_diffs"}),
    "number": ({"label", "value"}, {"window", "tolerance", "max_diffs"}),
}


def parse_check(data: Any) -> Check:
    """The check a JSON object describes; ``CheckSyntaxError`` naming the field when it is malformed."""
    if not isinstance(data, dict):
        raise CheckSyntaxError(f"a check is a JSON object, not {type(data).__name__}")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise CheckSyntaxError(f"type {kind!r} is not one of {', '.join(CHECK_TYPES)}")
    required, optional = _FIELDS[kind]
    if missing := sorted(required - data.keys()):
        raise CheckSyntaxError(f"a {kind} check needs {' and '.join(map(repr, missing))}")
    if unknown := sorted(data.keys() - required - optional - {"type"}):
        raise CheckSyntaxError(f"a {kind} check has no field {', '.join(map(repr, unknown))}")
    max_diffs = _optional_int(data, "max_diffs")
    if kind in ("present", "absent"):
        return Presence(_text(data, "text"), max_diffs=max_diffs, type="present" if kind == "present" else "absent")
    if kind == "order":
        return Order(_text(data, "before"), _text(data, "after"), max_diffs=max_diffs)
    if kind == "table":
        cells = data["cells"]
        if not isinstance(cells, list) or not cells or not all(isinstance(c, str | int | float) for c in cells):
            raise CheckSyntaxError("'cells' is a non-empty list of texts")
        same_row = data.get("same_row", True)
        if not isinstance(same_row, bool):
            raise CheckSyntaxError("'same_row' is true or false")
        return Table(tuple(_cell(c) for c in cells), same_row=same_row, max_diffs=max_diffs)
    return Number(
        _text(data, "label"),
        _value(data["value"]),
        window=_optional_int(data, "window") or NUMBER_WINDOW,
        tolerance=float(_value(data.get("tolerance", 0))),
        max_diffs=max_diffs,
    )


def parse_checks(data: Any) -> tuple[Check, ...]:
    """A list of checks; the error names the one that is malformed (``checks[2]: ...``)."""
    if not isinstance(data, list):
        raise CheckSyntaxError("'checks' is a list of check objects")
    checks = []
    for i, item in enumerate(data):
        try:
            checks.append(parse_check(item))
        except CheckSyntaxError as exc:
            raise CheckSyntaxError(f"checks[{i}]: {exc}") from None
    return tuple(checks)


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data[name]
    if not isinstance(value, str) or not normalize(value):
        raise CheckSyntaxError(f"{name!r} is a non-empty text")
    return value


def _cell(value: str | int | float) -> str:
    text = value if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)
    if not normalize(text):
        raise CheckSyntaxError("'cells' holds an empty text")
    return text


def _value(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise CheckSyntaxError(f"{value!r} is not a number")
    try:
        return _to_float(value) if isinstance(value, str) else float(value)
    except ValueError:
        raise CheckSyntaxError(f"{value!r} is not a number") from None


def _optional_int(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckSyntaxError(f"{name!r} is a whole number, 0 or more")
    return value


def run_checks(checks: Sequence[Check], raw: str) -> list[CheckResult]:
    """Every check on one page's text."""
    text = normalize(raw)
    return [check.run(text, raw) for check in checks]
