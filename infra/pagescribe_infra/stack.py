"""The one stack: key, image, bucket, network, endpoint, scaling, alarms; optionally async endpoint, API."""

from __future__ import annotations

from typing import Any

from aws_cdk import App, CfnOutput, Stack, Validations
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from pagescribe_infra.alarms import AlarmTopic, EndpointAlarms
from pagescribe_infra.api import PublicApi
from pagescribe_infra.artifacts import ASYNC_FAILURE_PREFIX, ASYNC_INPUT_PREFIX, ASYNC_OUTPUT_PREFIX, ModelArtifacts
from pagescribe_infra.async_endpoint import AsyncEndpoint
from pagescribe_infra.config import PagescribeConfig
from pagescribe_infra.encryption import EncryptionKey
from pagescribe_infra.endpoint import VARIANT_NAME, ModelEndpoint, ServingParts
from pagescribe_infra.image import ModelImage
from pagescribe_infra.network import ModelNetwork
from pagescribe_infra.role import ExecutionRole
from pagescribe_infra.scaling import EndpointScaling


class PagescribeStack(Stack):
    """A private, encrypted, autoscaled SageMaker endpoint serving the pagescribe image."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PagescribeConfig, **kwargs: Any
    ) -> None:
        super().__init__(
            scope, construct_id, description="pagescribe: vision-LLM page transcription", **kwargs
        )
        self.config = config
        key = EncryptionKey(self, "Encryption", config=config).key
        self.image = ModelImage(self, "Image", config=config, key=key)
        self.artifacts = ModelArtifacts(self, "Artifacts", config=config, key=key)
        self.network = ModelNetwork(self, "Network", config=config, key=key, bucket=self.artifacts.bucket)
        self._output(
            "ModelDataUrl", self.artifacts.model_data_url, "Upload the model here (pagescribe model package)"
        )
        self._output("ImageUri", self.image.image_uri, "Image the model serves")
        self._output(
            "ClientSecurityGroupId",
            self.network.client_security_group.security_group_id,
            "Attach to callers inside the VPC",
        )
        if config.deploy_endpoint:
            self._serving(config, key)

    def _serving(self, config: PagescribeConfig, key: kms.IKey) -> None:
        role = ExecutionRole(
            self, "ExecutionRole", config=config, image=self.image, artifacts=self.artifacts, key=key
        )
        topic = AlarmTopic(self, "Alarms", config=config, key=key).topic
        parts = ServingParts(image=self.image, artifacts=self.artifacts, network=self.network, role=role)
        self.endpoint = self._realtime(config, key, parts, topic)
        self._output("EndpointName", config.endpoint_name, "pagescribe endpoint status|invoke NAME")
        self._output("AlarmTopicArn", topic.topic_arn, "Subscribe to be told about alarms")
        if config.async_endpoint:
            self._async(config, key, parts)
        if config.public_api:
            api = PublicApi(self, "PublicApi", config=config, key=key)
            self._output("ApiUrl", api.api.url_for_path("/invocations"), "POST dialog batches here")

    def _async(self, config: PagescribeConfig, key: kms.IKey, parts: ServingParts) -> None:
        endpoint = AsyncEndpoint(self, "Async", config=config, parts=parts, key=key)
        # What `pagescribe convert --async-endpoint` and other batch clients need to find.
        self._output("AsyncEndpointName", endpoint.endpoint_name, "InvokeEndpointAsync target")
        self._output(
            "AsyncInputUrl", self.artifacts.s3_uri(ASYNC_INPUT_PREFIX), "Put async requests under this prefix"
        )
        self._output("AsyncOutputUrl", self.artifacts.s3_uri(ASYNC_OUTPUT_PREFIX), "Async results land here")
        self._output("AsyncFailureUrl", self.artifacts.s3_uri(ASYNC_FAILURE_PREFIX), "Async errors land here")
        self._output(
            "AsyncInvocationTimeoutSeconds",
            str(config.async_invocation_timeout_s),
            "Pass as InvocationTimeoutSeconds (the container's budget is 5/6 of it)",
        )
        self._output("AsyncSuccessTopicArn", endpoint.success_topic.topic_arn, "Announces each async result")
        self._output("AsyncErrorTopicArn", endpoint.error_topic.topic_arn, "Announces each async failure")
        if endpoint.queue is not None:
            self._output(
                "AsyncQueueUrl", endpoint.queue.queue.queue_url, "Both topics' notifications, raw (SQS)"
            )

    def _realtime(
        self, config: PagescribeConfig, key: kms.IKey, parts: ServingParts, topic: sns.ITopic
    ) -> ModelEndpoint:
        names = {"endpoint_name": config.endpoint_name, "variant_name": VARIANT_NAME}
        alarms = EndpointAlarms(self, "EndpointAlarms", config=config, topic=topic, **names)
        endpoint = ModelEndpoint(
            self,
            "Endpoint",
            config=config,
            parts=parts,
            key=key,
            rollback_alarm_names=[alarms.errors_5xx.alarm_name],
        )
        EndpointScaling(self, "Scaling", config=config, endpoint=endpoint.endpoint, **names)
        return endpoint

    def _output(self, name: str, value: str, description: str) -> None:
        CfnOutput(self, name, value=value, description=description)


def build_app(*, context: dict[str, Any] | None = None, outdir: str | None = None, nag: bool = True) -> App:
    """The CDK app: one stack from the context's config, checked by cdk-nag's AwsSolutions pack at synth."""
    app = App(context=context, outdir=outdir)
    config = PagescribeConfig.from_node(app.node)
    PagescribeStack(app, config.stack_name, config=config)
    if nag:
        # write_suppressions...: every acknowledgment lands in the template's metadata with its reason.
        Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
    return app
