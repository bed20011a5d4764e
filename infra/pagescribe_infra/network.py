"""The private network: isolated subnets in two AZs, VPC endpoints, and security groups that allow only 443.

There is no internet gateway and no NAT. SageMaker copies the model files through the model's ENIs, so the S3
gateway endpoint is required. Callers inside the VPC reach the SageMaker runtime through its interface endpoint
(``client_security_group``), whose policy admits only this stack's endpoints.

ECR and CloudWatch Logs endpoints are optional and off by default: SageMaker pulls an ECR image itself
(``ImageConfig.RepositoryAccessMode`` ``Platform``, the default; only ``Vpc`` mode, for a private registry, pulls
through the VPC), and it ships the container's stdout/stderr to CloudWatch Logs with its own agents; the container,
network-isolated, can reach neither.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pagescribe_infra.arns import endpoint_arn
from pagescribe_infra.config import PagescribeConfig

HTTPS = ec2.Port.tcp(443)

ECR_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
}
LOGS_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
}
INVOKE_ACTIONS = [
    "sagemaker:InvokeEndpoint",
    "sagemaker:InvokeEndpointAsync",
    "sagemaker:InvokeEndpointWithResponseStream",
]


class ModelNetwork(Construct):
    """A new private VPC (or an existing one by id) with the endpoints and security groups the model needs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PagescribeConfig,
        key: kms.IKey,
        bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc = self._existing_vpc(config) if config.vpc_id else self._new_vpc(config, key)
        self.subnets = ec2.SubnetSelection(subnets=self.vpc.isolated_subnets)
        self.subnet_ids = [subnet.subnet_id for subnet in self.vpc.isolated_subnets]
        self.model_security_group = self._group("ModelSecurityGroup", "SageMaker model ENIs: 443 out only")
        self.client_security_group = self._group(
            "ClientSecurityGroup", "Callers of the endpoint inside the VPC"
        )
        self.endpoint_security_group = self._group("EndpointSecurityGroup", "VPC interface endpoints")
        for source in (self.model_security_group, self.client_security_group):
            self.endpoint_security_group.add_ingress_rule(
                source, HTTPS, "HTTPS from the model and its callers"
            )
            source.add_egress_rule(
                self.endpoint_security_group, HTTPS, "HTTPS to the VPC interface endpoints"
            )
        self._model_s3_egress(config)
        if config.create_vpc_endpoints:
            self._endpoints(config, bucket)

    def _new_vpc(self, config: PagescribeConfig, key: kms.IKey) -> ec2.Vpc:
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(config.vpc_cidr),
            max_azs=2,
            nat_gateways=0,
            restrict_default_security_group=True,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="model", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22
                )
            ],
        )
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            encryption_key=key,
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.RETAIN,
        )
        vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))
        return vpc

    def _existing_vpc(self, config: PagescribeConfig) -> ec2.IVpc:
        # from_vpc_attributes needs no account lookup, so synth stays offline and deterministic.
        return ec2.Vpc.from_vpc_attributes(
            self,
            "Vpc",
            vpc_id=config.vpc_id or "",
            availability_zones=list(config.availability_zones),
            isolated_subnet_ids=list(config.subnet_ids),
            isolated_subnet_route_table_ids=list(config.route_table_ids) or None,
        )

    def _group(self, construct_id: str, description: str) -> ec2.SecurityGroup:
        return ec2.SecurityGroup(
            self, construct_id, vpc=self.vpc, description=description, allow_all_outbound=False
        )

    def _model_s3_egress(self, config: PagescribeConfig) -> None:
        if config.s3_prefix_list_id:
            peer = ec2.Peer.prefix_list(config.s3_prefix_list_id)
            self.model_security_group.add_egress_rule(peer, HTTPS, "HTTPS to S3 through the gateway endpoint")
            return
        # S3's prefix-list id differs per region and needs an account lookup to find. Without it, 443 to any
        # address is the narrowest rule that still reaches S3; with no IGW/NAT it only reaches the endpoints.
        self.model_security_group.add_egress_rule(
            ec2.Peer.any_ipv4(),
            HTTPS,
            "HTTPS to S3 (gateway endpoint) and the VPC endpoints; no internet route",
        )

    def _endpoints(self, config: PagescribeConfig, bucket: s3.IBucket) -> None:
        gateway = self.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.subnets]
        )
        if config.vpc_id is None:
            self._restrict_s3_endpoint(gateway, bucket, ecr_layers=config.ecr_vpc_endpoints)
        runtime = self._interface("SageMakerRuntime", ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME)
        runtime.add_to_policy(
            iam.PolicyStatement(
                principals=[iam.AnyPrincipal()],
                actions=INVOKE_ACTIONS,
                resources=[endpoint_arn(runtime, name) for name in _endpoint_names(config)],
            )
        )
        optional = {
            **(ECR_ENDPOINTS if config.ecr_vpc_endpoints else {}),
            **(LOGS_ENDPOINTS if config.logs_vpc_endpoint else {}),
        }
        for name, service in optional.items():
            self._interface(name, service)

    def _interface(self, name: str, service: ec2.InterfaceVpcEndpointAwsService) -> ec2.InterfaceVpcEndpoint:
        return self.vpc.add_interface_endpoint(
            name,
            service=service,
            subnets=self.subnets,
            security_groups=[self.endpoint_security_group],
            private_dns_enabled=True,
            # open=True would add ingress from the VPC CIDR; we allow the two groups above instead.
            open=False,
        )

    @staticmethod
    def _restrict_s3_endpoint(gateway: ec2.GatewayVpcEndpoint, bucket: s3.IBucket, *, ecr_layers: bool) -> None:
        region = Stack.of(gateway).region
        # Only our bucket, plus (with the ECR endpoints) the bucket ECR serves image layers from.
        gateway.add_to_policy(
            iam.PolicyStatement(
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject", "s3:ListBucket", "s3:PutObject"],
                resources=[bucket.bucket_arn, bucket.arn_for_objects("*")],
            )
        )
        if not ecr_layers:
            return
        gateway.add_to_policy(
            iam.PolicyStatement(
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject"],
                resources=[f"arn:{Stack.of(gateway).partition}:s3:::prod-{region}-starport-layer-bucket/*"],
            )
        )


def _endpoint_names(config: PagescribeConfig) -> list[str]:
    return [config.endpoint_name, *([config.async_endpoint_name] if config.async_endpoint else [])]
