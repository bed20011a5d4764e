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
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)
"""The retention periods CloudWatch Logs accepts."""
LATENCY_ALARM_SHARE = 0.9
"""The default latency alarm: this share of the container's budget, so it fires before requests are cut."""


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
    untagged_image_expiry_days: int = Field(
        7, ge=1, description="Untagged images (failed pushes) expire; tagged ones, which endpoints use, never do."
    )

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
        True, description="Create the S3 gateway and SageMaker runtime endpoints (and the optional ones below)."
    )
    ecr_vpc_endpoints: bool = Field(
        False,
        description="Also create ECR interface endpoints. Hosting pulls ECR images outside the VPC "
        "(RepositoryAccessMode Platform), so only your own in-VPC tools would use them.",
    )
    logs_vpc_endpoint: bool = Field(
        False,
        description="Also create a CloudWatch Logs interface endpoint. SageMaker ships the container's output "
        "itself and network isolation gives the container no network, so only your own in-VPC tools would use it.",
    )
    s3_prefix_list_id: str | None = Field(
        None,
        description="pl-... of com.amazonaws.<region>.s3: narrows the model's 443 egress to S3 + endpoints.",
    )

    # endpoint
    instance_type: str = Field(sizing.DEFAULT_INSTANCE_TYPE, description="SageMaker instance type.")
    instance_vcpus: int | None = Field(None, ge=1, description="vCPUs, for types not in the sizing table.")
    instance_memory_gib: float | None = Field(None, gt=0, description="Memory, for types not in the table.")
    instance_physical_cores: int | None = Field(
        None, ge=1, description="Physical cores, when not half the vCPUs (the container runs one thread each)."
    )
    model_process_gib: float = Field(
        sizing.MODEL_PROCESS_GIB, gt=0, description="Memory the model process needs with one slot."
    )
    context_tokens: int = Field(
        sizing.DEFAULT_CTX, ge=1024, le=32768, description="Context of one slot (PAGESCRIBE_CTX): prompt + answer."
    )
    startup_health_check_timeout_s: int = Field(sizing.STARTUP_HEALTH_CHECK_TIMEOUT_S, ge=60, le=3600)
    model_download_timeout_s: int = Field(sizing.MODEL_DOWNLOAD_TIMEOUT_S, ge=60, le=3600)
    volume_size_gb: int | None = Field(
        sizing.VOLUME_SIZE_GB,
        ge=1,
        le=512,
        description="EBS volume per instance; none: SageMaker's default. Not sent for types with local NVMe.",
    )
    kms_key_arn: str | None = Field(None, description="Existing customer managed key; else one is created.")
    data_capture: bool = Field(
        False, description="Capture a sample of requests/responses to S3 (may hold PII)."
    )
    data_capture_percent: int = Field(5, ge=1, le=100)
    container_environment: dict[str, str] = Field(
        default_factory=dict, description="Extra container env; wins over the sized PAGESCRIBE_* settings."
    )

    # scaling
    min_instances: int = Field(1, ge=1, description="Variant endpoints cannot scale below one instance.")
    max_instances: int = Field(4, ge=1)
    target_invocations_per_instance: float | None = Field(
        None,
        gt=0,
        description="Invocations per instance per minute; None derives it from the page time model.",
    )
    target_utilization: float = Field(sizing.TARGET_UTILIZATION, gt=0, le=1)
    page_prompt_tokens: int = Field(
        sizing.DEFAULT_PAGE.prompt_tokens, ge=1, description="Prompt tokens of a page (page time model)."
    )
    page_output_tokens: int = Field(
        sizing.DEFAULT_PAGE.output_tokens, ge=1, description="Answer tokens a page is sized for (page time model)."
    )
    decode_cap_tokens_s: float = Field(
        sizing.DEFAULT_PAGE.decode_cap_tokens_s,
        gt=0,
        description="Memory-bandwidth bound on one decode stream, tokens/s (page time model).",
    )
    scale_out_cooldown_s: int = Field(120, ge=0)
    scale_in_cooldown_s: int = Field(600, ge=0)

    # logs and alarms
    log_retention_days: int = Field(365, description="Retention of the endpoints' log groups (a CloudWatch value).")
    latency_alarm_s: float | None = Field(
        None, gt=0, description="p90 model latency alarm; none: 90% of the container's time budget (45 s)."
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
    api_timeout_s: int = Field(
        29,
        ge=1,
        le=sizing.REALTIME_INVOCATION_TIMEOUT_S,
        description="Integration timeout. Above 29 s needs the account's API Gateway quota 'Maximum integration "
        "timeout in milliseconds' raised (Regional REST APIs only); SageMaker ends invocations at 60 s anyway.",
    )

    # async endpoint
    async_endpoint: bool = Field(
        False, description="Also create an asynchronous endpoint for long documents."
    )
    async_max_instances: int = Field(2, ge=1)
    async_max_concurrent_per_instance: int | None = Field(
        None, ge=1, description="Requests an async instance runs at once; none: its sized slot count."
    )
    async_backlog_target: float = Field(2.0, gt=0, description="Queued requests per instance to aim at.")
    async_invocation_timeout_s: int = Field(
        sizing.ASYNC_INVOCATION_TIMEOUT_S,
        ge=60,
        le=sizing.ASYNC_INVOCATION_TIMEOUT_S,
        description="InvocationTimeoutSeconds callers pass; the async container's budget is 5/6 of it.",
    )
    async_queue: bool = Field(
        False, description="An SQS queue subscribed to the async success and error topics, for batch clients."
    )

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

    @field_validator("log_retention_days")
    @classmethod
    def _check_retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"log_retention_days must be one of {sorted(LOG_RETENTION_DAYS)}")
        return value

    @model_validator(mode="after")
    def _check_consistency(self) -> PagescribeConfig:
        if self.min_instances > self.max_instances:
            raise ValueError("min_instances must not exceed max_instances")
        if self.latency_alarm >= self.realtime_container.time_limit_s:
            raise ValueError(
                f"latency_alarm_s must be below the container's {self.realtime_container.time_limit_s} s budget: "
                "at the budget every cut request would count"
            )
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
        """vCPUs, physical cores and memory of ``instance_type``."""
        return sizing.instance_spec(
            self.instance_type,
            vcpus=self.instance_vcpus,
            memory_gib=self.instance_memory_gib,
            physical_cores=self.instance_physical_cores,
        )

    @property
    def page(self) -> sizing.PageModel:
        """The per-page time model, with this config's page and decode figures."""
        return sizing.PageModel(
            prompt_tokens=self.page_prompt_tokens,
            output_tokens=self.page_output_tokens,
            decode_cap_tokens_s=self.decode_cap_tokens_s,
        )

    @property
    def realtime_container(self) -> sizing.ContainerSizing:
        """Threads, slots, context and the 50 s budget of the real-time model's container."""
        return sizing.realtime_container(
            self.instance, page=self.page, ctx=self.context_tokens, process_gib=self.model_process_gib
        )

    @property
    def async_container(self) -> sizing.ContainerSizing:
        """The async model's container: the long budget (5/6 of ``async_invocation_timeout_s``), more slots."""
        return sizing.async_container(
            self.instance,
            invocation_timeout_s=self.async_invocation_timeout_s,
            page=self.page,
            ctx=self.context_tokens,
            process_gib=self.model_process_gib,
        )

    def model_environment(self, sized: sizing.ContainerSizing) -> dict[str, str]:
        """A model's container environment: the sized ``PAGESCRIBE_*`` settings, then ``container_environment``."""
        return {**sized.environment(), **self.container_environment}

    @property
    def async_concurrency(self) -> int:
        """MaxConcurrentInvocationsPerInstance of the async endpoint: explicit, or the async slot count."""
        return self.async_max_concurrent_per_instance or self.async_container.slots

    @property
    def scaling_target(self) -> float:
        """Invocations per instance per minute for target tracking: explicit, or from the page time model."""
        if self.target_invocations_per_instance is not None:
            return self.target_invocations_per_instance
        return sizing.target_invocations_per_instance(
            self.instance, self.realtime_container, page=self.page, utilization=self.target_utilization
        )

    @property
    def latency_alarm(self) -> float:
        """The p90 ModelLatency alarm threshold in seconds: explicit, or 90% of the real-time budget."""
        if self.latency_alarm_s is not None:
            return self.latency_alarm_s
        return LATENCY_ALARM_SHARE * self.realtime_container.time_limit_s

    @property
    def local_nvme(self) -> bool:
        """Whether the instance type has NVMe instance storage: no KmsKeyId, no EBS volume size then."""
        return sizing.has_local_nvme(self.instance_type)

    @property
    def volume_gb(self) -> int | None:
        """VolumeSizeInGB of the variants: none on local-NVMe types unless given explicitly."""
        if self.local_nvme and "volume_size_gb" not in self.model_fields_set:
            return None
        return self.volume_size_gb

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
