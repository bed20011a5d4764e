"""Schemathesis against the server's own OpenAPI document: generated requests, valid and not, on every route.

Whatever arrives, the server never answers 5xx, every answer matches the document (status, content type,
body schema, server-sent events included), and bodies the schema rejects are rejected. Schema-valid bodies
may still be refused (an ``image_url`` that is no image, a system-only dialog), which is why the check that
every schema-valid request succeeds is left out. The examples are bounded so the test stays quick.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, settings
from liveserver import free_port, wait_until

from pagescribe.engine.fake import FakeEngine
from pagescribe.server.openapi import build_openapi
from pagescribe.server.run import make_server
from pagescribe.server.settings import ServerSettings

schemathesis = pytest.importorskip("schemathesis")

schema = schemathesis.openapi.from_dict(build_openapi())
EXCLUDED = [schemathesis.checks.positive_data_acceptance]


@schemathesis.serializer("application/jsonlines")
def _jsonlines(_: object, value: object) -> bytes:
    """JSON Lines bodies as generated: any text (the document says only "a string"), sent as UTF-8."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text.encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    port = free_port()
    server = make_server(ServerSettings(host="127.0.0.1", port=port), FakeEngine(n_slots=2))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/ping", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(ready, timeout=20, what="the server")
    yield url
    server.should_exit = True
    thread.join(10)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_5xx_and_every_answer_matches_the_document(case: schemathesis.Case, base_url: str) -> None:
    excluded = list(EXCLUDED)
    if case.media_type == "application/jsonlines":
        # Any text is a JSON Lines body; a batch of broken records is still a 200 with an error line each.
        excluded.append(schemathesis.checks.negative_data_rejection)
    case.call_and_validate(base_url=base_url, excluded_checks=excluded, timeout=30)
