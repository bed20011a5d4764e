"""A corpus through SageMaker batch transform: `pagescribe batch submit` builds the JSON Lines requests in S3 and
starts the job (moto), the records are answered as SageMaker's MultiRecord mini-batches would be (the same .jsonl
POSTed to a local server's /invocations), and `pagescribe batch collect` turns the .out files into documents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests
from click.testing import CliRunner

from batch_support import answer_like_sagemaker
from pagescribe.cli import main
from pagescribe.engine.fake import FakeEngine
from pdfgen import blank_page, text_page, write_pdf, write_png
from servers import LiveServer, use_moto

REGION = "us-east-1"
PREFIX = "s3://corpus/batch"
ROLE = "arn:aws:iam::123456789012:role/pagescribe-execution"


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    use_moto(monkeypatch, moto_url, REGION)
    boto3.client("s3").create_bucket(Bucket="corpus")
    boto3.client("sagemaker").create_model(
        ModelName="pagescribe", ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/pagescribe:0.1.0"},
    )  # fmt: skip
    yield moto_url
    requests.post(f"{moto_url}/moto-api/reset", timeout=10)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    write_pdf(folder / "report.pdf", [text_page("One", ["first"]), blank_page(), text_page("Three", ["third"])])
    write_png(folder / "slide.png", text="A slide")
    return folder


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def read(key: str) -> bytes:
    body: bytes = boto3.client("s3").get_object(Bucket="corpus", Key=key)["Body"].read()
    return body


def test_submit_writes_the_requests_and_starts_a_multi_record_job(aws: str, docs: Path) -> None:
    code, output = cli("batch", "submit", str(docs), "--s3", PREFIX, "--model-name", "pagescribe",
                       "--job-name", "job-1", "--max-tokens", "64")  # fmt: skip
    assert code == 0, output
    assert "2 document(s), 3 page request(s)" in output  # the blank page is recorded, not sent
    report = read("batch/job-1/input/report.jsonl").decode().splitlines()
    assert len(report) == 2 and all(json.loads(line)["parameters"]["max_tokens"] == 64 for line in report)
    manifest = json.loads(read("batch/job-1/manifest.json"))
    assert [[p["line"] for p in d["pages"]] for d in manifest["documents"]] == [[0, None, 1], [0]]
    job = boto3.client("sagemaker").describe_transform_job(TransformJobName="job-1")
    assert job["BatchStrategy"] == "MultiRecord" and job["MaxPayloadInMB"] == 6
    assert job["TransformInput"]["SplitType"] == "Line"
    assert job["TransformInput"]["ContentType"] == "application/jsonlines"
    assert job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == f"{PREFIX}/job-1/input/"
    assert job["TransformOutput"] == {"S3OutputPath": f"{PREFIX}/job-1/output/", "Accept": "application/jsonlines",
                                      "AssembleWith": "Line"}  # fmt: skip
    # No client stands by to continue an answer a budget cut: the container gets most of the request timeout, and
    # is sized for the job's instance type (4 physical cores of an ml.c6i.2xlarge) as an async endpoint is.
    assert job["Environment"] == {
        "PAGESCRIBE_TIME_LIMIT_S": "3000", "PAGESCRIBE_THREADS": "4", "PAGESCRIBE_SLOTS": "2", "PAGESCRIBE_CTX": "4096",
    }
    assert job["ModelClientConfig"]["InvocationsTimeoutInSeconds"] == 3600
    code, output = cli("batch", "status", "job-1")
    assert code == 0 and "job-1: Completed" in output


def test_collect_turns_the_answers_into_documents_and_reports_a_failed_record(
    aws: str, docs: Path, tmp_path: Path
) -> None:
    submitted = cli("batch", "submit", str(docs), "--s3", PREFIX, "--model-name", "pagescribe", "--job-name", "job-2")
    assert submitted[0] == 0
    engine = FakeEngine(model_name="served-model", reply="The page lists widgets.", n_slots=2)
    with LiveServer(engine) as server:
        answer_like_sagemaker(server.url, "job-2", "report", broken=1)
        answer_like_sagemaker(server.url, "job-2", "slide")
    out = tmp_path / "out"
    code, output = cli("batch", "collect", "job-2", "--s3", PREFIX, "--out", str(out))
    assert code == 1, output  # one page failed
    report = [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]
    assert [(r["page"], r["status"]) for r in report] == [(1, "ok"), (2, "blank"), (3, "failed")]
    assert report[0]["text"] == engine.reply and report[0]["model"] == "served-model"
    assert report[0]["image"]["width"] > 0 and report[0]["usage"]["completion_tokens"] > 0
    assert "InvalidRequest" in report[2]["error"] and report[2]["fallback_text"]  # the text layer is kept
    [slide] = [json.loads(line) for line in (out / "slide.jsonl").read_text().splitlines()]
    assert slide["status"] == "ok" and (out / "slide.md").read_text().strip()
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["pages_ok"], summary["pages_blank"], summary["pages_failed"]) == (2, 1, 1)
    assert (out / "chunks.jsonl").read_text().count("\n") >= 2


def test_collect_of_an_unknown_job_says_so(aws: str, tmp_path: Path) -> None:
    code, output = cli("batch", "collect", "nope", "--s3", PREFIX, "--out", str(tmp_path / "out"))
    assert code == 1 and "no batch job 'nope'" in output
