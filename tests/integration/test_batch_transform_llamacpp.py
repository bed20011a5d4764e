"""Batch transform's record side through the real llama.cpp engine: the job's .jsonl answered by `pagescribe serve`
as SageMaker sends it (MultiRecord JSON Lines), collected into the same page texts `convert` writes in process."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import requests

from batch_support import answer_like_sagemaker
from pagescribe.aws.s3 import S3Location
from pagescribe.client import Client
from pagescribe.engine.factory import build_engine
from pagescribe.engine.options import EngineOptions
from pagescribe.models.files import ModelFiles
from pagescribe.pipeline import ConvertOptions, convert
from pagescribe.pipeline.batch_transform import collect, job_request, prepare
from pagescribe.types import SamplingParams
from pdfgen import text_page, write_pdf
from servers import LiveServer, use_moto


def test_a_transform_job_gives_the_texts_convert_gives(
    tiny_model: ModelFiles, moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_moto(monkeypatch, moto_url, "us-east-1")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="corpus")
    pdf = write_pdf(tmp_path / "docs" / "report.pdf", [text_page(f"Part {n}", [f"line {n}"]) for n in range(3)])
    options = ConvertOptions(route="vlm", params=SamplingParams(max_tokens=12, seed=0))
    prefix = S3Location.parse("s3://corpus/batch")
    manifest = prepare([pdf], s3=s3, prefix=prefix, job="job", model_name="pagescribe", options=options)
    assert job_request(manifest, prefix=prefix, instance_type="ml.c6i.2xlarge", instance_count=1)["ModelName"]
    # One slot on both sides: greedy text is the same only for the same batches (see the continuation tests).
    engine_options = EngineOptions(ctx=2048, threads=2, slots=1)
    with LiveServer(build_engine(engine_options, files=tiny_model)) as server:
        answer_like_sagemaker(server.url, "job", "report")
    summary = collect(s3, prefix=prefix, job="job", out_dir=tmp_path / "batch-out")
    assert summary.succeeded
    batched = [json.loads(line) for line in (tmp_path / "batch-out" / "report.jsonl").read_text().splitlines()]
    with Client.in_process(options=engine_options, model=str(tiny_model.text), mmproj=str(tiny_model.mmproj)) as local:
        direct = list(convert([pdf], out_dir=tmp_path / "convert-out", backend=local, options=options))
    assert [r["text"] for r in batched] == [r.text for r in sorted(direct, key=lambda r: r.page or 0)]
    assert all(r["status"] == "ok" for r in batched)
    requests.post(f"{moto_url}/moto-api/reset", timeout=10)
