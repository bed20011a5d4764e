"""Describe a document page with a pagescribe model deployed on a SageMaker endpoint.

The tidy successor of the 20-line boto3 snippet many of us started from ("llm_envoke"): it sends the same
request -- the page image as base64 at an ``<ImageHere>`` marker, the document prompt, and the usual
parameters -- and prints the description. What the snippet left out is done by ``pagescribe.client``:

* the image is checked before sending (a corrupt file is a clear error naming it), and a page that would
  push the request over SageMaker's 6 MB payload limit is downsized, keeping its aspect, with a warning;
* timeouts fit SageMaker real-time hosting (the endpoint ends a request at 60 s; the client waits 70 s);
* throttling, a busy model (429/503) and connection failures are retried with exponential back-off and
  jitter (``Retry-After`` honoured); a refused request (400) is not, and its message is shown as sent;
* errors come back as pagescribe's own exceptions (``ImageError``, ``InvalidRequest``, ...).

Usage:
    python examples/invoke_endpoint.py page.png --endpoint text-vision-llm-model-7B-image2text
    python examples/invoke_endpoint.py page.png --endpoint NAME --region eu-west-1 --stream

Region and credentials come from the usual AWS configuration (environment, ~/.aws, instance role). To try it
against a local server instead of AWS, run `pagescribe serve` and point boto3 at it:
    AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://127.0.0.1:8080 python examples/invoke_endpoint.py page.png ...
"""

from __future__ import annotations

import argparse
import sys

from pagescribe.client import Client, Parameters
from pagescribe.errors import PagescribeError
from pagescribe.prompts import load_prompt

# The parameters the first clients sent with every page: up to 1024 new tokens, nucleus sampling at 0.8,
# and a very light repetition penalty (llama.cpp names; the server also accepts max_new_tokens etc.).
PARAMETERS: Parameters = {"max_tokens": 1024, "top_p": 0.8, "temperature": 1.0, "repeat_penalty": 1.005}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Describe a page image with a SageMaker endpoint.")
    parser.add_argument("image", help="the page image (PNG, JPEG, WebP, GIF, BMP or TIFF)")
    parser.add_argument("--endpoint", required=True, help="the SageMaker endpoint name")
    parser.add_argument("--region", help="AWS region (default: from the AWS configuration)")
    parser.add_argument("--profile", help="AWS profile (default: from the AWS configuration)")
    parser.add_argument("--stream", action="store_true", help="print the text as it is generated")
    parser.add_argument("--max-tokens", type=int, default=PARAMETERS["max_tokens"], help="longest answer, in tokens")
    args = parser.parse_args(argv)
    parameters: Parameters = {**PARAMETERS, "max_tokens": args.max_tokens}

    # The packaged document prompt: transcribe the page faithfully, in reading order, for RAG.
    prompt = load_prompt("document").text

    # One client per process is enough: it keeps its connections open and is safe to share across threads.
    with Client.for_endpoint(args.endpoint, region=args.region, profile=args.profile) as client:
        try:
            if args.stream:
                # InvokeEndpointWithResponseStream: pieces of text arrive as the model writes them.
                with client.stream(args.image, prompt=prompt, **parameters) as pieces:
                    for piece in pieces:
                        print(piece, end="", flush=True)
                print()
                result = pieces.result
            else:
                # InvokeEndpoint: one request, the whole answer at once.
                result = client.describe(args.image, prompt=prompt, **parameters)
                print(result.text)
        except PagescribeError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1

    # "length" means max_tokens cut the answer short; "time_limit" that the server's time budget ran out
    # (the text so far is still returned). Both are worth knowing when the page is long.
    if result.finish_reason != "stop":
        print(f"(finished early: {result.finish_reason})", file=sys.stderr)
    print(f"({result.usage.prompt_tokens} prompt + {result.usage.completion_tokens} generated tokens)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
