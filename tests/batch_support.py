"""What SageMaker batch transform does with a job's input, for tests (no tests here): each input file's lines POSTed
to the container's ``/invocations`` as JSON Lines mini-batches (BatchStrategy MultiRecord), and the answers
assembled line by line (AssembleWith Line) into ``NAME.jsonl.out`` beside the job's other outputs."""

from __future__ import annotations

import boto3
import httpx


def answer_like_sagemaker(
    server_url: str, job: str, name: str, *, bucket: str = "corpus", prefix: str = "batch", per_request: int = 2,
    broken: int | None = None,
) -> None:
    """Answer ``s3://bucket/prefix/job/input/NAME.jsonl``; ``broken`` replaces that line with malformed JSON."""
    s3 = boto3.client("s3")
    lines = s3.get_object(Bucket=bucket, Key=f"{prefix}/{job}/input/{name}.jsonl")["Body"].read().decode().splitlines()
    if broken is not None:
        lines[broken] = '{"inputs": "not a dialog batch"'
    out: list[str] = []
    for start in range(0, len(lines), per_request):
        body = "\n".join(lines[start : start + per_request]) + "\n"
        response = httpx.post(
            f"{server_url}/invocations", content=body, headers={"Content-Type": "application/jsonlines"}, timeout=120
        )
        assert response.status_code == 200, response.text
        out += response.text.splitlines()
    s3.put_object(Bucket=bucket, Key=f"{prefix}/{job}/output/{name}.jsonl.out", Body=("\n".join(out) + "\n").encode())
