"""A model served elsewhere as a pipeline backend: every page goes through ``pagescribe.client.Client``.

The client carries the page (a pagescribe server over HTTP, or a SageMaker endpoint through boto3) and owns
retries, back-off, timeouts and typed errors; this module only translates. The request's one user turn
becomes the client's prompt, with ``<ImageHere>`` where each image was among the text parts, and its
sampling settings become the client's parameters.
"""

from __future__ import annotations

from typing import cast, get_args

from pagescribe.client import Client, ClientConfigError, DescribeResult, Parameters
from pagescribe.errors import InvalidRequest, ServiceUnavailable
from pagescribe.types import (
    FinishReason,
    GenerationRequest,
    GenerationResult,
    ImageInput,
    ImagePart,
    SamplingParams,
)

IMAGE_MARKER = "<ImageHere>"
#: Pages kept in flight by default: enough to keep a server's batch busy without crowding its queue.
DEFAULT_CONCURRENCY = 4
_FINISH_REASONS: frozenset[str] = frozenset(get_args(FinishReason))


class ClientBackend:
    """Sends each page to the model behind ``client``; ``model_id`` names that model in the resume cache.

    ``generate`` may run on several threads at once (the HTTP and boto3 clients both allow it). It raises the
    client's ``PagescribeError`` subclasses: ``ServiceUnavailable`` ones (busy, unreachable, timed out, and
    missing AWS credentials or region) are transient, so the pipeline does not cache those pages and a rerun
    asks again.
    """

    def __init__(self, client: Client, *, model_id: str, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.client = client
        self._model_id = model_id
        self._concurrency = max(1, concurrency)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def concurrency(self) -> int:
        return self._concurrency

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Ask the model once (the client retries what may be retried) and translate the answer."""
        prompt, images = prompt_and_images(request)
        try:
            answer = self.client.describe(images, prompt=prompt, **parameters_for(request))
        except ClientConfigError as exc:
            # Missing credentials or region are no fault of the page: reported as transient, a rerun with the
            # configuration fixed asks again instead of finding the failure in the cache.
            raise ServiceUnavailable(exc.message) from exc
        return self._result(answer)

    def _result(self, answer: DescribeResult) -> GenerationResult:
        return GenerationResult(
            text=answer.text,
            finish_reason=_finish_reason(answer.finish_reason),
            usage=answer.usage,
            timings=answer.timings,
            model=answer.model or self._model_id,
        )

    def close(self) -> None:
        """Release the client's connections."""
        self.client.close()


def prompt_and_images(request: GenerationRequest) -> tuple[str, list[ImageInput]]:
    """The request's one user turn as the client's prompt (``<ImageHere>`` per image) and its images."""
    if len(request.messages) != 1 or request.messages[0].role != "user":
        raise InvalidRequest("a remote model is sent one user turn per page; this request has another shape")
    message = request.messages[0]
    texts = [part.text for part in message.parts if not isinstance(part, ImagePart)]
    if any(IMAGE_MARKER in text for text in texts):
        # The wire format has no escape for the marker: the server would read it as a missing image.
        raise InvalidRequest(f"the text sent with the page contains {IMAGE_MARKER}, which marks an image")
    prompt = "".join(IMAGE_MARKER if isinstance(part, ImagePart) else part.text for part in message.parts)
    return prompt, list(message.images)


def _finish_reason(reason: str) -> FinishReason:
    # Another server may give a reason this vocabulary lacks; its text is complete, so it counts as a stop.
    return cast(FinishReason, reason) if reason in _FINISH_REASONS else "stop"


def parameters_for(request: GenerationRequest) -> Parameters:
    """The client's parameters for the request's sampling settings and time limit (unset ones left out)."""
    params: SamplingParams = request.params
    parameters = Parameters(
        max_tokens=params.max_tokens,
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=params.top_k,
        min_p=params.min_p,
        repeat_penalty=params.repeat_penalty,
        presence_penalty=params.presence_penalty,
        frequency_penalty=params.frequency_penalty,
    )
    if params.seed is not None:
        parameters["seed"] = params.seed
    if params.stop:
        parameters["stop"] = list(params.stop)
    if params.response_format is not None:
        # The internal form is also a valid wire form ({"type": "json_object"} or {"type": "json_schema", ...}).
        parameters["response_format"] = params.response_format
    if request.time_limit_s is not None:
        parameters["time_limit_s"] = request.time_limit_s
    return parameters
