"""Click commands for AWS: ``pagescribe model package`` and ``pagescribe endpoint status|invoke``.

They are registered on the main CLI in ``pagescribe/cli/__init__.py``; AWS credentials, region and
``AWS_ENDPOINT_URL*`` come from the usual boto3 sources.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from pagescribe.aws import deploy, package
from pagescribe.errors import PagescribeError

_region = click.option("--region", default=None, help="AWS region (default: from the AWS config/environment).")


def _client(service: str, region: str | None) -> Any:
    import boto3

    return boto3.client(service, region_name=region)


@click.command("package")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--s3", "s3_uri", required=True, metavar="s3://BUCKET/PREFIX", help="Where to upload the model.")
@click.option(
    "--compress/--no-compress",
    default=False,
    show_default=True,
    help="Upload one model.tar.gz instead of the files under the prefix (slower to start).",
)
@click.option("--replace", is_flag=True, help="Delete other objects under the prefix (they would be served too).")
@_region
def package_command(model_dir: Path, s3_uri: str, compress: bool, replace: bool, region: str | None) -> None:
    """Upload MODEL_DIR (GGUF model + mmproj) to S3 with a SHA-256 manifest, ready for SageMaker."""
    try:
        result = package.package_model(
            model_dir,
            s3_uri,
            compress=compress,
            replace=replace,
            s3_client=_client("s3", region),
            on_upload=lambda uri: click.echo(f"uploaded {uri}"),
        )
    except PagescribeError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"model data: {result.model_data_url}")
    layout = "tar.gz" if result.compressed else "prefix"
    click.echo(f"layout: {layout} (CDK context model_data_format={layout})")


@click.group("endpoint")
def endpoint_group() -> None:
    """Inspect and call a deployed SageMaker endpoint."""


@endpoint_group.command("status")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@_region
def status_command(name: str, as_json: bool, region: str | None) -> None:
    """Show NAME's status and the instance count of each variant."""
    try:
        status = deploy.describe_endpoint(name, client=_client("sagemaker", region))
    except PagescribeError as exc:
        raise click.ClickException(exc.message) from exc
    if as_json:
        click.echo(json.dumps(asdict(status), indent=2))
        return
    click.echo(f"{status.name}: {status.status} (config {status.config_name})")
    for variant in status.variants:
        click.echo(
            f"  {variant.name}: {_count(variant.current_instances)} instance(s), "
            f"desired {_count(variant.desired_instances)}"
        )
    if status.failure_reason:
        click.echo(f"  failure: {status.failure_reason}")


@endpoint_group.command("invoke")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--prompt", default=None, help="Instruction sent with the page [default: the document prompt].")
@click.option("--max-tokens", type=click.IntRange(min=1), default=1024, show_default=True)
@click.option(
    "--raw", is_flag=True, help="Print the whole answer as JSON (text, finish_reason, usage, timings, model)."
)
@_region
def invoke_command(name: str, file: Path, prompt: str | None, max_tokens: int, raw: bool, region: str | None) -> None:
    """Send the page image FILE to endpoint NAME and print the transcription.

    A quick check of a deployment: `pagescribe invoke --endpoint NAME` has every option (documents,
    streaming, sampling).
    """
    from pagescribe.client import Client

    try:
        with Client.for_endpoint(name, region=region) as client:
            answer = client.describe(file, prompt=prompt, max_tokens=max_tokens)
    except PagescribeError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(json.dumps(answer.as_dict(), indent=2, ensure_ascii=False) if raw else answer.text)


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)
