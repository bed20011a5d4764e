"""The model-artifact bucket: KMS-encrypted, TLS-only, versioned, private, access-logged (or an existing
one)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pagescribe_infra.config import PagescribeConfig

DATA_CAPTURE_PREFIX = "datacapture/"
ASYNC_INPUT_PREFIX = "async/input/"
ASYNC_OUTPUT_PREFIX = "async/output/"
ASYNC_FAILURE_PREFIX = "async/failure/"


class ModelArtifacts(Construct):
    """Holds the model files (read by the endpoint), data captures and async inputs/outputs."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PagescribeConfig, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.bucket: s3.IBucket
        if config.artifact_bucket_name:
            self.bucket = s3.Bucket.from_bucket_name(self, "Bucket", config.artifact_bucket_name)
        else:
            self.bucket = self._create_bucket(key)

    def _create_bucket(self, key: kms.IKey) -> s3.Bucket:
        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            # Server access logging cannot write to SSE-KMS buckets; SSE-S3 is the strongest it accepts.
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
        )
        return s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="artifacts/",
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                # Captures may hold page images (PII): keep them briefly.
                s3.LifecycleRule(prefix=DATA_CAPTURE_PREFIX, expiration=Duration.days(30)),
                s3.LifecycleRule(prefix="async/", expiration=Duration.days(30)),
                s3.LifecycleRule(noncurrent_version_expiration=Duration.days(30)),
            ],
        )

    def s3_uri(self, key_or_prefix: str) -> str:
        """``s3://bucket/key_or_prefix``."""
        return f"s3://{self.bucket.bucket_name}/{key_or_prefix}"

    @property
    def model_data_url(self) -> str:
        """Where SageMaker reads the model: the tar.gz object, or the prefix (ending in /) of the files."""
        return self.s3_uri(self._config.model_data_key)

    def grant_model_read(self, grantee: iam.IGrantable) -> None:
        """Read access to the model files only (plus listing, which the uncompressed-prefix mode needs)."""
        self.bucket.grant_read(grantee, f"{self._config.model_prefix}*")

    def grant_write(self, grantee: iam.IGrantable, prefix: str) -> None:
        """Write access under ``prefix`` (data capture, async output)."""
        self.bucket.grant_put(grantee, f"{prefix}*")

    def grant_read(self, grantee: iam.IGrantable, prefix: str) -> None:
        """Read access under ``prefix`` (async input)."""
        self.bucket.grant_read(grantee, f"{prefix}*")
