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
from pagescribe_infra.artifacts import ASYNC_INPUT_PREFIX, ModelArtifacts
from pagescribe_infra.async_endpoint import AsyncEndpoint
from pagescribe_infra.config import PagescribeConfig
from pagescribe_infra.encryption import EncryptionKey
from pagescribe_infra.endpoint import VARIANT_NAME, ModelEndpoint
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
        self.endpoint = self._realtime(config, key, role, topic)
        self._output("EndpointName", config.endpoint_name, "pagescribe endpoint status|invoke NAME")
        self._output("AlarmTopicArn", topic.topic_arn, "Subscribe to be told about alarms")
        if config.async_endpoint:
            async_endpoint = AsyncEndpoint(
                self,
                "Async",
                config=config,
                model_name=self.endpoint.model.attr_model_name,
                artifacts=self.artifacts,
                key=key,
                role=role,
            )
            self._output("AsyncEndpointName", async_endpoint.endpoint_name, "InvokeEndpointAsync target")
            self._output(
                "AsyncInputUrl", self.artifacts.s3_uri(ASYNC_INPUT_PREFIX), "Put async requests here"
            )
        if config.public_api:
            api = PublicApi(self, "PublicApi", config=config, key=key)
            self._output("ApiUrl", api.api.url_for_path("/invocations"), "POST dialog batches here")

    def _realtime(
        self, config: PagescribeConfig, key: kms.IKey, role: ExecutionRole, topic: sns.ITopic
    ) -> ModelEndpoint:
        names = {"endpoint_name": config.endpoint_name, "variant_name": VARIANT_NAME}
        alarms = EndpointAlarms(self, "EndpointAlarms", config=config, topic=topic, **names)
        endpoint = ModelEndpoint(
            self,
            "Endpoint",
            config=config,
            image=self.image,
            artifacts=self.artifacts,
            network=self.network,
            key=key,
            role=role,
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
