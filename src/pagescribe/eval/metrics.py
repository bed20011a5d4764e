"""Scores: each page's checks, word recall and character error rate, then sums per category and for the
routing (expected route against the route taken).

Word recall is the share of the reference's words (a bag: each occurrence counts) that the output has; it
ignores order, which the ``order`` checks and the character error rate (edits to turn the normalised output into
the normalised reference, per reference character; it can pass 1 for an output longer than the reference) see.
Pages without a reference have neither; means are over the pages that have them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any

from rapidfuzz.distance import Levenshtein

from pagescribe.eval.checks import CheckResult, run_checks
from pagescribe.eval.normalize import normalize, words
from pagescribe.eval.pageset import ROUTES, PageSpec

#: The column of the confusion matrix for a page whose route the output does not say (not scored, failed early).
NO_ROUTE = "none"


def word_recall(reference: str, output: str) -> float | None:
    """The share of the reference's words found in ``output`` (None for a reference without words)."""
    wanted = Counter(words(reference))
    total = sum(wanted.values())
    if total == 0:
        return None
    return sum((wanted & Counter(words(output))).values()) / total


def cer(reference: str, output: str) -> float | None:
    """Character error rate of ``output`` against ``reference``, both normalised (None for an empty reference)."""
    ref = normalize(reference)
    if not ref:
        return None
    return Levenshtein.distance(ref, normalize(output)) / len(ref)


@dataclass(frozen=True, slots=True)
class PageOutput:
    """What a backend wrote for one page. ``status`` is the record's (``ok``, ``failed``, ``blank``, ``error``) or
    ``missing`` when the output has no record of the page; ``seconds`` the work its record's timings add up to."""

    id: str
    text: str
    status: str = "ok"
    route: str | None = None
    route_reason: str | None = None
    reason: str | None = None
    seconds: float | None = None


@dataclass(frozen=True, slots=True)
class PageScore:
    """One page's results."""

    id: str
    category: str
    status: str
    expected_route: str | None
    route: str | None
    route_reason: str | None
    reason: str | None
    checks: tuple[CheckResult, ...]
    word_recall: float | None
    cer: float | None
    seconds: float | None

    @property
    def checks_passed(self) -> int:
        return sum(1 for c in self.checks if c.passed)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "category": self.category,
            "status": self.status,
            "expected_route": self.expected_route,
            "route": self.route,
            "route_reason": self.route_reason,
            "reason": self.reason,
            "checks_passed": self.checks_passed,
            "checks_total": len(self.checks),
            "checks": [c.to_json() for c in self.checks],
            "word_recall": _round(self.word_recall),
            "cer": _round(self.cer),
            "seconds": _round(self.seconds),
        }


def score_page(spec: PageSpec, output: PageOutput) -> PageScore:
    """Run the page's checks on its output and measure it against the reference."""
    text = output.text
    return PageScore(
        id=spec.id,
        category=spec.category,
        status=output.status,
        expected_route=spec.expected_route,
        route=output.route,
        route_reason=output.route_reason,
        reason=output.reason,
        checks=tuple(run_checks(spec.checks, text)),
        word_recall=word_recall(spec.reference, text) if spec.reference is not None else None,
        cer=cer(spec.reference, text) if spec.reference is not None else None,
        seconds=output.seconds,
    )


@dataclass(frozen=True, slots=True)
class Aggregate:
    """The sums of a group of pages (a category, or all of them)."""

    pages: int
    checks_passed: int
    checks_total: int
    word_recall: float | None
    cer: float | None
    routes: Mapping[str, int]
    not_ok: int
    mean_seconds: float | None

    @property
    def check_rate(self) -> float | None:
        return self.checks_passed / self.checks_total if self.checks_total else None

    def to_json(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "checks_passed": self.checks_passed,
            "checks_total": self.checks_total,
            "check_rate": _round(self.check_rate),
            "word_recall": _round(self.word_recall),
            "cer": _round(self.cer),
            "routes": dict(self.routes),
            "pages_not_ok": self.not_ok,
            "mean_seconds_per_page": _round(self.mean_seconds),
        }


def aggregate(scores: Sequence[PageScore]) -> Aggregate:
    """Sum a group of pages: checks add up, recall and CER are means over pages with a reference."""
    recalls = [s.word_recall for s in scores if s.word_recall is not None]
    rates = [s.cer for s in scores if s.cer is not None]
    seconds = [s.seconds for s in scores if s.seconds is not None]
    routes = Counter(s.route or NO_ROUTE for s in scores)
    return Aggregate(
        pages=len(scores),
        checks_passed=sum(s.checks_passed for s in scores),
        checks_total=sum(len(s.checks) for s in scores),
        word_recall=fmean(recalls) if recalls else None,
        cer=fmean(rates) if rates else None,
        routes={r: routes[r] for r in (*ROUTES, NO_ROUTE) if routes[r]},
        not_ok=sum(1 for s in scores if s.status not in ("ok", "blank")),
        mean_seconds=fmean(seconds) if seconds else None,
    )


def by_category(scores: Iterable[PageScore]) -> dict[str, Aggregate]:
    """``aggregate`` per category, in the order categories first appear."""
    groups: dict[str, list[PageScore]] = {}
    for score in scores:
        groups.setdefault(score.category, []).append(score)
    return {name: aggregate(group) for name, group in groups.items()}


@dataclass(frozen=True, slots=True)
class Routing:
    """The routing confusion matrix over pages with an expected route: ``matrix[expected][taken]``."""

    matrix: Mapping[str, Mapping[str, int]]
    pages: int
    avoided_model: float | None = None
    precision: Mapping[str, float | None] = field(default_factory=dict)
    recall: Mapping[str, float | None] = field(default_factory=dict)

    @property
    def accuracy(self) -> float | None:
        right = sum(self.matrix.get(r, {}).get(r, 0) for r in ROUTES)
        return right / self.pages if self.pages else None

    def to_json(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "accuracy": _round(self.accuracy),
            "avoided_model": _round(self.avoided_model),
            "matrix": {e: dict(row) for e, row in self.matrix.items()},
            "precision": {r: _round(v) for r, v in self.precision.items()},
            "recall": {r: _round(v) for r, v in self.recall.items()},
        }


def routing(scores: Sequence[PageScore]) -> Routing:
    """The confusion matrix, per-route precision and recall, and the share of pages (with a known route) that
    did not go to the model."""
    labelled = [s for s in scores if s.expected_route is not None]
    matrix: dict[str, dict[str, int]] = {e: dict.fromkeys((*ROUTES, NO_ROUTE), 0) for e in ROUTES}
    for s in labelled:
        matrix[s.expected_route or NO_ROUTE][s.route or NO_ROUTE] += 1
    matrix = {e: row for e, row in matrix.items() if any(row.values())}
    precision: dict[str, float | None] = {}
    recall: dict[str, float | None] = {}
    for r in ROUTES:
        taken = sum(row.get(r, 0) for row in matrix.values())
        expected = sum(matrix.get(r, {}).values())
        hits = matrix.get(r, {}).get(r, 0)
        if taken or expected:
            precision[r] = hits / taken if taken else None
            recall[r] = hits / expected if expected else None
    routed = [s for s in scores if s.route is not None]
    avoided = sum(1 for s in routed if s.route != "vlm") / len(routed) if routed else None
    return Routing(matrix=matrix, pages=len(labelled), avoided_model=avoided, precision=precision, recall=recall)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)
