"""The optional public front: a regional REST API, IAM-authenticated (or API keys) and throttled,
that forwards ``POST /invocations`` straight to the SageMaker runtime (no Lambda in between).

API Gateway gives an integration at most 29 s, less than SageMaker's 60 s; pages that may take
longer belong on the async endpoint.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from pagescribe_infra.config import PagescribeConfig
from pagescribe_infra.nag import acknowledge

JSON = "application/json"


def _stage(config: PagescribeConfig, access_logs: logs.ILogGroup) -> apigw.StageOptions:
    """Stage ``v1``: throttled, access-logged, errors logged, bodies never traced."""
    fields = apigw.AccessLogFormat.json_with_standard_fields(
        caller=True,
        http_method=True,
        ip=True,
        protocol=True,
        request_time=True,
        resource_path=True,
        response_length=True,
        status=True,
        user=True,
    )
    return apigw.StageOptions(
        stage_name="v1",
        throttling_rate_limit=config.api_rate_limit,
        throttling_burst_limit=config.api_burst_limit,
        access_log_destination=apigw.LogGroupLogDestination(access_logs),
        access_log_format=fields,
        logging_level=apigw.MethodLoggingLevel.ERROR,
        # Request bodies hold page images: never trace them into logs.
        data_trace_enabled=False,
        metrics_enabled=True,
    )


def _integration(config: PagescribeConfig, invoke_role: iam.IRole) -> apigw.AwsIntegration:
    """A direct AWS integration with ``InvokeEndpoint``: JSON in, JSON out, SageMaker errors mapped."""
    return apigw.AwsIntegration(
        service="runtime.sagemaker",
        path=f"endpoints/{config.endpoint_name}/invocations",
        integration_http_method="POST",
        options=apigw.IntegrationOptions(
            credentials_role=invoke_role,
            passthrough_behavior=apigw.PassthroughBehavior.NEVER,
            request_templates={JSON: "$input.body"},
            request_parameters={
                "integration.request.header.Content-Type": f"'{JSON}'",
                "integration.request.header.Accept": f"'{JSON}'",
            },
            timeout=Duration.seconds(config.api_timeout_s),
            integration_responses=[
                apigw.IntegrationResponse(status_code="200"),
                apigw.IntegrationResponse(status_code="400", selection_pattern=r"4\d{2}"),
                apigw.IntegrationResponse(status_code="502", selection_pattern=r"5\d{2}"),
            ],
        ),
    )


class PublicApi(Construct):
    """``POST {url}invocations`` -> ``InvokeEndpoint`` on the real-time endpoint."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PagescribeConfig, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            encryption_key=key,
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"pagescribe-{config.endpoint_name}",
            description="pagescribe: authenticated, throttled front of the SageMaker endpoint",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Access and execution logs need the account-level CloudWatch role.
            cloud_watch_role=True,
            deploy_options=_stage(config, access_logs),
        )
        self._invocations(config)
        if config.api_auth == "api_key":
            self._usage_plan(config)
        self._acknowledge(config)

    def _invocations(self, config: PagescribeConfig) -> None:
        body = self.api.add_model(
            "DialogBatch",
            content_type=JSON,
            schema=apigw.JsonSchema(schema=apigw.JsonSchemaVersion.DRAFT4, type=apigw.JsonSchemaType.OBJECT),
        )
        use_iam = config.api_auth == "iam"
        self.api.root.add_resource("invocations").add_method(
            "POST",
            _integration(config, self._invoke_role(config)),
            authorization_type=apigw.AuthorizationType.IAM if use_iam else apigw.AuthorizationType.NONE,
            api_key_required=not use_iam,
            request_models={JSON: body},
            request_validator_options=apigw.RequestValidatorOptions(
                validate_request_body=True, validate_request_parameters=True
            ),
            method_responses=[apigw.MethodResponse(status_code=code) for code in ("200", "400", "502")],
        )

    def _invoke_role(self, config: PagescribeConfig) -> iam.Role:
        stack = Stack.of(self)
        # SageMaker spells endpoint names in lower case inside ARNs.
        name = config.endpoint_name.lower()
        endpoint_arn = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:endpoint/{name}"
        role = iam.Role(
            self,
            "InvokeRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway may invoke this one SageMaker endpoint",
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["sagemaker:InvokeEndpoint"], resources=[endpoint_arn])
        )
        return role

    def _usage_plan(self, config: PagescribeConfig) -> None:
        plan = self.api.add_usage_plan(
            "UsagePlan",
            throttle=apigw.ThrottleSettings(
                rate_limit=config.api_rate_limit, burst_limit=config.api_burst_limit
            ),
        )
        plan.add_api_stage(stage=self.api.deployment_stage)
        plan.add_api_key(self.api.add_api_key("ApiKey"))

    def _acknowledge(self, config: PagescribeConfig) -> None:
        reasons = {
            "AwsSolutions-APIG3": "Callers authenticate (IAM or API key) and the stage is throttled; "
            "a WAF web ACL costs extra and can be attached to the stage by the account owner.",
            "AwsSolutions-COG4": "The API uses IAM (SigV4) or API-key authentication, not Cognito.",
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]": "The AWS-managed role API Gateway needs to write "
            "its logs; it grants log writes only.",
        }
        if config.api_auth == "api_key":
            reasons["AwsSolutions-APIG4"] = (
                "api_auth=api_key was chosen: each request needs a key of the usage plan, which is throttled."
            )
        acknowledge(self, reasons)
