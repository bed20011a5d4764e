"""The SageMaker execution role: read its model prefix, pull its image, write its logs and metrics.

No managed policy is attached; every statement is scoped to this stack's bucket, repository, key and endpoint
where IAM allows it, and the few ``*`` resources are actions IAM cannot scope.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct, IDependable

from pagescribe_infra.artifacts import DATA_CAPTURE_PREFIX, ModelArtifacts
from pagescribe_infra.config import PagescribeConfig
from pagescribe_infra.image import ModelImage
from pagescribe_infra.nag import acknowledge, wildcard_resource

# What SageMaker needs to attach the model's ENIs to our subnets (host-vpc docs); IAM cannot scope these.
VPC_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeVpcEndpoints",
]
LOG_ACTIONS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
METRIC_NAMESPACES = ["/aws/sagemaker/Endpoints", "AWS/SageMaker"]


class ExecutionRole(Construct):
    """The role SageMaker assumes for the model; ``policy`` is what must exist before SageMaker uses it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PagescribeConfig,
        image: ModelImage,
        artifacts: ModelArtifacts,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"pagescribe {config.endpoint_name}: SageMaker execution role (least privilege)",
        )
        self._grant_storage(config, image, artifacts, key)
        self._grant_telemetry(config)
        self.role.add_to_policy(iam.PolicyStatement(actions=VPC_ACTIONS, resources=["*"]))
        # Resources that make SageMaker assume the role depend on this, so its permissions exist first.
        self.policy: IDependable = self.role.node.find_child("DefaultPolicy")

    def _grant_storage(
        self, config: PagescribeConfig, image: ModelImage, artifacts: ModelArtifacts, key: kms.IKey
    ) -> None:
        artifacts.grant_model_read(self.role)
        if config.artifact_bucket_name:
            # An existing bucket may use the stack key (kms_key_arn); our own bucket's grant covers it.
            key.grant_decrypt(self.role)
        image.grant_pull(self.role)
        findings = _storage_findings(self.role, config, artifacts)
        if config.data_capture:
            artifacts.grant_write(self.role, DATA_CAPTURE_PREFIX)
            captures = wildcard_resource(self, artifacts.bucket.arn_for_objects(f"{DATA_CAPTURE_PREFIX}*"))
            findings[captures] = "SageMaker writes one object per captured request under the capture prefix."
        acknowledge(self.role, findings)

    def _grant_telemetry(self, config: PagescribeConfig) -> None:
        stack = Stack.of(self)
        log_groups = (
            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:"
            f"/aws/sagemaker/Endpoints/{config.endpoint_name}*"
        )
        self.role.add_to_policy(iam.PolicyStatement(actions=LOG_ACTIONS, resources=[log_groups]))
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACES}},
            )
        )
        acknowledge(
            self.role,
            {
                wildcard_resource(self, log_groups): "SageMaker names this endpoint's log groups "
                "/aws/sagemaker/Endpoints/<name>..., the async endpoint's included.",
                "AwsSolutions-IAM5[Resource::*]": "ENI, ECR-token and PutMetricData actions have no "
                "resource-level scoping in IAM; PutMetricData is limited to SageMaker's namespaces.",
            },
        )


def _storage_findings(role: iam.Role, config: PagescribeConfig, artifacts: ModelArtifacts) -> dict[str, str]:
    model_files = wildcard_resource(role, artifacts.bucket.arn_for_objects(f"{config.model_prefix}*"))
    findings = {
        "AwsSolutions-IAM5[Action::s3:GetObject*]": "CDK's read grant (GetObject, GetObjectVersion...), "
        "limited to the model prefix.",
        "AwsSolutions-IAM5[Action::s3:GetBucket*]": "CDK's read grant needs the bucket's location and "
        "versioning, on this bucket only.",
        "AwsSolutions-IAM5[Action::s3:List*]": "SageMaker lists the model prefix to copy it uncompressed.",
        model_files: "The role reads every file of its own model prefix, nothing else in the bucket.",
    }
    if config.data_capture or config.async_endpoint:
        findings["AwsSolutions-IAM5[Action::kms:GenerateDataKey*]"] = (
            "Encrypting captures and async outputs with the stack's own key."
        )
        findings["AwsSolutions-IAM5[Action::kms:ReEncrypt*]"] = "CDK's encrypt grant, on the stack's own key."
        findings["AwsSolutions-IAM5[Action::s3:Abort*]"] = (
            "CDK's put grant (multipart aborts), output prefixes."
        )
    return findings
