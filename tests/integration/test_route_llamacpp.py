"""The router in front of the real llama.cpp engine: text pages never reach it, figure pages do, with their text
layer as the anchor, and the pages per minute show it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pagescribe.engine.llamacpp import LlamaCppEngine
from pagescribe.pipeline import ConvertOptions, convert
from pagescribe.types import SamplingParams
from pdfgen import BLANK_PAGE, IMAGE_PAGE, twelve_page_pdf

pytestmark = pytest.mark.integration


def test_auto_sends_only_figure_pages_to_the_model_with_their_text_layer(
    tiny_engine: LlamaCppEngine, tmp_path: Path
) -> None:
    pdf = twelve_page_pdf(tmp_path / "report.pdf")
    params = SamplingParams(max_tokens=4, seed=0)
    records = {r.page: r for r in convert([pdf], out_dir=tmp_path / "auto", backend=tiny_engine,
                                          options=ConvertOptions(params=params))}  # fmt: skip
    figures = {3, 4, 9, 11, IMAGE_PAGE}
    assert {p for p, r in records.items() if r.route == "vlm"} == figures
    assert records[BLANK_PAGE].route == "blank"
    for page, record in records.items():
        assert record.status in ("ok", "blank"), record
        if page in figures:
            assert record.usage["image_tokens"] > 0 and record.model and "tesseract" not in record.model
        elif page != BLANK_PAGE:
            assert record.route == "text" and record.usage == {} and f"PS-{page:04d}" in record.text
    # a figure page with a text layer was shown it: its prompt is longer than the same page's without an anchor
    plain = {r.page: r for r in convert([pdf], out_dir=tmp_path / "vlm", backend=tiny_engine,
                                        options=ConvertOptions(route="vlm", pages=[3], params=params))}  # fmt: skip
    assert records[3].usage["prompt_tokens"] > plain[3].usage["prompt_tokens"]
    assert plain[3].route == "vlm" and "--route vlm" in (plain[3].route_reason or "")
