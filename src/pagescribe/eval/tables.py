"""What ``pagescribe eval`` prints: a table per category with the overall line, the routing, the failed checks;
and two results side by side with the change from the first to the second."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from pagescribe.eval.metrics import NO_ROUTE, Aggregate
from pagescribe.eval.pageset import ROUTES
from pagescribe.eval.results import CompareRow, EvalResult


def print_result(result: EvalResult, console: Console, *, failures: int = 10) -> None:
    """The scores table, a timing and routing line, the confusion matrix (rows: the expected route, columns: the
    route taken) when routes were labelled and taken,
    and the first ``failures`` failed checks."""
    table = Table(title=f"pagescribe eval: {result.backend} on {result.pageset}", title_justify="left")
    for name, justify in (("category", "left"), ("pages", "right"), ("checks passed", "right"),
                          ("word recall", "right"), ("CER", "right"), ("routes", "left"), ("not ok", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for name, agg in result.categories.items():
        table.add_row(name, *_cells(agg))
    table.add_section()
    table.add_row("overall", *_cells(result.overall), style="bold")
    console.print(table)
    console.print(_speed_line(result))
    if result.routing.pages and any(s.route for s in result.scores):
        console.print(_routing_table(result))
    failed = [(s.id, c.check, c.why) for s in result.scores for c in s.checks if not c.passed]
    if failed and failures:
        console.print(f"[bold]Failed checks[/bold] ({len(failed)}; the first {min(failures, len(failed))}):")
        for page_id, check, why in failed[:failures]:
            console.print(f"  {page_id}: {check}: {why}", markup=False, highlight=False)


def _cells(agg: Aggregate) -> list[str]:
    checks = f"{agg.checks_passed}/{agg.checks_total}" if agg.checks_total else "-"
    if agg.check_rate is not None:
        checks += f" ({agg.check_rate:.0%})"
    routes = ", ".join(f"{route} {n}" for route, n in agg.routes.items() if route != NO_ROUTE) or "-"
    return [str(agg.pages), checks, _num(agg.word_recall), _num(agg.cer), routes, str(agg.not_ok)]


def _speed_line(result: EvalResult) -> str:
    parts = []
    if result.elapsed_s is not None:
        parts.append(f"{len(result.scores)} pages in {result.elapsed_s:.1f} s")
    if result.pages_per_minute is not None:
        parts.append(f"{result.pages_per_minute:.1f} pages/min")
    if result.overall.mean_seconds is not None:
        parts.append(f"{result.overall.mean_seconds:.2f} s of work per page")
    if result.routing.avoided_model is not None:
        parts.append(f"{result.routing.avoided_model:.0%} of pages avoided the model")
    return "; ".join(parts) or "no timings (the outputs were read from a folder)"


def _routing_table(result: EvalResult) -> Table:
    routing = result.routing
    taken = [r for r in (*ROUTES, NO_ROUTE) if any(row.get(r) for row in routing.matrix.values())]
    accuracy = f"{routing.accuracy:.0%}" if routing.accuracy is not None else "-"
    table = Table(title=f"routing: {accuracy} of pages as expected", title_justify="left")
    table.add_column("expected \\ taken")
    for route in taken:
        table.add_column(route, justify="right")
    table.add_column("recall", justify="right")
    for expected, row in routing.matrix.items():
        table.add_row(expected, *(str(row.get(r, 0)) for r in taken), _pct(routing.recall.get(expected)))
    table.add_section()
    table.add_row("precision", *(_pct(routing.precision.get(r)) for r in taken), "")
    return table


def print_compare(
    names: Sequence[str], results: Sequence[Mapping[str, Any]], rows: Sequence[CompareRow], console: Console
) -> None:
    """Two results per category: the share of checks passed, word recall and CER for each, and B minus A; then
    each one's backend and speed."""
    a, b = names
    table = Table(title=f"A = {a}\nB = {b}", title_justify="left")
    table.add_column("category")
    table.add_column("pages", justify="right")
    for metric in ("checks", "recall", "CER"):
        for side in ("A", "B", "Δ"):
            table.add_column(f"{metric} {side}", justify="right")
    for row in rows:
        if row.name == "overall":
            table.add_section()
        pages = "/".join("-" if p is None else str(p) for p in row.pages) if row.pages[0] != row.pages[1] else str(
            row.pages[0]
        )
        cells = [*_trio(row.check_rate, pct=True), *_trio(row.word_recall), *_trio(row.cer, lower_is_better=True)]
        table.add_row(row.name, pages, *cells, style="bold" if row.name == "overall" else None)
    console.print(table)
    for side, result in zip(("A", "B"), results, strict=True):
        console.print(f"{side}: {_speed(result)}", markup=False, highlight=False)


def _trio(pair: tuple[float | None, float | None], *, pct: bool = False, lower_is_better: bool = False) -> list[str]:
    a, b = pair
    show = _pct if pct else _num
    if a is None or b is None:
        return [show(a), show(b), "-"]
    delta = b - a
    better = delta < 0 if lower_is_better else delta > 0
    colour = "green" if better else "red" if delta else "dim"
    text = f"{delta:+.0%}" if pct else f"{delta:+.3f}"
    return [show(a), show(b), f"[{colour}]{text}[/{colour}]"]


def _speed(result: Mapping[str, Any]) -> str:
    timings = result.get("timings") or {}
    ppm = timings.get("pages_per_minute")
    avoided = (result.get("routing") or {}).get("avoided_model")
    text = f"{result.get('backend')}, {'-' if ppm is None else f'{ppm:.1f}'} pages/min"
    return text + (f", {avoided:.0%} avoided the model" if avoided is not None else "")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"
