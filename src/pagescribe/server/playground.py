"""The playground at ``/ui``: a static page (no build step, nothing from a CDN) to try the model in a browser.

Drop a PDF or an image: ``POST /ui/render`` renders its pages here (the pipeline's renderer, so pages look as
``convert`` gives them to the model) and returns them as PNG data URLs; the page then asks ``/v1/chat/completions``
for each page, streamed, with the prompt picked by name (``GET /ui/prompts``), and shows the text as it arrives
beside the page image. Off by default under SageMaker (``--no-ui``), where nobody has a browser on the container.
"""

from __future__ import annotations

import base64
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pagescribe.errors import InvalidRequest
from pagescribe.images import encode_image
from pagescribe.pipeline.errors import DocumentError
from pagescribe.pipeline.render import RenderedPage, render_document
from pagescribe.prompts import DEFAULT_PROMPT, load_prompt, packaged_prompts
from pagescribe.server.bodies import read_body

#: The page's own files, and their media types: nothing else is served from the folder.
ASSETS = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript", "app.css": "text/css"}
#: Most pages one upload is rendered to (the rest would only wait in the browser).
MAX_PAGES = 50
#: The page's own script and style only: no inline code, nothing from elsewhere.
CSP = "default-src 'self'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'"


def routes() -> list[BaseRoute]:
    return [
        Route("/ui", lambda _: RedirectResponse("/ui/", status_code=308), methods=["GET"]),
        Route("/ui/", asset, methods=["GET"]),
        Route("/ui/prompts", prompts, methods=["GET"]),
        Route("/ui/render", render, methods=["POST"]),
        Route("/ui/{name}", asset, methods=["GET"]),
    ]


async def asset(request: Request) -> Response:
    name = request.path_params.get("name", "index.html")
    if name not in ASSETS:
        raise HTTPException(404, f"no file {name!r} in the playground")
    data = resources.files("pagescribe.server").joinpath("ui", name).read_bytes()
    headers = {"Content-Security-Policy": CSP, "Cache-Control": "no-cache"}
    return Response(data, media_type=ASSETS[name], headers=headers)


async def prompts(_: Request) -> Response:
    """The packaged prompts by name, the default first."""
    names = sorted(packaged_prompts(), key=lambda n: (n != DEFAULT_PROMPT, n))
    items = [{"name": n, "id": load_prompt(n).id, "default": n == DEFAULT_PROMPT} for n in names]
    return JSONResponse({"prompts": items})


async def render(request: Request) -> Response:
    """The uploaded document's pages as PNG data URLs, rendered as ``convert`` renders them."""
    settings = request.app.state.services.settings
    body = await read_body(request, limit=settings.max_body_bytes)
    if not body:
        raise InvalidRequest("the upload is empty: send a PDF or an image", param="body")
    pages = await anyio.to_thread.run_sync(_render, body, request.headers.get("x-filename", "upload"))
    return JSONResponse({"pages": pages})


def _render(data: bytes, filename: str) -> list[dict[str, Any]]:
    suffix = Path(filename).suffix[:16] if Path(filename).suffix.isascii() else ""
    with tempfile.TemporaryDirectory(prefix="pagescribe-ui-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            return [_page(page) for page in render_document(path, pages=range(1, MAX_PAGES + 1))]
        except DocumentError as exc:  # the caller's file: a 400 naming it, not the temporary copy
            raise InvalidRequest(exc.message.replace(str(path), filename), param="body") from exc


def _page(page: RenderedPage) -> dict[str, Any]:
    png = base64.b64encode(encode_image(page.image)).decode("ascii")
    return {
        "page": page.page,
        "page_count": page.page_count,
        "width": page.image.width,
        "height": page.image.height,
        "image": f"data:image/png;base64,{png}",
    }
