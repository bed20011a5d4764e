"""An eval run's results as one object and one JSON file, and two of those files set side by side."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pagescribe.errors import InvalidRequest
from pagescribe.eval.metrics import (
    Aggregate,
    PageOutput,
    PageScore,
    Routing,
    aggregate,
    by_category,
    routing,
    score_page,
)
from pagescribe.eval.pageset import PageSet

#: Bumped when the JSON's layout changes in a way ``compare`` must know about.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class EvalResult:
    """A backend's scores on a page set. ``elapsed_s`` is the wall time of the conversion (None when the outputs
    were scored from a folder without a ``summary.json``)."""

    pageset: str
    backend: str
    config: Mapping[str, Any]
    scores: tuple[PageScore, ...]
    elapsed_s: float | None = None
    overall: Aggregate = field(init=False)
    categories: Mapping[str, Aggregate] = field(init=False)
    routing: Routing = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "overall", aggregate(self.scores))
        object.__setattr__(self, "categories", by_category(self.scores))
        object.__setattr__(self, "routing", routing(self.scores))

    @property
    def pages_per_minute(self) -> float | None:
        if not self.elapsed_s or not self.scores:
            return None
        return 60.0 * len(self.scores) / self.elapsed_s

    def to_json(self) -> dict[str, Any]:
        ppm = self.pages_per_minute
        return {
            "format": "pagescribe-eval",
            "version": FORMAT_VERSION,
            "pageset": self.pageset,
            "backend": self.backend,
            "config": dict(self.config),
            "timings": {
                "elapsed_s": None if self.elapsed_s is None else round(self.elapsed_s, 3),
                "pages_per_minute": None if ppm is None else round(ppm, 2),
                "mean_seconds_per_page": self.overall.to_json()["mean_seconds_per_page"],
            },
            "overall": self.overall.to_json(),
            "categories": {name: agg.to_json() for name, agg in self.categories.items()},
            "routing": self.routing.to_json(),
            "pages": [s.to_json() for s in self.scores],
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def evaluate(
    pageset: PageSet,
    outputs: Mapping[str, PageOutput],
    *,
    backend: str,
    config: Mapping[str, Any],
    elapsed_s: float | None = None,
) -> EvalResult:
    """Score every page of the set; a page the outputs lack is scored as empty text (status ``missing``)."""
    scores = tuple(
        score_page(spec, outputs.get(spec.id) or PageOutput(spec.id, "", status="missing")) for spec in pageset.pages
    )
    return EvalResult(str(pageset.root), backend, config, scores, elapsed_s)


# ------------------------------------------------------------------------------------------------- compare


def load_result(path: Path) -> dict[str, Any]:
    """An eval JSON file as written by ``EvalResult.write``; ``InvalidRequest`` naming the file otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"{path}: cannot read it as JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != "pagescribe-eval":
        raise InvalidRequest(f"{path}: not a `pagescribe eval --json` result")
    if data.get("version") != FORMAT_VERSION:
        version = data.get("version")
        raise InvalidRequest(f"{path}: eval result version {version!r}; this pagescribe reads {FORMAT_VERSION}")
    return data


@dataclass(frozen=True, slots=True)
class CompareRow:
    """One category (or ``overall``) of two results: (A, B) pairs, None where a side lacks the value."""

    name: str
    pages: tuple[int | None, int | None]
    check_rate: tuple[float | None, float | None]
    word_recall: tuple[float | None, float | None]
    cer: tuple[float | None, float | None]


def compare_rows(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[CompareRow]:
    """Per category of either result, then ``overall``."""
    names = list(dict.fromkeys([*a["categories"], *b["categories"]]))
    groups = [(n, a["categories"].get(n), b["categories"].get(n)) for n in names]
    groups.append(("overall", a["overall"], b["overall"]))
    return [
        CompareRow(
            name=name,
            pages=(_get(x, "pages"), _get(y, "pages")),
            check_rate=(_get(x, "check_rate"), _get(y, "check_rate")),
            word_recall=(_get(x, "word_recall"), _get(y, "word_recall")),
            cer=(_get(x, "cer"), _get(y, "cer")),
        )
        for name, x, y in groups
    ]


def _get(group: Mapping[str, Any] | None, key: str) -> Any:
    return None if group is None else group.get(key)
