"""The playground's routes with FakeEngine: its files, the prompts by name, rendering uploads, and the API key."""

from __future__ import annotations

import base64
from pathlib import Path

from test_server_app import png_b64, serve

from pagescribe.prompts import load_prompt
from pdfgen import text_page, write_pdf


async def test_the_page_and_its_files_are_served_with_a_strict_policy() -> None:
    async with serve() as client:
        index = await client.get("/ui/")
        script = await client.get("/ui/app.js")
        redirect = await client.get("/ui")
        other = await client.get("/ui/../settings.py")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert '<script src="/ui/app.js"' in index.text and "http" not in index.text  # nothing from elsewhere
    assert "default-src 'self'" in index.headers["content-security-policy"]
    assert script.status_code == 200 and "/v1/chat/completions" in script.text
    assert redirect.status_code == 308 and redirect.headers["location"] == "/ui/"
    assert other.status_code == 404


async def test_the_prompts_are_listed_by_name_the_default_first() -> None:
    async with serve() as client:
        listed = (await client.get("/ui/prompts")).json()["prompts"]
    assert [p["name"] for p in listed] == ["document", "markdown"]
    assert listed[0]["default"] and listed[1]["id"] == load_prompt("markdown").id


async def test_an_upload_comes_back_as_its_pages(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "a.pdf", [text_page("One", ["x"]), text_page("Two", ["y"])])
    async with serve() as client:
        pages = (await client.post("/ui/render", content=pdf.read_bytes())).json()["pages"]
        image = (await client.post("/ui/render", content=base64.b64decode(png_b64((40, 30))))).json()["pages"]
        bad = await client.post("/ui/render", content=b"not a document", headers={"X-Filename": "notes.txt"})
        empty = await client.post("/ui/render", content=b"")
        still = await client.get("/ping")
    assert [(p["page"], p["page_count"]) for p in pages] == [(1, 2), (2, 2)]
    assert pages[0]["image"].startswith("data:image/png;base64,") and max(pages[0]["width"], pages[0]["height"]) == 1344
    assert [(p["width"], p["height"]) for p in image] == [(40, 30)]
    assert bad.status_code == 400 and "notes.txt" in bad.json()["error"]["message"]
    assert "/tmp" not in bad.json()["error"]["message"]
    assert empty.status_code == 400 and still.status_code == 200


async def test_with_an_api_key_the_page_is_open_and_its_calls_need_the_key() -> None:
    async with serve(api_key="k3y") as client:
        page = await client.get("/ui/app.js")
        refused = await client.post("/ui/render", content=b"x")
        allowed = await client.post("/ui/render", content=b"x", headers={"Authorization": "Bearer k3y"})
    assert page.status_code == 200 and refused.status_code == 401 and allowed.status_code == 400


async def test_no_playground_when_switched_off() -> None:
    async with serve(ui=False) as client:
        assert (await client.get("/ui/")).status_code == 404
