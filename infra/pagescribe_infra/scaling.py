"""Autoscaling of the real-time variant: target tracking on invocations per instance per minute."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_iam as iam
from constructs import Construct, IDependable

from pagescribe_infra.config import PagescribeConfig

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SERVICE_LINKED_ROLE = "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"


def variant_resource_id(endpoint_name: str, variant_name: str) -> str:
    """Application Auto Scaling's id for one endpoint variant."""
    return f"endpoint/{endpoint_name}/variant/{variant_name}"


def service_linked_role(scope: Construct) -> iam.IRole:
    """Application Auto Scaling's service-linked role for SageMaker, which it creates on first use.

    Naming it avoids the empty role CDK would otherwise add; CloudFormation recommends the service-linked ARN.
    """
    stack = Stack.of(scope)
    arn = (
        f"arn:{stack.partition}:iam::{stack.account}:role/aws-service-role/"
        f"sagemaker.application-autoscaling.amazonaws.com/{SERVICE_LINKED_ROLE}"
    )
    return iam.Role.from_role_arn(scope, "ServiceLinkedRole", arn, mutable=False)


class EndpointScaling(Construct):
    """A scalable target (min/max instances) tracking ``SageMakerVariantInvocationsPerInstance``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PagescribeConfig,
        endpoint_name: str,
        variant_name: str,
        endpoint: IDependable,
    ) -> None:
        super().__init__(scope, construct_id)
        self.target = appscaling.ScalableTarget(
            self,
            "Target",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=variant_resource_id(endpoint_name, variant_name),
            scalable_dimension=SCALABLE_DIMENSION,
            min_capacity=config.min_instances,
            max_capacity=config.max_instances,
            role=service_linked_role(self),
        )
        # The target names the endpoint by a plain string, so CloudFormation cannot infer the order.
        self.target.node.add_dependency(endpoint)
        self.policy = self.target.scale_to_track_metric(
            "InvocationsPerInstance",
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            target_value=config.scaling_target,
            scale_out_cooldown=Duration.seconds(config.scale_out_cooldown_s),
            scale_in_cooldown=Duration.seconds(config.scale_in_cooldown_s),
        )
