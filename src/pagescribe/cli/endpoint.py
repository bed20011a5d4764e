"""Click commands for AWS: ``pagescribe model package`` and ``pagescribe endpoint status|invoke|size``.

They are registered on the main CLI in ``pagescribe/cli/__init__.py``; AWS credentials, region and
``AWS_ENDPOINT_URL*`` come from the usual boto3 sources.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from pagescribe.aws import deploy, package, sizing
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


@endpoint_group.command("size")
@click.argument("instance_type", default=sizing.DEFAULT_INSTANCE_TYPE)
@click.option("--vcpus", type=click.IntRange(min=1), default=None, help="For types not in the table.")
@click.option("--memory-gib", type=click.FloatRange(min=1), default=None, help="For types not in the table.")
@click.option("--cores", type=click.IntRange(min=1), default=None, help="Physical cores [default: vCPUs / 2].")
@click.option(
    "--output-tokens",
    type=click.IntRange(min=1),
    default=sizing.DEFAULT_PAGE.output_tokens,
    show_default=True,
    help="Answer tokens a page is sized for.",
)
def size_command(
    instance_type: str, vcpus: int | None, memory_gib: float | None, cores: int | None, output_tokens: int
) -> None:
    """Show what INSTANCE_TYPE's container runs with and the autoscaling target that follows.

    The CDK app and `pagescribe.aws.deploy` set exactly these PAGESCRIBE_* values in the model's environment
    (infra/README.md explains the page time model behind them).
    """
    try:
        spec = sizing.instance_spec(instance_type, vcpus=vcpus, memory_gib=memory_gib, physical_cores=cores)
        sizing.check_memory(spec)
    except PagescribeError as exc:
        raise click.ClickException(exc.message) from exc
    page = sizing.PageModel(output_tokens=output_tokens)
    realtime = sizing.realtime_container(spec, page=page)
    queued = sizing.async_container(spec, page=page)
    load = sizing.capacity(spec, realtime, page=page)
    target = sizing.target_invocations_per_instance(spec, realtime, page=page)
    click.echo(f"{instance_type}: {spec.vcpus} vCPUs, {spec.cores} physical cores, {spec.memory_gib:g} GiB")
    click.echo(f"real-time: {_settings(realtime)}")
    answered = (
        f"past the {realtime.time_limit_s} s budget: {load.invocations_per_page} requests, the client continues it"
        if load.invocations_per_page > 1
        else "one request"
    )
    click.echo(
        f"  a page ({page.prompt_tokens} prompt + {page.output_tokens} answer tokens) takes {load.page_s:.1f} s "
        f"with every slot busy: {answered}"
    )
    click.echo(f"  {load.pages_per_minute:.2f} pages/min; autoscaling target {target:g} invocations/instance/min")
    click.echo(
        f"async: {_settings(queued)} (InvocationTimeoutSeconds {sizing.ASYNC_INVOCATION_TIMEOUT_S}, "
        f"MaxConcurrentInvocationsPerInstance {queued.slots})"
    )
    storage = "local NVMe (no KmsKeyId, no volume size)" if sizing.has_local_nvme(instance_type) else "EBS (KMS)"
    click.echo(f"storage: {storage}")


def _settings(container: sizing.ContainerSizing) -> str:
    return " ".join(f"{name}={value}" for name, value in container.environment().items())


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)
