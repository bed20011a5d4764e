"""A SageMaker endpoint through boto3's ``sagemaker-runtime``: InvokeEndpoint and its response stream.

Retries are split so nothing is retried twice. botocore (standard mode) retries what it understands:
throttling, the runtime's own 5xx and connection failures. It never retries ``ModelError`` (424), which is
how the runtime reports the *container's* answer, nor ``ModelNotReadyException``; for those this transport
retries when the container said 429/503 (queue full, model loading), through the same policy as HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import urllib3.exceptions
from botocore.exceptions import BotoCoreError, ClientError

from pagescribe import __version__
from pagescribe.client import retry
from pagescribe.client.answers import LineDecoder, result_from_body
from pagescribe.client.errors import (
    RETRY_STATUSES,
    ClientConfigError,
    ResponseTimeout,
    Unreachable,
    from_envelope,
    parse_error,
    retry_after_s,
)
from pagescribe.client.payload import DEFAULT_PAYLOAD_LIMIT, build_body
from pagescribe.client.retry import RetryPolicy, TryAgain
from pagescribe.client.transport import (
    CHECK_LIMITS,
    DEFAULT_CONCURRENCY,
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_READ_TIMEOUT_S,
    Item,
)
from pagescribe.errors import (
    EngineError,
    InvalidRequest,
    NotReady,
    Overloaded,
    PagescribeError,
    ServiceUnavailable,
)
from pagescribe.types import GenerationRequest, GenerationResult

JSON = "application/json"
_THROTTLED = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"})
_CREDENTIALS = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
    }
)


def runtime_client(
    *,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    read_timeout_s: float,
    connect_timeout_s: float,
    max_connections: int,
) -> Any:
    """A ``sagemaker-runtime`` client with SageMaker-sized timeouts and botocore's standard retry mode.

    Only the mode is set, so ``AWS_MAX_ATTEMPTS`` / ``max_attempts`` in the AWS config still apply
    (botocore's default is 3 attempts).
    """
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        retries={"mode": "standard"},
        max_pool_connections=max_connections,
        tcp_keepalive=True,
        user_agent_extra=f"pagescribe/{__version__}",
    )
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
        return session.client("sagemaker-runtime", endpoint_url=endpoint_url, config=config)
    except BotoCoreError as exc:
        raise botocore_error(exc, source="the SageMaker runtime client") from exc


class SageMakerTransport:
    """Blocking transport over boto3. The boto3 client is thread-safe, so ``AsyncClient`` shares one."""

    image_limits = CHECK_LIMITS
    concurrency = DEFAULT_CONCURRENCY

    def __init__(
        self,
        endpoint_name: str,
        *,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        payload_limit: int | None = DEFAULT_PAYLOAD_LIMIT,
        max_connections: int = 10,
        client: Any = None,
    ) -> None:
        self.endpoint_name = endpoint_name
        self.target = f"sagemaker:{endpoint_name}"
        self.source = f"endpoint {endpoint_name!r}"
        self.retry = retry or RetryPolicy()
        self.payload_limit = payload_limit
        self._client = client or runtime_client(
            region=region,
            profile=profile,
            endpoint_url=endpoint_url,
            read_timeout_s=read_timeout_s,
            connect_timeout_s=connect_timeout_s,
            max_connections=max_connections,
        )

    def generate(self, request: GenerationRequest) -> GenerationResult:
        body = build_body(request, payload_limit=self.payload_limit)
        response = retry.call(lambda: self._call("invoke_endpoint", body, accept=JSON), self.retry, what=self.source)
        return result_from_body(response["Body"].read(), source=self.source)

    def stream(self, request: GenerationRequest) -> Iterator[Item]:
        body = build_body(request, payload_limit=self.payload_limit, stream=True)
        response = retry.call(
            lambda: self._call("invoke_endpoint_with_response_stream", body, accept="application/jsonlines"),
            self.retry,
            what=self.source,
        )
        return self._read(response["Body"])

    def _call(self, operation: str, body: bytes, *, accept: str) -> Any:
        try:
            return getattr(self._client, operation)(
                EndpointName=self.endpoint_name, ContentType=JSON, Accept=accept, Body=body
            )
        except (ClientError, BotoCoreError) as exc:
            raise aws_failure(exc, source=self.source) from exc

    def _read(self, events: Any) -> Iterator[Item]:
        decoder = LineDecoder(source=self.source)
        try:
            for event in events:
                part = event.get("PayloadPart")
                if part is not None:
                    yield from decoder.feed(part.get("Bytes", b""))
            yield from decoder.finish()
        except (ClientError, BotoCoreError) as exc:
            failure = aws_failure(exc, source=self.source)
            raise (failure.error if isinstance(failure, TryAgain) else failure) from exc
        except urllib3.exceptions.ReadTimeoutError as exc:
            # botocore reads event streams straight from urllib3, whose errors it does not wrap.
            raise ResponseTimeout(f"{self.source} sent nothing more within the read timeout") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise Unreachable(f"the response stream from {self.source} broke off: {exc}") from exc
        finally:
            events.close()

    def model_id(self) -> str | None:
        """SageMaker's runtime cannot tell which model an endpoint serves."""
        return None

    def close(self) -> None:
        self._client.close()


def aws_failure(exc: Exception, *, source: str) -> Exception:
    """The ``PagescribeError`` (or ``TryAgain``) a boto3 failure stands for."""
    if isinstance(exc, ClientError):
        return client_error(exc.response, source=source)
    return botocore_error(exc, source=source)


def client_error(response: dict[str, Any], *, source: str) -> Exception:
    """An error the runtime answered with; the container's own error comes back as the server raised it."""
    code = str(response.get("Error", {}).get("Code", ""))
    message = str(response.get("Error", {}).get("Message", "")) or code
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    if code == "ModelError":
        original = int(response.get("OriginalStatusCode") or 0)
        error = parse_error(original, response.get("OriginalMessage") or message, headers=headers, source=source)
        if original in RETRY_STATUSES:
            return TryAgain(error, retry_after_s=retry_after_s(headers))
        return error
    if code == "ModelNotReadyException":
        return TryAgain(NotReady(f"{source}: {message}"))
    if code == "ModelStreamError":
        # pagescribe puts its error envelope in the message; other containers put plain text there (botocore
        # drops the event's ErrorCode, so the message is all there is).
        return from_envelope(message) or EngineError(f"{source}: {code}: {message}")
    return _runtime_error(code, message, status, source=source)


def _runtime_error(code: str, message: str, status: int, *, source: str) -> PagescribeError:
    text = f"{source}: {code}: {message}" if code else f"{source}: {message}"
    if code in _THROTTLED or status == 429:
        return Overloaded(text)
    if code in _CREDENTIALS or status == 403:
        return ClientConfigError(text)
    if code == "ValidationError" or 400 <= status < 500:
        return InvalidRequest(text)
    if status in (503, 530) or code in ("ServiceUnavailable", "InternalDependencyException"):
        return ServiceUnavailable(text)
    return EngineError(text)


def botocore_error(exc: Exception, *, source: str) -> PagescribeError:
    """botocore's own failures (after its retries): connection, timeout, credentials, parameters."""
    from botocore import exceptions as bce

    if isinstance(exc, bce.ReadTimeoutError):
        return ResponseTimeout(f"{source} sent no answer within the read timeout: {exc}")
    if isinstance(exc, bce.ConnectionError | bce.HTTPClientError):
        return Unreachable(f"cannot reach {source}: {exc}")
    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError | bce.ProfileNotFound):
        return ClientConfigError(f"{exc} (configure AWS credentials, or pass a profile)")
    if isinstance(exc, bce.NoRegionError):
        return ClientConfigError(f"{exc} (pass a region, or set AWS_REGION)")
    if isinstance(exc, bce.ParamValidationError):
        return InvalidRequest(f"{source}: {exc}")
    return EngineError(f"{source}: {exc}")
