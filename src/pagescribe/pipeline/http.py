"""A pagescribe server (or any server speaking request format A) as a pipeline backend, over httpx.

Each page is one ``POST /invocations`` with one dialog: the message's text parts joined, ``<ImageHere>`` where
the image goes, the image as base64 PNG. ``503``/``429`` answers and connection failures are retried with
back-off (honouring ``Retry-After``); error bodies become the exception the server raised.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx

from pagescribe.errors import EngineError, PagescribeError, ServiceUnavailable
from pagescribe.images import encode_image
from pagescribe.types import (
    GenerationRequest,
    GenerationResult,
    ImagePart,
    Message,
    SamplingParams,
    Timings,
    Usage,
)
from pagescribe.wire.errors import exception_for

IMAGE_MARKER = "<ImageHere>"
_RETRY_STATUS = frozenset({429, 502, 503, 504})


def message_json(message: Message) -> dict[str, Any]:
    """One format-A message: images as base64 PNG, placed by ``<ImageHere>`` markers in the content."""
    content = "".join(IMAGE_MARKER if isinstance(p, ImagePart) else p.text for p in message.parts)
    data: dict[str, Any] = {"role": message.role, "content": content}
    images = [base64.b64encode(encode_image(img, format="PNG")).decode("ascii") for img in message.images]
    if len(images) == 1:
        data["image"] = images[0]
    elif images:
        data["images"] = images
    return data


def parameters_json(params: SamplingParams, *, time_limit_s: float | None) -> dict[str, Any]:
    """Format A's ``parameters`` for these sampling settings (unset optional ones left out)."""
    data: dict[str, Any] = {
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k,
        "min_p": params.min_p,
        "repeat_penalty": params.repeat_penalty,
        "presence_penalty": params.presence_penalty,
        "frequency_penalty": params.frequency_penalty,
    }
    if params.seed is not None:
        data["seed"] = params.seed
    if params.stop:
        data["stop"] = list(params.stop)
    if params.response_format is not None:
        data["response_format"] = params.response_format
    if time_limit_s is not None:
        data["time_limit_s"] = time_limit_s
    return data


def request_body(request: GenerationRequest) -> dict[str, Any]:
    """The whole format-A body for one request."""
    return {
        "inputs": [[message_json(m) for m in request.messages]],
        "parameters": parameters_json(request.params, time_limit_s=request.time_limit_s),
    }


def parse_response(data: Any, *, fallback_model: str) -> GenerationResult:
    """The first answer of a format-A response as a ``GenerationResult``."""
    try:
        answer = data[0]
        usage = answer.get("usage") or {}
        timings = answer.get("timings") or {}
        return GenerationResult(
            text=str(answer["generated_text"]),
            finish_reason=answer.get("finish_reason", "stop"),
            usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
            timings=Timings(
                float(timings.get("image_encode_ms", 0.0)),
                float(timings.get("prompt_ms", 0.0)),
                float(timings.get("generate_ms", 0.0)),
            ),
            model=str(answer.get("model") or fallback_model),
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise EngineError(f"the server's answer is not a format-A response: {exc!r}") from exc


class HttpBackend:
    """Sends pages to ``url`` (a server root, or its ``/invocations`` URL).

    ``concurrency`` is how many pages to keep in flight (a server queues and batches them). ``model_id``
    defaults to what the server's ``/v1/models`` lists, else the URL. ``client`` lets tests pass an in-process
    ASGI client.
    """

    def __init__(
        self,
        url: str,
        *,
        concurrency: int = 4,
        timeout_s: float = 300.0,
        retries: int = 4,
        backoff_s: float = 0.5,
        model_id: str | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        root = url.rstrip("/").removesuffix("/invocations")
        self.url = f"{root}/invocations"
        self._root = root
        self._concurrency = max(1, concurrency)
        self._retries = retries
        self._backoff_s = backoff_s
        self._model_id = model_id
        limits = httpx.Limits(max_connections=self._concurrency + 2)
        self._client = client or httpx.Client(timeout=timeout_s, limits=limits)

    @property
    def model_id(self) -> str:
        if self._model_id is None:
            self._model_id = self._ask_model_id()
        return self._model_id

    @property
    def concurrency(self) -> int:
        return self._concurrency

    def _ask_model_id(self) -> str:
        try:
            response = self._client.get(f"{self._root}/v1/models")
            response.raise_for_status()
            return str(response.json()["data"][0]["id"])
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
            return self._root

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """POST the request; retry while the server is busy or unreachable, then give up with the reason."""
        body = request_body(request)
        problem = "no attempt made"
        wait_s = 0.0
        for attempt in range(self._retries + 1):
            if attempt:
                time.sleep(wait_s)
            try:
                response = self._client.post(self.url, json=body)
            except httpx.TransportError as exc:
                problem = f"cannot reach {self.url}: {exc}"
                wait_s = self._wait(attempt, None)
                continue
            if response.status_code in _RETRY_STATUS:
                problem = f"{self.url} answered {response.status_code}"
                wait_s = self._wait(attempt, response.headers.get("retry-after"))
                continue
            if response.is_error:
                raise _error_from(response)
            return parse_response(response.json(), fallback_model=self.model_id)
        raise ServiceUnavailable(f"{problem} (gave up after {self._retries + 1} attempts)")

    def _wait(self, attempt: int, retry_after: str | None) -> float:
        """Seconds before the next try: what the server asked for, else exponential back-off."""
        try:
            if retry_after is not None:
                return min(float(retry_after), 60.0)
        except ValueError:
            pass
        return float(min(self._backoff_s * 2**attempt, 30.0))

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _error_from(response: httpx.Response) -> PagescribeError:
    try:
        error = response.json()["error"]
        return exception_for(str(error["type"]), str(error["message"]), param=error.get("param"))
    except (ValueError, KeyError, TypeError):
        return EngineError(f"{response.request.url} answered {response.status_code}: {response.text[:200]}")
