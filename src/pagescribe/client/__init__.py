"""Call the vision model from Python: a SageMaker endpoint, a pagescribe server, or the model in process.

    from pagescribe.client import Client

    with Client.for_endpoint("my-endpoint") as client:          # or Client.for_url("http://host:8080")
        result = client.describe("page.png", max_tokens=1024)   # a path, bytes or a PIL image
        print(result.text, result.finish_reason, result.usage.completion_tokens)

``stream`` yields the text as it is generated; ``AsyncClient`` is the asyncio twin (``describe_many`` for
batches). Results are ``pagescribe.GenerationResult``, the type the engine and the server use; errors are the
server's own ``pagescribe.errors`` classes, whichever transport carried them.
"""

from pagescribe.client.aio import AsyncClient
from pagescribe.client.client import Client
from pagescribe.client.errors import ClientConfigError, ResponseTimeout, Unreachable, parse_error
from pagescribe.client.payload import DEFAULT_PAYLOAD_LIMIT, ImageDownsizedWarning
from pagescribe.client.retry import RetryPolicy
from pagescribe.client.transport import AsyncDescriptionStream, DescriptionStream, ImageLike, Parameters
from pagescribe.types import GenerationResult

#: The client's result type before it became the one ``GenerationResult``; kept so older code still imports it.
DescribeResult = GenerationResult

__all__ = [
    "DEFAULT_PAYLOAD_LIMIT",
    "AsyncClient",
    "AsyncDescriptionStream",
    "Client",
    "ClientConfigError",
    "DescribeResult",
    "DescriptionStream",
    "GenerationResult",
    "ImageDownsizedWarning",
    "ImageLike",
    "Parameters",
    "ResponseTimeout",
    "RetryPolicy",
    "Unreachable",
    "parse_error",
]
