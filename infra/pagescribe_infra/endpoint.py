"""The SageMaker model, endpoint config and endpoint (the role they run as is in ``role.py``)."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from pagescribe_infra.artifacts import DATA_CAPTURE_PREFIX, ModelArtifacts
from pagescribe_infra.config import PagescribeConfig
from pagescribe_infra.image import ModelImage
from pagescribe_infra.network import ModelNetwork
from pagescribe_infra.role import ExecutionRole

VARIANT_NAME = "AllTraffic"


class ModelEndpoint(Construct):
    """``CfnModel`` (network-isolated, in the VPC) + ``CfnEndpointConfig`` (KMS) + ``CfnEndpoint``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PagescribeConfig,
        image: ModelImage,
        artifacts: ModelArtifacts,
        network: ModelNetwork,
        key: kms.IKey,
        role: ExecutionRole,
        rollback_alarm_names: list[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.endpoint_name = config.endpoint_name
        self.variant_name = VARIANT_NAME
        self.model = self._model(config, image, artifacts, network, role)
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            kms_key_id=key.key_arn,
            production_variants=[
                production_variant(config, self.model.attr_model_name, config.min_instances)
            ],
            data_capture_config=_data_capture(config, artifacts, key),
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

    def _model(
        self,
        config: PagescribeConfig,
        image: ModelImage,
        artifacts: ModelArtifacts,
        network: ModelNetwork,
        role: ExecutionRole,
    ) -> sagemaker.CfnModel:
        model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=role.role.role_arn,
            # No network for the container: weights arrive through /opt/ml/model, requests through SageMaker.
            enable_network_isolation=True,
            primary_container=_container(config, image, artifacts),
            vpc_config=sagemaker.CfnModel.VpcConfigProperty(
                subnets=network.subnet_ids,
                security_group_ids=[network.model_security_group.security_group_id],
            ),
        )
        # CreateModel checks the role can reach the image, so its policy must exist first.
        model.node.add_dependency(role.policy)
        return model


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
        volume_size_in_gb=config.volume_size_gb,
        # Pages take seconds to minutes: send each request to the least busy instance, not a random one.
        routing_config=sagemaker.CfnEndpointConfig.RoutingConfigProperty(
            routing_strategy="LEAST_OUTSTANDING_REQUESTS"
        ),
    )


def _container(
    config: PagescribeConfig, image: ModelImage, artifacts: ModelArtifacts
) -> sagemaker.CfnModel.ContainerDefinitionProperty:
    common: dict[str, Any] = {
        "image": image.image_uri,
        "mode": "SingleModel",
        "environment": dict(config.container_environment) or None,
    }
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
