#!/usr/bin/env python3
"""Build the public page set for `pagescribe eval`: no document is committed, every page is made here.

    python scripts/build_pageset.py --out DIR [--quick]

Three kinds of page (docs/eval.md):
- generated pages with known facts (pagescribe.eval.synthpages: text in one and two columns, a ruled table, a
  bar chart, a flow diagram, a blank and a near-blank page);
- born-digital pages of public PDFs that Debian documentation packages install (gnuplot-doc, graphviz-doc),
  referenced in place as PDF + page; reference text and checks come from each page's text layer;
- scanned twins of the text pages (rasterised at 150-300 DPI, turned by up to 1.5 degrees, noise, JPEG, no text
  layer), with the born-digital twin's reference and checks and expected route `ocr`.
A source that is not installed is skipped with a note. --quick keeps a handful of pages (for a fast look).
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pagescribe.eval.pageset import write_pageset
from pagescribe.eval.reference import checks_from_text, page_text
from pagescribe.eval.scans import ScanStyle
from pagescribe.eval.synthpages import write_scan, write_synthetic
from pagescribe.pipeline.render import count_pages


@dataclass(frozen=True)
class Source:
    """A public PDF: where Debian packages put it (first found wins), and its page count when labelled."""

    name: str
    paths: tuple[str, ...]
    package: str
    pages: int


SOURCES = {
    s.name: s
    for s in (
        Source("gnuplot", ("/usr/share/doc/gnuplot-doc/gnuplot.pdf", "/usr/share/doc/gnuplot/gnuplot.pdf"),
               "gnuplot-doc", 311),
        Source("dotguide", ("/usr/share/doc/graphviz/pdf/dotguide.pdf.gz", "/usr/share/doc/graphviz/pdf/dotguide.pdf"),
               "graphviz-doc", 40),
        Source("neatoguide", ("/usr/share/doc/graphviz/pdf/neatoguide.pdf.gz",
                              "/usr/share/doc/graphviz/pdf/neatoguide.pdf"), "graphviz-doc", 11),
    )
}  # fmt: skip

# The expected route of each page, labelled by looking at it rendered (gnuplot-doc 5.4.4, graphviz-doc 2.42.2;
# a source with another page count is skipped, as the labels may not fit it). `text`: born-digital text alone;
# `vlm`: a page with a drawing (graph drawings here are vector paths, not images) or a ruled table (the router
# sends tables drawn with rules to the model, though their words are all in the text layer: the eval of the
# text-layer backend shows what that costs). scan: the DPI of its scanned twin (0: none).
#   source       page  category        route  scan  quick  what is on the page
PAGES = [
    ("gnuplot",      2, "born-digital", "text",    0, False, "table of contents, dot leaders"),
    ("gnuplot",     22, "born-digital", "text",  200, True,  "plain text, code lines, a section heading"),
    ("gnuplot",     29, "born-digital", "text",  150, False, "bulleted list, two section headings"),
    ("gnuplot",     38, "table",        "vlm",     0, True,  "ruled table of math functions, with formulas"),
    ("gnuplot",    152, "table",        "vlm",     0, False, "code lines, text, ruled table of date formats"),
    ("gnuplot",    232, "table",        "vlm",     0, False, "text, two ruled tables with formulas"),
    ("dotguide",     2, "born-digital", "text",  300, False, "plain text, one heading"),
    ("dotguide",     3, "diagram",      "vlm",     0, True,  "code listing and a drawing of a small graph"),
    ("dotguide",     6, "born-digital", "text",  200, False, "plain text, a grammar, a heading"),
    ("dotguide",    10, "diagram",      "vlm",     0, False, "drawings of record nodes, an HTML listing"),
    ("dotguide",    17, "diagram",      "vlm",     0, False, "a large graph drawing with a timeline"),
    ("dotguide",    31, "table",        "vlm",     0, False, "ruled table of node attributes"),
    ("dotguide",    34, "born-digital", "text",    0, False, "a grammar in italic and bold, then text"),
    ("neatoguide",   4, "diagram",      "vlm",     0, False, "an undirected graph drawing and a caption"),
    ("neatoguide",   8, "born-digital", "text",  300, False, "plain text, numbered list, commands"),
    ("neatoguide",  10, "table",        "vlm",     0, False, "ruled table of drawing attributes"),
]  # fmt: skip
#: Scans differ in their tilt and noise too, so no two twins are scanned alike.
ANGLES = (-1.5, 0.7, 1.2, -0.6, 1.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the page set folder to write (replaced)")
    parser.add_argument("--quick", action="store_true", help="a handful of pages, for a fast look")
    args = parser.parse_args(argv)
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    scanned = frozenset({"two-column"} if args.quick else {"born-digital", "two-column"})
    try:
        lines = write_synthetic(out, scans=(ScanStyle(dpi=300, angle=0.8, seed=1),), scan_categories=scanned)
    except ModuleNotFoundError as exc:
        print(f"note: no generated pages: {exc}", file=sys.stderr)
        lines = []
    lines += public_pages(out, quick=args.quick)
    index = write_pageset(out, lines)
    counts = Counter(line["category"] for line in lines)
    print(f"wrote {index}: {len(lines)} pages ({', '.join(f'{k} {v}' for k, v in counts.items())})")
    return 0


def public_pages(out: Path, *, quick: bool) -> list[dict[str, Any]]:
    """The labelled pages of every installed source (copied into ``sources/``), with their scanned twins."""
    lines: list[dict[str, Any]] = []
    found = {name: _install(source, out / "sources") for name, source in SOURCES.items()}
    for number, (name, page, category, route, scan_dpi, in_quick, _) in enumerate(PAGES):
        pdf = found[name]
        if pdf is None or (quick and not in_quick):
            continue
        text = page_text(pdf, page)
        line = {"id": f"{name}-p{page}", "file": f"sources/{pdf.name}", "page": page, "category": category,
                "expected_route": route, "reference": text, "checks": checks_from_text(text)}  # fmt: skip
        lines.append(line)
        if scan_dpi:
            style = ScanStyle(dpi=scan_dpi, angle=ANGLES[number % len(ANGLES)], noise=4.0 + number % 5, seed=number)
            lines.append(write_scan(out, line["id"], pdf, line, style, page=page))
    return lines


def _install(source: Source, folder: Path) -> Path | None:
    """The source's PDF copied (decompressed) into ``folder``, or None (with a note) when it is not here."""
    path = next((Path(p) for p in source.paths if Path(p).is_file()), None)
    if path is None:
        print(f"note: skipping {source.name}: not installed (apt-get install {source.package})", file=sys.stderr)
        return None
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{source.name}.pdf"
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as src, dest.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    pages = count_pages(dest, kind="pdf")
    if pages != source.pages:
        print(f"note: skipping {source.name}: {path} has {pages} pages, the labels are for {source.pages}",
              file=sys.stderr)
        dest.unlink()
        return None
    return dest


if __name__ == "__main__":
    sys.exit(main())
