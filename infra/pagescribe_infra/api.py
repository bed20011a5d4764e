"""The optional public front: a regional REST API, IAM-authenticated (or API keys) and throttled,
that forwards ``POST /invocations`` straight to the SageMaker runtime (no Lambda in between).

API Gateway gives an integration 29 s unless the account's quota is raised (Regional REST APIs may go higher, and
``api_timeout_s`` follows up to SageMaker's 60 s). The runtime's status codes reach the caller (an error answer of
the container itself arrives as ModelError, 424, with its code in the body): the 4xx codes a client acts on
differently keep their own code, the rest of 4xx become 400, and 5xx become 502 (503, which clients retry, stays).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from pagescribe_infra.arns import endpoint_arn
from pagescribe_infra.config import PagescribeConfig
from pagescribe_infra.nag import acknowledge

JSON = "application/json"
DISTINCT_CLIENT_ERRORS = ("400", "401", "403", "404", "413", "415", "424", "429")
"""Passed through as they are: bad request, unauthenticated, forbidden, no such endpoint, body too large, wrong
media type, the model answered an error (ModelError, 424), throttled or the model not ready (429)."""
RETRYABLE = "503"


def _other(hundreds: int, keep: tuple[str, ...]) -> str:
    r"""A selection pattern matching every ``hundreds``xx status code but ``keep``: ``5(0[012456789]|1\d|...)``."""
    tens = []
    for ten in range(10):
        units = "".join(str(unit) for unit in range(10) if f"{hundreds}{ten}{unit}" not in keep)
        if units:
            tens.append(rf"{ten}\d" if len(units) == 10 else f"{ten}[{units}]")
    return f"{hundreds}({'|'.join(tens)})"


def status_mapping() -> dict[str, str]:
    """``{selection pattern: method status}`` for the integration's error responses (each code matches one)."""
    mapping = {code: code for code in DISTINCT_CLIENT_ERRORS}
    mapping[_other(4, DISTINCT_CLIENT_ERRORS)] = "400"
    mapping[RETRYABLE] = RETRYABLE
    mapping[_other(5, (RETRYABLE,))] = "502"
    return mapping


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
                *(
                    apigw.IntegrationResponse(status_code=status, selection_pattern=pattern)
                    for pattern, status in status_mapping().items()
                ),
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
            method_responses=[
                apigw.MethodResponse(status_code=code) for code in sorted({"200", *status_mapping().values()})
            ],
        )

    def _invoke_role(self, config: PagescribeConfig) -> iam.Role:
        role = iam.Role(
            self,
            "InvokeRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway may invoke this one SageMaker endpoint",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:InvokeEndpoint"], resources=[endpoint_arn(self, config.endpoint_name)]
            )
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
