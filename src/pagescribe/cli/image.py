"""``pagescribe image push``: tag the image ``make image`` built and push it to Amazon ECR.

AWS credentials and region come from the usual boto3 sources (``AWS_ENDPOINT_URL*`` included); the upload runs
through docker, buildah or podman with the login from ``ecr.get_authorization_token``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import click

from pagescribe import __version__
from pagescribe.aws import image
from pagescribe.errors import PagescribeError


def _ecr_client(region: str | None) -> Any:
    import boto3

    return boto3.client("ecr", region_name=region)


@click.group("image")
def image_group() -> None:
    """Publish the serving container image."""


@image_group.command("push")
@click.option("--repository", required=True, help="ECR repository name (the CDK stack's image_repository_name).")
@click.option("--region", default=None, help="AWS region (default: from the AWS config/environment).")
@click.option("--tag", default=__version__, show_default=True, help="Tag; must be new where tags are immutable.")
@click.option("--image", "source", default=image.DEFAULT_SOURCE, show_default=True, help="Local image to push.")
@click.option("--create", is_flag=True, help="Create the repository if missing (scan on push, immutable tags, KMS).")
@click.option(
    "--tool",
    type=click.Choice(image.TOOLS),
    default=None,
    help="Container tool [default: docker if running, else buildah].",
)
@click.option(
    "--storage-driver",
    envvar="STORAGE_DRIVER",
    default=None,
    help="buildah/podman storage driver the image was built with [default: $STORAGE_DRIVER].",
)
def push_command(
    repository: str,
    region: str | None,
    tag: str,
    source: str,
    create: bool,
    tool: str | None,
    storage_driver: str | None,
) -> None:
    """Push the local image to ECR as REPOSITORY:TAG and print its digest-pinned URI."""
    pusher = partial(image.push_with_tool, tool=tool, storage_driver=storage_driver)
    try:
        result = image.push_image(
            source, repository=repository, tag=tag, client=_ecr_client(region), pusher=pusher, create=create
        )
    except PagescribeError as exc:
        raise click.ClickException(exc.message) from exc
    if result.repository_created:
        click.echo(f"created repository {repository}")
    click.echo(f"pushed {result.image_uri}")
    click.echo(f"digest: {result.digest}")
    click.echo(f"pinned: {result.pinned_uri} (CDK context image_digest={result.digest})")
