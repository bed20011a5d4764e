"""Deploy with plain boto3, for those not using the CDK app: model -> endpoint config -> endpoint, then wait.

The same defaults as ``infra/`` (instance type, timeouts, network isolation, the container's threads, slots,
context and time budget for the instance type) come from :mod:`pagescribe.aws.sizing`.
Every deploy creates a new model and config with a time-stamped name; an existing endpoint is updated in place
with ``RetainAllVariantProperties`` so the instance count chosen by autoscaling survives.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pagescribe.aws import sizing
from pagescribe.errors import InvalidRequest, PagescribeError

VARIANT_NAME = "AllTraffic"
_MAX_NAME = 63


class DeployError(PagescribeError):
    """SageMaker refused a call or the endpoint did not come into service."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointSpec:
    """Everything needed to stand up one real-time endpoint.

    ``environment`` is added to (and wins over) the ``PAGESCRIBE_*`` settings sized for ``instance_type``.
    """

    endpoint_name: str
    image_uri: str
    model_data_url: str
    role_arn: str
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    instance_type: str = sizing.DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    kms_key_id: str | None = None
    network_isolation: bool = True
    startup_health_check_timeout_s: int = sizing.STARTUP_HEALTH_CHECK_TIMEOUT_S
    model_download_timeout_s: int = sizing.MODEL_DOWNLOAD_TIMEOUT_S
    volume_size_gb: int | None = sizing.VOLUME_SIZE_GB
    environment: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.subnet_ids and (len(self.subnet_ids) < 2 or not self.security_group_ids):
            raise InvalidRequest(
                "a VPC config needs >= 2 subnets (two AZs) and a security group", param="subnet_ids"
            )
        if self.instance_count < 1:
            raise InvalidRequest("instance_count must be >= 1", param="instance_count")
        if self.instance_type in sizing.INSTANCE_SPECS:
            sizing.check_memory(sizing.INSTANCE_SPECS[self.instance_type])

    @property
    def container_environment(self) -> dict[str, str]:
        """The container's environment: the sizing of a known instance type, then ``environment``."""
        known = sizing.INSTANCE_SPECS.get(self.instance_type)
        sized = sizing.realtime_container(known).environment() if known else {}
        return {**sized, **self.environment}

    @property
    def local_nvme(self) -> bool:
        """Whether the instance type has NVMe instance storage (no KmsKeyId, no volume size then)."""
        return sizing.has_local_nvme(self.instance_type)


@dataclass(frozen=True, slots=True)
class DeployResult:
    """Names of what was created and the endpoint's final status."""

    endpoint_name: str
    model_name: str
    endpoint_config_name: str
    status: str
    updated: bool


@dataclass(frozen=True, slots=True)
class VariantStatus:
    name: str
    current_instances: int | None
    desired_instances: int | None


@dataclass(frozen=True, slots=True)
class EndpointStatus:
    """The parts of ``DescribeEndpoint`` a person wants to see."""

    name: str
    status: str
    config_name: str
    variants: tuple[VariantStatus, ...]
    failure_reason: str | None


def container_definition(spec: EndpointSpec) -> dict[str, Any]:
    """``PrimaryContainer``: a ``.tar.gz`` URL becomes ``ModelDataUrl``, anything else an S3 prefix."""
    container: dict[str, Any] = {"Image": spec.image_uri, "Mode": "SingleModel"}
    if spec.container_environment:
        container["Environment"] = spec.container_environment
    if spec.model_data_url.endswith(".tar.gz"):
        container["ModelDataUrl"] = spec.model_data_url
    else:
        prefix = spec.model_data_url.rstrip("/") + "/"
        container["ModelDataSource"] = {
            "S3DataSource": {"S3Uri": prefix, "S3DataType": "S3Prefix", "CompressionType": "None"}
        }
    return container


def production_variant(spec: EndpointSpec, model_name: str) -> dict[str, Any]:
    """The one instance-backed variant, with start-up timeouts sized for a multi-GB GGUF."""
    variant: dict[str, Any] = {
        "VariantName": VARIANT_NAME,
        "ModelName": model_name,
        "InstanceType": spec.instance_type,
        "InitialInstanceCount": spec.instance_count,
        "InitialVariantWeight": 1.0,
        "ContainerStartupHealthCheckTimeoutInSeconds": spec.startup_health_check_timeout_s,
        "ModelDataDownloadTimeoutInSeconds": spec.model_download_timeout_s,
        "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
    }
    if spec.volume_size_gb is not None and not spec.local_nvme:
        variant["VolumeSizeInGB"] = spec.volume_size_gb
    return variant


def model_request(spec: EndpointSpec, name: str) -> dict[str, Any]:
    """``CreateModel`` arguments: network-isolated, in the VPC when subnets are given."""
    model: dict[str, Any] = {
        "ModelName": name,
        "ExecutionRoleArn": spec.role_arn,
        "PrimaryContainer": container_definition(spec),
        "EnableNetworkIsolation": spec.network_isolation,
        "Tags": _tags(spec),
    }
    if spec.subnet_ids:
        model["VpcConfig"] = {
            "Subnets": list(spec.subnet_ids),
            "SecurityGroupIds": list(spec.security_group_ids),
        }
    return model


