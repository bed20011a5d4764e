"""An optional asynchronous endpoint for long documents: S3 in/out, SNS success/error topics, scale to zero.

A real-time invocation must finish within 60 s; an async one may run up to an hour, and its queue lets the
variant scale to zero instances when idle. It serves the same image and model files as the real-time endpoint
from a model of its own, whose container gets the long budget (5/6 of ``async_invocation_timeout_s``, the
``InvocationTimeoutSeconds`` callers pass) and its own slot count.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from pagescribe_infra.alarms import INVOCATION_NAMESPACE, encrypted_topic
from pagescribe_infra.artifacts import (
    ASYNC_FAILURE_PREFIX,
    ASYNC_INPUT_PREFIX,
    ASYNC_OUTPUT_PREFIX,
    ModelArtifacts,
)
from pagescribe_infra.async_queue import NotificationQueue
from pagescribe_infra.config import PagescribeConfig
from pagescribe_infra.endpoint import (
    VARIANT_NAME,
    ServingParts,
    endpoint_log_group,
    production_variant,
    serving_model,
    volume_key,
)
from pagescribe_infra.nag import acknowledge, wildcard_resource
from pagescribe_infra.role import ExecutionRole
from pagescribe_infra.scaling import SCALABLE_DIMENSION, service_linked_role, variant_resource_id

_PREFIX_REASONS = {
    ASYNC_INPUT_PREFIX: "SageMaker reads each queued request body from the async input prefix.",
    ASYNC_OUTPUT_PREFIX: "SageMaker writes one result object per request to the output prefix.",
    ASYNC_FAILURE_PREFIX: "SageMaker writes one error object per failed request to this prefix.",
}


class AsyncEndpoint(Construct):
    """A second endpoint with its own model (same image and files, long budget), fed through S3, reporting on two
    topics and, optionally, into one SQS queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PagescribeConfig,
        parts: ServingParts,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.endpoint_name = config.async_endpoint_name
        self.success_topic = encrypted_topic(
            self, "SuccessTopic", key=key, display_name="pagescribe async done"
        )
        self.error_topic = encrypted_topic(
            self, "ErrorTopic", key=key, display_name="pagescribe async failed"
        )
        self._grant(parts.role, parts.artifacts)
        environment = config.model_environment(config.async_container)
        self.model = serving_model(self, "Model", config=config, parts=parts, environment=environment)
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            kms_key_id=volume_key(config, key),
            production_variants=[production_variant(config, self.model.attr_model_name, 1)],
            async_inference_config=self._async_config(config, parts.artifacts, key),
        )
        self.endpoint_config.node.add_dependency(parts.role.policy)
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            retain_all_variant_properties=True,
        )
        self.log_group = endpoint_log_group(self, "Logs", config=config, endpoint_name=self.endpoint_name, key=key)
        self.endpoint.node.add_dependency(self.log_group)
        self._scaling(config)
        self.queue = (
            NotificationQueue(self, "Queue", key=key, topics=[self.success_topic, self.error_topic])
            if config.async_queue
            else None
        )

    def _async_config(
        self, config: PagescribeConfig, artifacts: ModelArtifacts, key: kms.IKey
    ) -> sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty:
        cfn = sagemaker.CfnEndpointConfig
        return cfn.AsyncInferenceConfigProperty(
            output_config=cfn.AsyncInferenceOutputConfigProperty(
                s3_output_path=artifacts.s3_uri(ASYNC_OUTPUT_PREFIX),
                s3_failure_path=artifacts.s3_uri(ASYNC_FAILURE_PREFIX),
                kms_key_id=key.key_arn,
                notification_config=cfn.AsyncInferenceNotificationConfigProperty(
                    success_topic=self.success_topic.topic_arn,
                    error_topic=self.error_topic.topic_arn,
                ),
            ),
            # As many requests at once as the container has slots: they share its decode steps.
            client_config=cfn.AsyncInferenceClientConfigProperty(
                max_concurrent_invocations_per_instance=config.async_concurrency
            ),
        )

    def _grant(self, role: ExecutionRole, artifacts: ModelArtifacts) -> None:
        artifacts.grant_read(role.role, ASYNC_INPUT_PREFIX)
        artifacts.grant_write(role.role, ASYNC_OUTPUT_PREFIX)
        artifacts.grant_write(role.role, ASYNC_FAILURE_PREFIX)
        self.success_topic.grant_publish(role.role)
        self.error_topic.grant_publish(role.role)
        acknowledge(
            role.role,
            {
                wildcard_resource(self, artifacts.bucket.arn_for_objects(f"{prefix}*")): reason
                for prefix, reason in _PREFIX_REASONS.items()
            },
        )

    def _scaling(self, config: PagescribeConfig) -> None:
        target = appscaling.ScalableTarget(
            self,
            "ScalableTarget",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=variant_resource_id(self.endpoint_name, VARIANT_NAME),
            scalable_dimension=SCALABLE_DIMENSION,
            min_capacity=0,
            max_capacity=config.async_max_instances,
            role=service_linked_role(self),
        )
        target.node.add_dependency(self.endpoint)
        target.scale_to_track_metric(
            "BacklogPerInstance",
            custom_metric=self._metric("ApproximateBacklogSizePerInstance", minutes=5),
            target_value=config.async_backlog_target,
            scale_out_cooldown=Duration.seconds(config.scale_out_cooldown_s),
            scale_in_cooldown=Duration.seconds(config.scale_in_cooldown_s),
        )
        # Target tracking cannot leave zero instances; this step policy wakes the variant when work arrives.
        target.scale_on_metric(
            "WakeFromZero",
            metric=self._metric("HasBacklogWithoutCapacity", minutes=1),
            scaling_steps=[
                appscaling.ScalingInterval(upper=0.5, change=0),
                appscaling.ScalingInterval(lower=0.5, change=1),
            ],
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            cooldown=Duration.seconds(config.scale_out_cooldown_s),
            evaluation_periods=1,
        )

    def _metric(self, name: str, *, minutes: int) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=INVOCATION_NAMESPACE,
            metric_name=name,
            dimensions_map={"EndpointName": self.endpoint_name},
            statistic="Average",
            period=Duration.minutes(minutes),
        )
