"""The playground in a real headless browser (Debian's chromium driven by Playwright) against a live server with the
tiny model: upload a 2-page PDF, both pages' texts stream in beside their images, the download holds them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pagescribe.engine.fake import FakeEngine
from pagescribe.engine.llamacpp import LlamaCppEngine
from pdfgen import text_page, write_pdf
from servers import LiveServer

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="module")
def live(server_engine: LlamaCppEngine) -> Iterator[LiveServer[LlamaCppEngine]]:
    # keep-alive comments every 5 ms: the page's stream reader meets them between a page's tokens
    with LiveServer(server_engine, time_limit_s=30, stream_ping_s=0.005) as server:
        yield server


def test_the_playground_is_off_under_sagemaker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "8080")
    with LiveServer(FakeEngine()) as server:  # (a server closes its engine: not the session's tiny one)
        assert httpx.get(f"{server.url}/ui/").status_code == 404
    monkeypatch.setenv("PAGESCRIBE_UI", "true")  # unless asked for
    with LiveServer(FakeEngine()) as server:
        assert httpx.get(f"{server.url}/ui/").status_code == 200


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (apt-get install chromium)")
def test_upload_a_two_page_pdf_and_download_both_pages_texts(
    live: LiveServer[LlamaCppEngine], tmp_path: Path
) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    pdf = write_pdf(tmp_path / "two pages.pdf", [text_page("Revenue", ["North 12"]), text_page("Costs", ["South 7"])])
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(accept_downloads=True, bypass_csp=True)  # (its own probes use eval)
            page.goto(f"{live.url}/ui/")
            page.wait_for_function("document.querySelectorAll('#prompt option').length >= 2")
            assert page.locator("#prompt").input_value() == "document"
            page.select_option("#prompt", "markdown")
            page.fill("#max-tokens", "8")
            page.set_input_files("#file", str(pdf))
            page.wait_for_selector(".page:nth-child(2) img")
            page.click("#run")
            page.wait_for_function("document.querySelector('#status').textContent.startsWith('Done')", timeout=120_000)
            texts = page.locator(".page pre").all_inner_texts()
            page.screenshot(path=str(tmp_path / "playground.png"), full_page=True)
            with page.expect_download() as info:
                page.click("#download")
            download = info.value
            saved = tmp_path / download.suggested_filename
            download.save_as(saved)
        finally:
            browser.close()
    assert len(texts) == 2 and all(t.strip() for t in texts)
    markdown = saved.read_text()
    assert saved.name == "two pages.md" and markdown.startswith("# two pages\n")
    assert "## Page 1" in markdown and "## Page 2" in markdown
    assert all(t.strip() in markdown for t in texts)
    assert (tmp_path / "playground.png").stat().st_size > 10_000
    # what the page showed is what the model says for that page with the markdown prompt (greedy)
    assert texts[0].strip() == expected(live, pdf, page=1)


def expected(live: LiveServer[LlamaCppEngine], pdf: Path, *, page: int) -> str:
    rendered = httpx.post(f"{live.url}/ui/render", content=pdf.read_bytes(), timeout=60).json()["pages"]
    image = {"type": "image_url", "image_url": {"url": rendered[page - 1]["image"]}}
    body = {"messages": [{"role": "user", "content": [image]}], "prompt": "markdown", "max_tokens": 8, "temperature": 0}
    text: str = httpx.post(f"{live.url}/v1/chat/completions", json=body, timeout=60).json()["choices"][0]["message"][
        "content"
    ]
    return text.strip()