def endpoint_config_request(spec: EndpointSpec, name: str) -> dict[str, Any]:
    """``CreateEndpointConfig`` arguments: one variant, KMS-encrypted volumes when a key is given.

    Instance types with local NVMe storage get no ``KmsKeyId``: their storage is encrypted by the instance's
    hardware, and CreateEndpointConfig refuses a key for them.
    """
    config: dict[str, Any] = {
        "EndpointConfigName": name,
        "ProductionVariants": [production_variant(spec, name)],
        "Tags": _tags(spec),
    }
    if spec.kms_key_id and not spec.local_nvme:
        config["KmsKeyId"] = spec.kms_key_id
    return config


def deploy(
    spec: EndpointSpec,
    *,
    client: Any = None,
    wait: bool = True,
    poll_s: float = 30.0,
    timeout_s: float = 3600.0,
) -> DeployResult:
    """Create the model and endpoint config, create or update the endpoint, and (by default) wait for it."""
    sm = client if client is not None else _client("sagemaker")
    name = _versioned_name(spec.endpoint_name)
    updated = endpoint_exists(spec.endpoint_name, client=sm)
    _call(sm.create_model, **model_request(spec, name))
    _call(sm.create_endpoint_config, **endpoint_config_request(spec, name))
    if updated:
        # Keeps the instance count autoscaling chose instead of resetting it to the config's initial count.
        _call(
            sm.update_endpoint,
            EndpointName=spec.endpoint_name,
            EndpointConfigName=name,
            RetainAllVariantProperties=True,
        )
    else:
        _call(sm.create_endpoint, EndpointName=spec.endpoint_name, EndpointConfigName=name, Tags=_tags(spec))
    status = "Updating" if updated else "Creating"
    if wait:
        status = wait_in_service(spec.endpoint_name, client=sm, poll_s=poll_s, timeout_s=timeout_s)
    return DeployResult(spec.endpoint_name, name, name, status, updated)


def wait_in_service(name: str, *, client: Any = None, poll_s: float = 30.0, timeout_s: float = 3600.0) -> str:
    """Poll until the endpoint is ``InService``; on failure raise :class:`DeployError` with the reason."""
    sm = client if client is not None else _client("sagemaker")
    deadline = time.monotonic() + timeout_s
    while True:
        status = describe_endpoint(name, client=sm)
        if status.status == "InService":
            return status.status
        if status.status in ("Failed", "OutOfService", "RollingBack"):
            raise DeployError(
                f"endpoint {name} is {status.status}: {status.failure_reason or 'no reason given'}"
            )
        if time.monotonic() >= deadline:
            raise DeployError(f"endpoint {name} still {status.status} after {timeout_s:g} s")
        time.sleep(poll_s)


def describe_endpoint(name: str, *, client: Any = None) -> EndpointStatus:
    """Status, config and per-variant instance counts of an endpoint."""
    sm = client if client is not None else _client("sagemaker")
    raw = _call(sm.describe_endpoint, EndpointName=name)
    variants = tuple(
        VariantStatus(v["VariantName"], v.get("CurrentInstanceCount"), v.get("DesiredInstanceCount"))
        for v in raw.get("ProductionVariants", [])
    )
    return EndpointStatus(
        name=raw["EndpointName"],
        status=raw["EndpointStatus"],
        config_name=raw["EndpointConfigName"],
        variants=variants,
        failure_reason=raw.get("FailureReason"),
    )


def endpoint_exists(name: str, *, client: Any) -> bool:
    """Whether an endpoint of that name exists (in any state)."""
    from botocore.exceptions import ClientError

    try:
        client.describe_endpoint(EndpointName=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ValidationException":
            return False
        raise DeployError(_message(exc)) from exc
    return True


def delete(name: str, *, client: Any = None) -> None:
    """Delete the endpoint and the config and model it was serving (tear-down for the boto3 path)."""
    sm = client if client is not None else _client("sagemaker")
    config_name = describe_endpoint(name, client=sm).config_name
    model_names = [
        v["ModelName"]
        for v in _call(sm.describe_endpoint_config, EndpointConfigName=config_name)["ProductionVariants"]
    ]
    _call(sm.delete_endpoint, EndpointName=name)
    _call(sm.delete_endpoint_config, EndpointConfigName=config_name)
    for model_name in model_names:
        _call(sm.delete_model, ModelName=model_name)


def _tags(spec: EndpointSpec) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in spec.tags.items()]


def _versioned_name(endpoint_name: str) -> str:
    # The random tail keeps two deploys in the same second apart.
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{uuid.uuid4().hex[:4]}"
    return f"{endpoint_name[: _MAX_NAME - len(stamp) - 1]}-{stamp}"


def _call(method: Any, **kwargs: Any) -> Any:
    from botocore.exceptions import ClientError

    try:
        return method(**kwargs)
    except ClientError as exc:
        raise DeployError(_message(exc)) from exc


def _message(exc: Any) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', str(exc))}"


def _client(service: str) -> Any:
    import boto3

    return boto3.client(service)
