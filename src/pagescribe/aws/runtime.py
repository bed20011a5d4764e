"""Invoke a deployed endpoint with boto3's ``sagemaker-runtime``, sending the dialog-batch request (format A).

A stop-gap transport for ``pagescribe endpoint invoke``; the project client replaces it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from pagescribe.errors import PagescribeError

DEFAULT_PROMPT = "Transcribe this page into Markdown. Keep the reading order; describe figures briefly."


class InvokeError(PagescribeError):
    """The endpoint could not be called or answered with an error."""


def page_request(image: bytes, *, prompt: str = DEFAULT_PROMPT, max_tokens: int = 1024) -> dict[str, Any]:
    """One dialog with one user turn: the page image at the ``<ImageHere>`` marker, then the prompt."""
    return {
        "inputs": [
            [{"role": "user", "content": f"<ImageHere>{prompt}", "image": base64.b64encode(image).decode()}]
        ],
        "parameters": {"max_tokens": max_tokens},
    }


def invoke_json(endpoint_name: str, body: dict[str, Any], *, client: Any = None) -> Any:
    """POST ``body`` as JSON to the endpoint and return the decoded JSON answer."""
    from botocore.exceptions import ClientError

    runtime = client if client is not None else _client()
    try:
        response = runtime.invoke_endpoint(
            EndpointName=endpoint_name,
            ContentType="application/json",
            Accept="application/json",
            Body=json.dumps(body).encode(),
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise InvokeError(f"{error.get('Code', 'Error')}: {error.get('Message', str(exc))}") from exc
    payload = response["Body"].read()
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise InvokeError(f"endpoint answered with non-JSON: {payload[:200]!r}") from exc


def generated_texts(answer: Any) -> list[str]:
    """The ``generated_text`` of each dialog in a format-A response."""
    if not isinstance(answer, list) or not all(isinstance(item, dict) for item in answer):
        raise InvokeError(f"unexpected response shape: {str(answer)[:200]}")
    return [str(item.get("generated_text", "")) for item in answer]


def _client() -> Any:
    import boto3

    return boto3.client("sagemaker-runtime")
