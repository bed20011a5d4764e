"""The serving image: an ECR repository (scan on push, immutable tags, untagged expiry) or a CDK-built asset."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from pagescribe_infra.config import PagescribeConfig

INFRA_DIR = Path(__file__).resolve().parent.parent


class ModelImage(Construct):
    """Where the model's container image comes from, pinned by digest or immutable tag."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PagescribeConfig, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self.repository: ecr.IRepository
        if config.build_image_asset:
            # Synth only stages the build context; Docker is needed at `cdk deploy`, never in tests.
            # the build context is the repository root (the image installs src/ and the lock file);
            # the root .dockerignore lets in only what the Dockerfile copies
            asset = ecr_assets.DockerImageAsset(
                self,
                "Asset",
                directory=str((INFRA_DIR / config.build_context).resolve()),
                file=config.dockerfile,
                platform=ecr_assets.Platform.LINUX_AMD64,
            )
            self.repository = asset.repository
            self.image_uri = asset.image_uri
            return
        self.repository = self._repository(config, key)
        if config.image_digest:
            self.image_uri = self.repository.repository_uri_for_digest(config.image_digest)
        else:
            self.image_uri = self.repository.repository_uri_for_tag(config.image_tag)

    def _repository(self, config: PagescribeConfig, key: kms.IKey) -> ecr.IRepository:
        if not config.create_image_repository:
            return ecr.Repository.from_repository_name(self, "Repository", config.image_repository_name)
        return ecr.Repository(
            self,
            "Repository",
            repository_name=config.image_repository_name,
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.KMS,
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN,
            # Only untagged images expire. Tags are immutable and an endpoint names its image by tag or digest,
            # so an image a running endpoint uses (and needs for every scale-out) is never removed; a count rule
            # over tagged images would eventually delete it.
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description="Drop untagged images left by failed or superseded pushes",
                    tag_status=ecr.TagStatus.UNTAGGED,
                    max_image_age=Duration.days(config.untagged_image_expiry_days),
                    rule_priority=1,
                ),
            ],
        )

    def grant_pull(self, grantee: iam.IGrantable) -> None:
        """Let ``grantee`` (the SageMaker execution role) pull this image and nothing else."""
        self.repository.grant_pull(grantee)
