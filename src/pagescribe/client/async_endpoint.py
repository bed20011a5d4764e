"""A SageMaker asynchronous endpoint as a transport: the request body goes to S3, ``InvokeEndpointAsync`` queues it,
and the answer is read back from the output location (or the error from the failure location) once it is there.

An async endpoint has no 60 s limit (``InvocationTimeoutSeconds`` up to an hour) and no 6 MB payload limit, and
scales to zero when idle: the way to put a whole corpus through a model. Each request is stored under its content
hash (``PREFIX/inputs/<sha256>.json``) with a ticket naming where its answer will be (``PREFIX/tickets/...``), so
a run that was stopped and started again waits for the answers it already asked for instead of asking again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pagescribe.aws.s3 import S3Location, read_object, write_object
from pagescribe.client.answers import result_from_body
from pagescribe.client.errors import ClientConfigError, ResponseTimeout, from_envelope
from pagescribe.client.payload import build_body
from pagescribe.client.sagemaker import aws_failure, runtime_client
from pagescribe.client.transport import CHECK_LIMITS, Item
from pagescribe.errors import EngineError, PagescribeError
from pagescribe.types import GenerationRequest, GenerationResult

JSON = "application/json"
#: SageMaker's most for ``InvocationTimeoutSeconds``.
MAX_INVOCATION_TIMEOUT_S = 3600
#: Requests to keep in flight: they wait in SageMaker's queue, which scales the endpoint, not here.
DEFAULT_ASYNC_CONCURRENCY = 16


@dataclass(frozen=True, slots=True)
class Ticket:
    """Where one queued request's answer will appear, and when it was asked for (epoch seconds)."""

    input: str
    output: str
    failure: str
    inference_id: str
    submitted: float


