"""Call the vision model from Python: a SageMaker endpoint, a pagescribe server, or the model in process.

    from pagescribe.client import Client

    with Client.for_endpoint("my-endpoint") as client:          # or Client.for_url("http://host:8080")
        result = client.describe("page.png", max_tokens=1024)   # a path, bytes or a PIL image
        print(result.text, result.finish_reason, result.usage.completion_tokens)

``stream`` yields the text as it is generated; ``AsyncClient`` is the asyncio twin (``describe_many`` for
batches). Errors are the server's own ``pagescribe.errors`` classes, whichever transport carried them.
"""

from pagescribe.client.aio import AsyncClient, AsyncDescriptionStream
from pagescribe.client.base import Client, DescribeResult, DescriptionStream, Parameters
from pagescribe.client.errors import ClientConfigError, ResponseTimeout, Unreachable, parse_error
from pagescribe.client.payload import DEFAULT_PAYLOAD_LIMIT, ImageDownsizedWarning, ImageLike
from pagescribe.client.retry import RetryPolicy

__all__ = [
    "DEFAULT_PAYLOAD_LIMIT",
    "AsyncClient",
    "AsyncDescriptionStream",
    "Client",
    "ClientConfigError",
    "DescribeResult",
    "DescriptionStream",
    "ImageDownsizedWarning",
    "ImageLike",
    "Parameters",
    "ResponseTimeout",
    "RetryPolicy",
    "Unreachable",
    "parse_error",
]
