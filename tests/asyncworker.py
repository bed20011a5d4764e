"""A stand-in for SageMaker's asynchronous inference, for tests only (no tests here).

``InvokeEndpointAsync`` (``POST /endpoints/{name}/async-invocations``, as boto3 sends it) answers 202 at once with
the output and failure locations; a worker then reads the queued input object from S3 (moto), POSTs it to a
pagescribe server's ``/invocations`` as SageMaker's async worker does, and writes the answer to the output object,
or the container's error to the failure object. Point boto3 at it with ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from servers import free_port


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


@dataclass
class AsyncRuntime:
    """Runs on a free loopback port while entered; ``invoked`` lists every input location it was given."""

    model_url: str
    s3_endpoint: str
    output_path: str  # s3://bucket/prefix/, as AsyncInferenceConfig.OutputConfig.S3OutputPath
    failure_path: str
    delay_s: float = 0.0  # how long a request waits in the "queue" before the model sees it
    invoked: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = Starlette(routes=[Route("/endpoints/{name}/async-invocations", self._invoke, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self._tasks: set[asyncio.Task[None]] = set()

    def __enter__(self) -> AsyncRuntime:
        self.thread.start()
        end = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < end, "the async runtime stand-in did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def s3(self) -> Any:
        return boto3.client("s3", endpoint_url=self.s3_endpoint, region_name="us-east-1")

    async def _invoke(self, request: Request) -> JSONResponse:
        source = request.headers["x-amzn-sagemaker-inputlocation"]
        self.invoked.append(source)
        name = str(uuid.uuid4())
        output = f"{self.output_path}{name}.out"
        failure = f"{self.failure_path}{name}-error.out"
        task = asyncio.create_task(self._work(source, output, failure, request.headers))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        headers = {"X-Amzn-SageMaker-OutputLocation": output, "X-Amzn-SageMaker-FailureLocation": failure}
        inference_id = request.headers.get("x-amzn-sagemaker-inference-id") or name
        return JSONResponse({"InferenceId": inference_id}, status_code=202, headers=headers)

    async def _work(self, source: str, output: str, failure: str, headers: Any) -> None:
        await asyncio.sleep(self.delay_s)
        s3 = self.s3()
        bucket, key = _split(source)
        body = await asyncio.to_thread(lambda: s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        content_type = headers.get("x-amzn-sagemaker-content-type", "application/json")
        async with httpx.AsyncClient(timeout=120) as client:
            answer = await client.post(
                f"{self.model_url}/invocations", content=body, headers={"Content-Type": content_type}
            )
        target = output if answer.status_code < 400 else failure
        out_bucket, out_key = _split(target)
        await asyncio.to_thread(lambda: s3.put_object(Bucket=out_bucket, Key=out_key, Body=answer.content))
        self.done.append(source)
