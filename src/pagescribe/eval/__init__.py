"""Scoring what a backend writes for a page set (``pagescribe eval``); the format is in docs/eval.md.

    pageset.load_pageset -> backends.run_backend | backends.read_outputs -> results.evaluate -> tables / JSON
                                 (the real pipeline)    (any tool's output)     (checks, metrics)

``checks`` holds the pass/fail facts (olmOCR-bench style), ``metrics`` word recall, CER and the routing matrix,
``normalize`` what both sides go through first. ``synthpages`` and ``scans`` draw pages with known facts and
their scanned twins, and ``reference`` takes a real page's reference and checks from its text layer, for tests
and ``scripts/build_pageset.py``.
"""

from pagescribe.eval.checks import CheckResult, parse_check, run_checks
from pagescribe.eval.metrics import PageOutput, PageScore, cer, word_recall
from pagescribe.eval.normalize import normalize, words
from pagescribe.eval.pageset import PageSet, PageSetError, PageSpec, load_pageset, write_pageset
from pagescribe.eval.results import EvalResult, evaluate

__all__ = [
    "CheckResult",
    "EvalResult",
    "PageOutput",
    "PageScore",
    "PageSet",
    "PageSetError",
    "PageSpec",
    "cer",
    "evaluate",
    "load_pageset",
    "normalize",
    "parse_check",
    "run_checks",
    "word_recall",
    "words",
    "write_pageset",
]
