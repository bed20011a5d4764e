"""The SageMaker model, endpoint config and endpoint (the role they run as is in ``role.py``).

The helpers below (``serving_model``, ``production_variant``, ``volume_key``, ``endpoint_log_group``) are shared with
the async endpoint, which serves the same image and model files from its own model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from pagescribe_infra.artifacts import DATA_CAPTURE_PREFIX, ModelArtifacts
from pagescribe_infra.config import PagescribeConfig
from pagescribe_infra.image import ModelImage
from pagescribe_infra.network import ModelNetwork
from pagescribe_infra.role import ExecutionRole

VARIANT_NAME = "AllTraffic"
LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"
"""SageMaker writes an endpoint's container output to ``LOG_GROUP_PREFIX + endpoint name``."""


@dataclass(frozen=True)
class ServingParts:
    """What a model is made of and runs in: the image, the model files, the network and the execution role."""

    image: ModelImage
    artifacts: ModelArtifacts
    network: ModelNetwork
    role: ExecutionRole


class ModelEndpoint(Construct):
    """``CfnModel`` (network-isolated, in the VPC) + ``CfnEndpointConfig`` (KMS) + ``CfnEndpoint`` + its log group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PagescribeConfig,
        parts: ServingParts,
        key: kms.IKey,
        rollback_alarm_names: list[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.endpoint_name = config.endpoint_name
        self.variant_name = VARIANT_NAME
        environment = config.model_environment(config.realtime_container)
        self.model = serving_model(self, "Model", config=config, parts=parts, environment=environment)
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            kms_key_id=volume_key(config, key),
            production_variants=[
                production_variant(config, self.model.attr_model_name, config.min_instances)
            ],
            data_capture_config=_data_capture(config, parts.artifacts, key),
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=config.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            # Without this, every config change resets the instance count the autoscaler chose.
            retain_all_variant_properties=True,
            deployment_config=_deployment(rollback_alarm_names),
        )
        self.log_group = endpoint_log_group(self, "Logs", config=config, endpoint_name=config.endpoint_name, key=key)
        self.endpoint.node.add_dependency(self.log_group)


def serving_model(
    scope: Construct,
    construct_id: str,
    *,
    config: PagescribeConfig,
    parts: ServingParts,
    environment: dict[str, str],
) -> sagemaker.CfnModel:
    """A network-isolated model in the VPC: the serving image, the model files, ``environment`` for its container."""
    model = sagemaker.CfnModel(
        scope,
        construct_id,
        execution_role_arn=parts.role.role.role_arn,
        # No network for the container: weights arrive through /opt/ml/model, requests through SageMaker.
        enable_network_isolation=True,
        primary_container=_container(config, parts.image, parts.artifacts, environment),
        vpc_config=sagemaker.CfnModel.VpcConfigProperty(
            subnets=parts.network.subnet_ids,
            security_group_ids=[parts.network.model_security_group.security_group_id],
        ),
    )
    # CreateModel checks the role can reach the image, so its policy must exist first.
    model.node.add_dependency(parts.role.policy)
    return model


def volume_key(config: PagescribeConfig, key: kms.IKey) -> str | None:
    """The endpoint config's ``KmsKeyId``: the stack key for EBS volumes, none for local NVMe.

    CreateEndpointConfig fails when a key is given for an instance type with local instance storage, which the
    instance's hardware encrypts itself.
    """
    return None if config.local_nvme else key.key_arn


def endpoint_log_group(
    scope: Construct, construct_id: str, *, config: PagescribeConfig, endpoint_name: str, key: kms.IKey
) -> logs.CfnLogGroup:
    """The group SageMaker writes an endpoint's container output to, made first so it has a retention and the key.

    Left to SageMaker, it would be created on first use, kept forever and encrypted with no key of ours. It is
    deleted with the stack: a retained group of this fixed name would make the next deploy of the name fail.
    """
    group = logs.CfnLogGroup(
        scope,
        construct_id,
        log_group_name=LOG_GROUP_PREFIX + endpoint_name,
        retention_in_days=config.log_retention_days,
        kms_key_id=key.key_arn,
    )
    group.apply_removal_policy(RemovalPolicy.DESTROY)
    return group


def production_variant(
    config: PagescribeConfig, model_name: str, instance_count: int
) -> sagemaker.CfnEndpointConfig.ProductionVariantProperty:
    """The one instance-backed variant; shared by the real-time and the async endpoint."""
    return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
        variant_name=VARIANT_NAME,
        model_name=model_name,
        instance_type=config.instance_type,
        initial_instance_count=instance_count,
        initial_variant_weight=1,
        container_startup_health_check_timeout_in_seconds=config.startup_health_check_timeout_s,
        model_data_download_timeout_in_seconds=config.model_download_timeout_s,
        volume_size_in_gb=config.volume_gb,
        # Pages take seconds to minutes: send each request to the least busy instance, not a random one.
        routing_config=sagemaker.CfnEndpointConfig.RoutingConfigProperty(
            routing_strategy="LEAST_OUTSTANDING_REQUESTS"
        ),
    )


def _container(
    config: PagescribeConfig, image: ModelImage, artifacts: ModelArtifacts, environment: dict[str, str]
) -> sagemaker.CfnModel.ContainerDefinitionProperty:
    common: dict[str, Any] = {"image": image.image_uri, "mode": "SingleModel", "environment": environment or None}
    if config.model_data_format == "tar.gz":
        return sagemaker.CfnModel.ContainerDefinitionProperty(
            model_data_url=artifacts.model_data_url, **common
        )
    # Uncompressed files under a prefix: no tar extraction at start-up, which matters for 4 GB of GGUF.
    source = sagemaker.CfnModel.ModelDataSourceProperty(
        s3_data_source=sagemaker.CfnModel.S3DataSourceProperty(
            s3_uri=artifacts.model_data_url, s3_data_type="S3Prefix", compression_type="None"
        )
    )
    return sagemaker.CfnModel.ContainerDefinitionProperty(model_data_source=source, **common)


def _data_capture(
    config: PagescribeConfig, artifacts: ModelArtifacts, key: kms.IKey
) -> sagemaker.CfnEndpointConfig.DataCaptureConfigProperty | None:
    if not config.data_capture:
        return None
    return sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
        enable_capture=True,
        initial_sampling_percentage=config.data_capture_percent,
        destination_s3_uri=artifacts.s3_uri(DATA_CAPTURE_PREFIX.rstrip("/")),
        kms_key_id=key.key_arn,
        capture_options=[
            sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
            sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
        ],
        capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
            json_content_types=["application/json"]
        ),
    )


def _deployment(alarm_names: list[str]) -> sagemaker.CfnEndpoint.DeploymentConfigProperty | None:
    if not alarm_names:
        return None
    return sagemaker.CfnEndpoint.DeploymentConfigProperty(
        blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
            traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                type="ALL_AT_ONCE"
            ),
            # The old fleet stays up this long after the switch, so a failing new one rolls back quickly.
            termination_wait_in_seconds=600,
        ),
        auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
            alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=name) for name in alarm_names]
        ),
    )