class AsyncEndpointTransport:
    """Blocking transport over boto3's ``sagemaker-runtime`` ``invoke_endpoint_async`` and S3.

    ``poll_s`` is the first wait between looks at the output location; it grows by half each time up to
    ``max_poll_s``. A request whose answer has not appeared ``invocation_timeout_s`` plus ``grace_s`` after it
    was queued is a ``ResponseTimeout``.
    """

    image_limits = CHECK_LIMITS
    concurrency = DEFAULT_ASYNC_CONCURRENCY

    def __init__(
        self,
        endpoint_name: str,
        *,
        s3_prefix: str,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        invocation_timeout_s: int = MAX_INVOCATION_TIMEOUT_S,
        poll_s: float = 0.5,
        max_poll_s: float = 30.0,
        grace_s: float = 600.0,
        runtime: Any = None,
        s3: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= invocation_timeout_s <= MAX_INVOCATION_TIMEOUT_S:
            raise ClientConfigError(f"the invocation timeout must be 1 to {MAX_INVOCATION_TIMEOUT_S} s")
        self.endpoint_name = endpoint_name
        self.location = S3Location.parse(s3_prefix)
        self.target = f"sagemaker-async:{endpoint_name}"
        self.source = f"async endpoint {endpoint_name!r}"
        self.invocation_timeout_s = invocation_timeout_s
        self.poll_s, self.max_poll_s, self.grace_s = poll_s, max_poll_s, grace_s
        self._sleep = sleep
        self._runtime = runtime or runtime_client(
            region=region, profile=profile, endpoint_url=endpoint_url, read_timeout_s=60, connect_timeout_s=10,
            max_connections=self.concurrency,
        )
        self._s3 = s3 or _s3_client(region=region, profile=profile)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        body = build_body(request, payload_limit=None)
        key = hashlib.sha256(body).hexdigest()
        return result_from_body(self._answer(self._ticket(key, body)), source=self.source)

    def stream(self, request: GenerationRequest) -> Iterator[Item]:
        """An async endpoint answers whole: the text comes as one piece when the answer is there."""
        result = self.generate(request)
        if result.text:
            yield result.text
        yield result

    def model_id(self) -> str | None:
        return None

    def close(self) -> None:
        for client in (self._runtime, self._s3):
            close = getattr(client, "close", None)
            if close is not None:
                close()

    # -- queueing ------------------------------------------------------------------------------------------

    def _ticket(self, key: str, body: bytes) -> Ticket:
        """The ticket of an earlier run for this very request (while its answer may still come), or a new
        request queued now."""
        stored = self._s3_call(read_object, self._s3, self._ticket_uri(key))
        if stored is not None:
            try:
                ticket = Ticket(**json.loads(stored))
            except (ValueError, TypeError):
                ticket = None  # a torn ticket: ask again
            if ticket is not None and time.time() < self._deadline(ticket):
                return ticket
        self._s3_call(write_object, self._s3, self._input_uri(key), body)
        return self._invoke(key)

    def _invoke(self, key: str) -> Ticket:
        try:
            response = self._runtime.invoke_endpoint_async(
                EndpointName=self.endpoint_name,
                InputLocation=self._input_uri(key),
                ContentType=JSON,
                Accept=JSON,
                InferenceId=key[:64],
                InvocationTimeoutSeconds=self.invocation_timeout_s,
            )
        except (ClientError, BotoCoreError) as exc:
            failure = aws_failure(exc, source=self.source)
            raise getattr(failure, "error", failure) from exc
        ticket = Ticket(
            input=self._input_uri(key),
            output=str(response["OutputLocation"]),
            failure=str(response.get("FailureLocation") or ""),
            inference_id=str(response.get("InferenceId") or key[:64]),
            submitted=time.time(),
        )
        self._s3_call(write_object, self._s3, self._ticket_uri(key), json.dumps(asdict(ticket)).encode())
        return ticket

    def _answer(self, ticket: Ticket) -> bytes:
        """Wait for the output object (or the failure object, raised as the error it holds)."""
        deadline = self._deadline(ticket)
        wait = self.poll_s
        while True:
            data: bytes | None = self._s3_call(read_object, self._s3, ticket.output)
            if data is not None:
                return data
            if ticket.failure:
                failed = self._s3_call(read_object, self._s3, ticket.failure)
                if failed is not None:
                    raise self._failure(failed)
            if time.time() > deadline:
                raise ResponseTimeout(
                    f"{self.source}: no answer at {ticket.output} {self.invocation_timeout_s + self.grace_s:.0f} s "
                    "after the request was queued"
                )
            self._sleep(wait)
            wait = min(self.max_poll_s, wait * 1.5)

    def _deadline(self, ticket: Ticket) -> float:
        return ticket.submitted + self.invocation_timeout_s + self.grace_s

    def _failure(self, data: bytes) -> PagescribeError:
        text = data.decode("utf-8", "replace")
        return from_envelope(text) or EngineError(f"{self.source}: the request failed: {text[:500]}")

    def _input_uri(self, key: str) -> str:
        return self.location.uri(f"inputs/{key}.json")

    def _ticket_uri(self, key: str) -> str:
        return self.location.uri(f"tickets/{key}.json")

    def _s3_call(self, operation: Callable[..., Any], *args: Any) -> Any:
        try:
            return operation(*args)
        except (ClientError, BotoCoreError) as exc:
            raise _s3_failure(exc, where=self.location.uri()) from exc


def _s3_client(*, region: str | None, profile: str | None) -> Any:
    import boto3

    try:
        return boto3.Session(profile_name=profile, region_name=region).client("s3")
    except BotoCoreError as exc:
        raise ClientConfigError(f"cannot set up S3: {exc}") from exc


def _s3_failure(exc: Exception, *, where: str) -> PagescribeError:
    """What an S3 failure means to the caller: a bucket or permission problem is configuration."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        message = str(exc.response.get("Error", {}).get("Message", "")) or code
        if code in ("NoSuchBucket", "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return ClientConfigError(f"{where}: {code}: {message}")
        return EngineError(f"{where}: {code}: {message}")
    failure = aws_failure(exc, source=where)
    error = getattr(failure, "error", failure)
    return error if isinstance(error, PagescribeError) else EngineError(str(error))
