"""Typed configuration of the stack, read from CDK context (``cdk deploy -c key=value`` or ``cdk.json``).

Every field has a default that gives a private, encrypted, autoscaled endpoint for a 7B Q4_K_M model. Context
values given on the command line arrive as strings; pydantic turns ``"true"``/``"4"`` into their types, and
lists/dicts may be given as JSON or (lists) comma-separated.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from constructs import Node
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pagescribe.aws import sizing

CONTEXT_KEY = "pagescribe"
"""A dict of settings under this context key (``cdk.json``) is read first; flat ``-c field=value`` win."""

_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,56}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class PagescribeConfig(BaseModel):
    """Everything the stack needs to know; one instance per synth."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    stack_name: str = Field("Pagescribe", description="CloudFormation stack name.")
    endpoint_name: str = Field(
        "pagescribe", description="SageMaker endpoint name; the async one adds -async."
    )
    deploy_endpoint: bool = Field(
        True,
        description="false creates only the repository, bucket, key and network (first deploy, before push).",
    )

    # image
    image_repository_name: str = Field("pagescribe", description="ECR repository holding the serving image.")
    create_image_repository: bool = Field(True, description="false uses an existing repository of that name.")
    image_tag: str = Field(
        "0.1.0", description="Immutable tag of the image to serve (ignored with a digest)."
    )
    image_digest: str | None = Field(None, description="sha256:... digest; preferred over the tag when set.")
    build_image_asset: bool = Field(
        False, description="Build container/ as a CDK asset (needs Docker at deploy)."
    )
    build_context: str = Field("..", description="Docker build context for build_image_asset (the repo root).")
    dockerfile: str = Field("container/Dockerfile", description="The Dockerfile, relative to build_context.")
    image_keep_count: int = Field(20, ge=1, description="Tagged images kept by the lifecycle rule.")

    # model artifacts
    artifact_bucket_name: str | None = Field(
        None, description="Existing bucket for model files; else one is made."
    )
    model_prefix: str = Field(
        "models/pagescribe/", description="Key prefix of the model files in the bucket."
    )
    model_data_format: Literal["prefix", "tar.gz"] = Field(
        "prefix",
        description="prefix: uncompressed files under model_prefix; tar.gz: model_prefix/model.tar.gz.",
    )

    # network
    vpc_id: str | None = Field(None, description="Existing VPC; needs subnet_ids and availability_zones.")
    subnet_ids: tuple[str, ...] = Field((), description="Private subnets of the existing VPC, one per AZ.")
    availability_zones: tuple[str, ...] = Field((), description="AZs of subnet_ids, in the same order.")
    route_table_ids: tuple[str, ...] = Field(
        (), description="Route tables of subnet_ids (for the S3 endpoint)."
    )
    vpc_cidr: str = Field("10.42.0.0/16", description="CIDR of the VPC created when vpc_id is not set.")
    create_vpc_endpoints: bool = Field(
        True, description="Create the S3, ECR, Logs and SageMaker runtime endpoints."
    )
    s3_prefix_list_id: str | None = Field(
        None,
        description="pl-... of com.amazonaws.<region>.s3: narrows the model's 443 egress to S3 + endpoints.",
    )

    # endpoint
    instance_type: str = Field(sizing.DEFAULT_INSTANCE_TYPE, description="SageMaker instance type.")
    instance_vcpus: int | None = Field(None, ge=1, description="vCPUs, for types not in the sizing table.")
    instance_memory_gib: float | None = Field(None, gt=0, description="Memory, for types not in the table.")
    model_process_gib: float = Field(
        sizing.MODEL_PROCESS_GIB, gt=0, description="Memory the model process needs."
    )
    startup_health_check_timeout_s: int = Field(sizing.STARTUP_HEALTH_CHECK_TIMEOUT_S, ge=60, le=3600)
    model_download_timeout_s: int = Field(sizing.MODEL_DOWNLOAD_TIMEOUT_S, ge=60, le=3600)
    volume_size_gb: int | None = Field(
        sizing.VOLUME_SIZE_GB, ge=1, le=512, description="EBS volume per instance; none: SageMaker's default."
    )
    kms_key_arn: str | None = Field(None, description="Existing customer managed key; else one is created.")
    data_capture: bool = Field(
        False, description="Capture a sample of requests/responses to S3 (may hold PII)."
    )
    data_capture_percent: int = Field(5, ge=1, le=100)
    container_environment: dict[str, str] = Field(default_factory=dict, description="Extra container env.")

    # scaling
    min_instances: int = Field(1, ge=1, description="Variant endpoints cannot scale below one instance.")
    max_instances: int = Field(4, ge=1)
    target_invocations_per_instance: float | None = Field(
        None,
        gt=0,
        description="Invocations per instance per minute; None derives it from the instance vCPUs.",
    )
    seconds_per_page_2vcpu: float = Field(sizing.MEASURED_SECONDS_PER_PAGE, gt=0)
    target_utilization: float = Field(sizing.TARGET_UTILIZATION, gt=0, le=1)
    scale_out_cooldown_s: int = Field(120, ge=0)
    scale_in_cooldown_s: int = Field(600, ge=0)

    # alarms
    latency_alarm_s: float = Field(
        50.0, gt=0, lt=60, description="p90 model latency alarm, below the 60 s limit."
    )
    cpu_alarm_percent: float = Field(90.0, gt=0, le=100, description="Of all vCPUs together.")
    memory_alarm_percent: float = Field(90.0, gt=0, le=100)
    alarm_email: str | None = Field(None, description="Subscribed to the alarm topic when set.")

    # public front
    public_api: bool = Field(
        False, description="API Gateway in front of the endpoint, reachable from the internet."
    )
    api_auth: Literal["iam", "api_key"] = Field("iam", description="How API callers authenticate.")
    api_rate_limit: float = Field(5.0, gt=0, description="Steady requests per second across the API.")
    api_burst_limit: int = Field(10, ge=1)
    api_timeout_s: int = Field(29, ge=1, le=29, description="API Gateway's integration limit is 29 s.")

    # async endpoint
    async_endpoint: bool = Field(
        False, description="Also create an asynchronous endpoint for long documents."
    )
    async_max_instances: int = Field(2, ge=1)
    async_max_concurrent_per_instance: int = Field(1, ge=1)
    async_backlog_target: float = Field(2.0, gt=0, description="Queued requests per instance to aim at.")

    @field_validator("subnet_ids", "availability_zones", "route_table_ids", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            return (
                json.loads(text)
                if text.startswith("[")
                else [v.strip() for v in text.split(",") if v.strip()]
            )
        return value

    @field_validator("volume_size_gb", mode="before")
    @classmethod
    def _none_word(cls, value: Any) -> Any:
        # `-c volume_size_gb=none` leaves the volume size to SageMaker (instances with local NVMe need that).
        return None if isinstance(value, str) and value.strip().lower() in ("", "none", "null") else value

    @field_validator("container_environment", mode="before")
    @classmethod
    def _parse_dict(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("endpoint_name")
    @classmethod
    def _check_endpoint_name(cls, value: str) -> str:
        if not _ENDPOINT_NAME.match(value):
            raise ValueError("endpoint_name: letters, digits and hyphens, at most 57 characters")
        return value

    @field_validator("image_digest")
    @classmethod
    def _check_digest(cls, value: str | None) -> str | None:
        if value is not None and not _DIGEST.match(value):
            raise ValueError("image_digest must look like sha256:<64 hex digits>")
        return value

    @field_validator("model_prefix")
    @classmethod
    def _normalise_prefix(cls, value: str) -> str:
        value = value.strip("/")
        if not value:
            raise ValueError("model_prefix must not be empty")
        return value + "/"

    @model_validator(mode="after")
    def _check_consistency(self) -> PagescribeConfig:
        if self.min_instances > self.max_instances:
            raise ValueError("min_instances must not exceed max_instances")
        if self.vpc_id is not None:
            if len(self.subnet_ids) < 2 or len(self.subnet_ids) != len(self.availability_zones):
                raise ValueError("an existing VPC needs >= 2 subnet_ids and one availability zone per subnet")
            if len(set(self.availability_zones)) < 2:
                raise ValueError("SageMaker needs subnets in at least two availability zones")
            if self.create_vpc_endpoints and len(self.route_table_ids) != len(self.subnet_ids):
                raise ValueError(
                    "the S3 gateway endpoint needs one route_table_id per subnet "
                    "(or create_vpc_endpoints=false)"
                )
        sizing.check_memory(self.instance, process_gib=self.model_process_gib)
        return self

    @property
    def instance(self) -> sizing.InstanceSpec:
        """vCPUs and memory of ``instance_type``."""
        return sizing.instance_spec(
            self.instance_type, vcpus=self.instance_vcpus, memory_gib=self.instance_memory_gib
        )

    @property
    def scaling_target(self) -> float:
        """Invocations per instance per minute for target tracking: explicit, or derived from the vCPUs."""
        if self.target_invocations_per_instance is not None:
            return self.target_invocations_per_instance
        return sizing.target_invocations_per_instance(
            self.instance.vcpus,
            seconds_per_page=self.seconds_per_page_2vcpu,
            utilization=self.target_utilization,
        )

    @property
    def model_data_key(self) -> str:
        """The S3 key (tar.gz) or key prefix (uncompressed) the model is read from."""
        return self.model_prefix + "model.tar.gz" if self.model_data_format == "tar.gz" else self.model_prefix

    @property
    def async_endpoint_name(self) -> str:
        return f"{self.endpoint_name}-async"

    @classmethod
    def from_node(cls, node: Node) -> PagescribeConfig:
        """Read the config from CDK context: the ``pagescribe`` dict, then flat keys named like the fields."""
        values: dict[str, Any] = dict(node.try_get_context(CONTEXT_KEY) or {})
        for name in cls.model_fields:
            flat = node.try_get_context(name)
            if flat is not None:
                values[name] = flat
        return cls.model_validate(values)
