"""`pagescribe batch submit|status|collect`: a corpus through SageMaker batch transform."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from pagescribe.aws.s3 import S3Location
from pagescribe.errors import PagescribeError
from pagescribe.pipeline import batch_transform
from pagescribe.pipeline.options import ConvertOptions
from pagescribe.pipeline.render import parse_page_ranges
from pagescribe.prompts import load_prompt
from pagescribe.types import SamplingParams

_region = click.option("--region", default=None, help="AWS region [default: from the AWS configuration].")
_profile = click.option("--profile", default=None, help="AWS profile [default: from the AWS configuration].")
_s3 = click.option(
    "--s3", "s3_prefix", required=True, metavar="s3://BUCKET/PREFIX",
    help="Where the job's requests, manifest and answers live (PREFIX/JOB/input, manifest.json, output).",
)


def _clients(region: str | None, profile: str | None) -> tuple[Any, Any]:
    import boto3

    session = boto3.Session(profile_name=profile, region_name=region)
    return session.client("s3"), session.client("sagemaker")


@click.group("batch")
def batch_group() -> None:
    """Convert a corpus with a SageMaker batch transform job: submit, watch, collect."""


@batch_group.command("submit")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@_s3
@click.option("--model-name", required=True, help="The SageMaker model (the one the endpoint serves) to run.")
@click.option("--job-name", default=None, help="The transform job's name [default: pagescribe-<time>].")
@click.option("--instance-type", default="ml.c6i.2xlarge", show_default=True)
@click.option("--instance-count", type=click.IntRange(1, 100), default=1, show_default=True)
@click.option(
    "--max-concurrent", type=click.IntRange(1, 64), default=None,
    help="Requests per instance at once [default: what the container's /execution-parameters says].",
)
@click.option(
    "--max-payload-mb", type=click.IntRange(1, 100), default=batch_transform.DEFAULT_MAX_PAYLOAD_MB,
    show_default=True, help="Most request bytes SageMaker puts into one mini-batch (a few pages).",
)
@click.option("--kms-key-id", default=None, help="KMS key for the job's output.")
@click.option("--prompt-file", default=None, metavar="FILE|NAME", help="The instruction [default: document].")
@click.option("--max-tokens", type=click.IntRange(1, 1_000_000), default=1024, show_default=True)
@click.option("--temperature", type=click.FloatRange(0, 5), default=0.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--anchor", type=click.Choice(["none", "text-layer"]), default="none", show_default=True)
@click.option("--dpi", type=click.FloatRange(1, 2400), default=None)
@click.option("--max-side", type=click.IntRange(64, 10000), default=None)
@click.option("--pages", default=None, metavar="RANGES", help="Pages of every document, e.g. 1-5,9.")
@_region
@_profile
def submit_command(inputs: tuple[str, ...], s3_prefix: str, model_name: str, job_name: str | None,
                   instance_type: str, instance_count: int, max_concurrent: int | None, max_payload_mb: int,
                   kms_key_id: str | None, prompt_file: str | None, max_tokens: int, temperature: float, seed: int,
                   anchor: str, dpi: float | None, max_side: int | None, pages: str | None, region: str | None,
                   profile: str | None) -> None:  # fmt: skip
    """Render INPUT (files, folders, globs), upload the page requests and start the transform job."""
    job = job_name or time.strftime("pagescribe-%Y%m%d-%H%M%S")
    try:
        options = ConvertOptions(
            prompt=load_prompt(prompt_file or "document"),
            params=SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=seed),
            anchor="text-layer" if anchor == "text-layer" else "none",
            dpi=dpi, max_side=max_side, pages=parse_page_ranges(pages) if pages else None,
        )
        prefix = S3Location.parse(s3_prefix)
        s3, sagemaker = _clients(region, profile)
        manifest = batch_transform.prepare(
            inputs, s3=s3, prefix=prefix, job=job, model_name=model_name, options=options,
            max_payload_mb=max_payload_mb,
        )
        request = batch_transform.job_request(
            manifest, prefix=prefix, instance_type=instance_type, instance_count=instance_count,
            max_concurrent=max_concurrent, max_payload_mb=max_payload_mb, kms_key_id=kms_key_id,
        )
        sagemaker.create_transform_job(**request)
    except PagescribeError as exc:
        raise click.ClickException(exc.message) from exc
    sent = sum(1 for d in manifest.documents for p in d.pages if p.line is not None)
    click.echo(f"{job}: {len(manifest.documents)} document(s), {sent} page request(s) under {prefix.uri(job + '/')}")
    click.echo(f"watch it with: pagescribe batch status {job}; then: pagescribe batch collect {job} --s3 {s3_prefix}")


@batch_group.command("status")
@click.argument("job")
@click.option("--json", "as_json", is_flag=True, help="Print SageMaker's description as JSON.")
@_region
@_profile
def status_command(job: str, as_json: bool, region: str | None, profile: str | None) -> None:
    """Show the transform job's state."""
    _, sagemaker = _clients(region, profile)
    try:
        described = sagemaker.describe_transform_job(TransformJobName=job)
    except Exception as exc:  # botocore's ClientError for an unknown job, credentials, region
        raise click.ClickException(f"{job}: {exc}") from exc
    if as_json:
        click.echo(json.dumps(described, indent=2, default=str))
        return
    click.echo(f"{job}: {described['TransformJobStatus']}")
    if described.get("FailureReason"):
        click.echo(f"  failure: {described['FailureReason']}")
    click.echo(f"  output: {described.get('TransformOutput', {}).get('S3OutputPath', '?')}")


@batch_group.command("collect")
@click.argument("job")
@_s3
@click.option("--out", "-o", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: NAME.jsonl and NAME.md per document, chunks.jsonl, summary.json.")  # fmt: skip
@_region
@_profile
def collect_command(job: str, s3_prefix: str, out_dir: Path, region: str | None, profile: str | None) -> None:
    """Turn the job's answers into per-document JSONL and Markdown, chunks and a summary (as `convert` writes).
    Exit status 1 if any page or document failed."""
    s3, _ = _clients(region, profile)
    try:
        summary = batch_transform.collect(s3, prefix=S3Location.parse(s3_prefix), job=job, out_dir=out_dir)
    except PagescribeError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(json.dumps(summary.to_json()))
    if not summary.succeeded:
        sys.exit(1)
