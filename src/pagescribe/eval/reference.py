"""Reference text and checks from a born-digital page's own text layer, for page sets built from real PDFs.

The text layer is what the PDF says is on the page (PDFium's reading of it), so it is the reference for the
page and for its scanned twin. Checks are picked from it mechanically: a few long lines spread down the page must
be present, and the first must come before the last. A line is used only when it is ordinary prose (mostly plain
words: no formula, code or dot leaders; no line-end hyphen), and only its first words, so a check does not hinge
on how a line was broken.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pagescribe.eval.normalize import normalize
from pagescribe.pipeline.render import text_layer

#: Words taken from the start of a chosen line.
CHECK_WORDS = 7
#: A plain word, as prose has them (a formula's or a code line's tokens are not).
_PLAIN = re.compile(r"^[(\"'‘“]?[A-Za-z][A-Za-z'’-]+[)\"'’”]?[.,;:]?$")


def page_text(pdf: Path, page: int) -> str:
    """The text layer of page ``page`` (1-based) of ``pdf``, lines as PDFium gives them."""
    return text_layer(pdf, page) or ""


def checks_from_text(text: str, *, present: int = 3, skip_first: int = 1) -> list[dict[str, Any]]:
    """Up to ``present`` ``present`` checks on lines spread down the page (after ``skip_first`` lines, a running
    header), and an ``order`` check of the first chosen line before the last."""
    snippets = [s for s in map(_snippet, text.splitlines()[skip_first:]) if s]
    if not snippets:
        return []
    count = min(present, len(snippets))
    step = (len(snippets) - 1) / max(count - 1, 1)
    chosen = list(dict.fromkeys(snippets[round(i * step)] for i in range(count)))
    checks: list[dict[str, Any]] = [{"type": "present", "text": s} for s in chosen]
    if len(chosen) > 1 and normalize(chosen[0]) not in normalize(chosen[-1]):
        checks.append({"type": "order", "before": chosen[0], "after": chosen[-1]})
    return checks


def _snippet(line: str) -> str | None:
    """The line's first words, up to the first that holds no letter or digit (a bullet before them is skipped):
    when they are at least four and mostly plain (not a formula, a code line, a table of contents' dot leaders),
    and the line does not end in a hyphen."""
    if line.rstrip().endswith(("-", "\x02")):
        return None
    tokens = line.split()
    while tokens and not any(c.isalnum() for c in tokens[0]):
        tokens.pop(0)
    run: list[str] = []
    for token in tokens[:CHECK_WORDS]:
        if not any(c.isalnum() for c in token):
            break
        run.append(token)
    plain = sum(1 for w in run if _PLAIN.match(w))
    return " ".join(run) if len(run) >= 4 and plain >= 0.8 * len(run) else None
