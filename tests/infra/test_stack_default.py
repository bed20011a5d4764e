"""What `cdk deploy` creates with no context: every security and sizing property, read off the template."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match
from cdk_synth import Synth

from pagescribe.aws import sizing

ENDPOINT = "pagescribe"


def _logical_id(synth: Synth, type_name: str) -> str:
    ids = list(synth.resources(type_name))
    assert len(ids) == 1, ids
    return ids[0]


def _artifact_bucket(synth: Synth) -> str:
    """The bucket that logs its access (the other bucket is its access-log destination)."""
    buckets = synth.resources("AWS::S3::Bucket")
    return next(k for k, v in buckets.items() if "LoggingConfiguration" in v["Properties"])


def _service(endpoint: dict[str, Any]) -> str:
    """``com.amazonaws.<region>.<service>`` -> ``<service>``."""
    return str(endpoint["ServiceName"]["Fn::Join"][1][-1]).lstrip(".")


def _variant(synth: Synth) -> dict[str, Any]:
    variants: list[dict[str, Any]] = synth.one("AWS::SageMaker::EndpointConfig")["ProductionVariants"]
    assert len(variants) == 1
    return variants[0]


def test_network_is_private_in_two_azs_with_no_route_out(default_synth: Synth) -> None:
    t = default_synth.assertions
    t.resource_count_is("AWS::EC2::InternetGateway", 0)
    t.resource_count_is("AWS::EC2::NatGateway", 0)
    t.resource_count_is("AWS::EC2::Route", 0)  # only the local route and the S3 gateway endpoint remain
    subnets = default_synth.resources("AWS::EC2::Subnet")
    assert len(subnets) == 2
    azs = [s["Properties"]["AvailabilityZone"] for s in subnets.values()]
    assert sorted(json.dumps(az) for az in azs) == sorted(
        json.dumps({"Fn::Select": [i, {"Fn::GetAZs": ""}]}) for i in (0, 1)
    )
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets.values())
    vpc_config = default_synth.one("AWS::SageMaker::Model")["VpcConfig"]
    assert sorted(ref["Ref"] for ref in vpc_config["Subnets"]) == sorted(subnets)
    t.resource_count_is("AWS::EC2::FlowLog", 1)


def test_model_is_network_isolated_and_reads_an_uncompressed_prefix(default_synth: Synth) -> None:
    model = default_synth.one("AWS::SageMaker::Model")
    assert model["EnableNetworkIsolation"] is True
    source = model["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]
    assert source["S3DataType"] == "S3Prefix"
    assert source["CompressionType"] == "None"
    assert source["S3Uri"]["Fn::Join"][1] == [
        "s3://",
        {"Ref": _artifact_bucket(default_synth)},
        "/models/pagescribe/",
    ]


def test_model_image_is_the_repository_at_an_immutable_tag(default_synth: Synth) -> None:
    image = json.dumps(default_synth.one("AWS::SageMaker::Model")["PrimaryContainer"]["Image"])
    repo_ids = [k for k in default_synth.resources("AWS::ECR::Repository")]
    assert len(repo_ids) == 1 and repo_ids[0] in image
    assert image.endswith(':0.1.0"]]}')


def test_default_instance_is_compute_optimized_and_fits_a_7b_q4(default_synth: Synth) -> None:
    variant = _variant(default_synth)
    assert variant["InstanceType"] == sizing.DEFAULT_INSTANCE_TYPE == "ml.c6i.2xlarge"
    spec = sizing.INSTANCE_SPECS[variant["InstanceType"]]
    assert spec.memory_gib >= sizing.MODEL_PROCESS_GIB + sizing.SYSTEM_RESERVE_GIB
    assert variant["InitialInstanceCount"] == 1
    assert variant["RoutingConfig"] == {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}


def test_timeouts_allow_a_4gb_model_to_download_and_load(default_synth: Synth) -> None:
    variant = _variant(default_synth)
    four_gb_mb = 4 * 1024
    # Pessimistic S3 -> instance rate of 10 MB/s, and a cold EBS read of 4 GB at ~25 MB/s plus checks.
    assert variant["ModelDataDownloadTimeoutInSeconds"] >= four_gb_mb / 10
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] >= four_gb_mb / 25 + 300
    assert variant["VolumeSizeInGB"] >= 2 * 4


def test_storage_and_endpoint_are_encrypted_with_a_rotating_cmk(default_synth: Synth) -> None:
    key_id = _logical_id(default_synth, "AWS::KMS::Key")
    assert default_synth.one("AWS::KMS::Key")["EnableKeyRotation"] is True
    config = default_synth.one("AWS::SageMaker::EndpointConfig")
    assert config["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    repo = default_synth.one("AWS::ECR::Repository")
    assert repo["EncryptionConfiguration"]["EncryptionType"] == "KMS"
    default_synth.assertions.has_resource_properties(
        "AWS::Logs::LogGroup", {"KmsKeyId": {"Fn::GetAtt": [key_id, "Arn"]}}
    )
    default_synth.assertions.has_resource_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]}}
    )


def test_artifact_bucket_is_encrypted_versioned_private_and_tls_only(default_synth: Synth) -> None:
    key_id = _logical_id(default_synth, "AWS::KMS::Key")
    buckets = default_synth.resources("AWS::S3::Bucket")
    artifact_id = _artifact_bucket(default_synth)
    artifact = buckets[artifact_id]["Properties"]
    rule = artifact["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ]
    assert rule == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]}}
    assert artifact["VersioningConfiguration"] == {"Status": "Enabled"}
    for bucket in buckets.values():
        block = bucket["Properties"]["PublicAccessBlockConfiguration"]
        assert block == dict.fromkeys(
            ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
        )
    default_synth.assertions.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": artifact_id},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        )
                    ]
                )
            },
        },
    )


def test_repository_scans_on_push_with_immutable_tags_and_a_lifecycle(default_synth: Synth) -> None:
    repo = default_synth.one("AWS::ECR::Repository")
    assert repo["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert repo["ImageTagMutability"] == "IMMUTABLE"
    rules = json.loads(repo["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert [r["selection"] for r in rules] == [
        {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7}
    ]


def test_no_lifecycle_rule_can_expire_a_tagged_image_an_endpoint_serves(default_synth: Synth) -> None:
    """An endpoint names its image by tag or digest; scale-out pulls it again, so it must outlive any push count."""
    rules = json.loads(default_synth.one("AWS::ECR::Repository")["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    for rule in rules:
        assert rule["selection"]["tagStatus"] == "untagged", rule
        assert rule["selection"]["countType"] == "sinceImagePushed", rule


def _endpoints(synth: Synth) -> dict[str, dict[str, Any]]:
    return {_service(e["Properties"]): e["Properties"] for e in synth.resources("AWS::EC2::VPCEndpoint").values()}


def test_vpc_endpoints_are_s3_and_the_runtime_only(default_synth: Synth) -> None:
    """Hosting pulls ECR images and ships logs outside the VPC: those endpoints would cost without use."""
    endpoints = _endpoints(default_synth)
    assert set(endpoints) == {"sagemaker.runtime", "s3"}
    assert endpoints["sagemaker.runtime"]["VpcEndpointType"] == "Interface"
    assert endpoints["sagemaker.runtime"]["PrivateDnsEnabled"] is True
    assert endpoints["s3"]["VpcEndpointType"] == "Gateway"
    # The gateway only reaches our bucket (ECR's layer bucket only comes with the ECR endpoints).
    resources = json.dumps([s["Resource"] for s in endpoints["s3"]["PolicyDocument"]["Statement"]])
    assert _artifact_bucket(default_synth) in resources
    assert "starport-layer-bucket" not in resources


def test_runtime_endpoint_admits_only_invocations_of_this_stacks_endpoint(default_synth: Synth) -> None:
    (statement,) = _endpoints(default_synth)["sagemaker.runtime"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == [
        "sagemaker:InvokeEndpoint",
        "sagemaker:InvokeEndpointAsync",
        "sagemaker:InvokeEndpointWithResponseStream",
    ]
    resource = json.dumps(statement["Resource"])
    assert resource.endswith(':endpoint/pagescribe"]]}')


def test_security_groups_allow_only_https_between_named_groups(default_synth: Synth) -> None:
    for rule in default_synth.resources("AWS::EC2::SecurityGroupIngress").values():
        props = rule["Properties"]
        assert (props["FromPort"], props["ToPort"], props["IpProtocol"]) == (443, 443, "tcp")
        assert "SourceSecurityGroupId" in props and "CidrIp" not in props
    for group in default_synth.resources("AWS::EC2::SecurityGroup").values():
        props = group["Properties"]
        assert "SecurityGroupIngress" not in props
        for egress in props.get("SecurityGroupEgress", []):
            assert egress["FromPort"] == 443 or egress["CidrIp"] == "255.255.255.255/32"  # CDK's "no egress"


def _execution_role(synth: Synth) -> str:
    return next(
        k
        for k, v in synth.resources("AWS::IAM::Role").items()
        if "sagemaker.amazonaws.com" in json.dumps(v["Properties"]["AssumeRolePolicyDocument"])
    )


def _execution_policy(synth: Synth) -> dict[str, Any]:
    role = _execution_role(synth)
    return next(
        p["Properties"]
        for p in synth.resources("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role}]
    )


def test_execution_role_is_least_privilege(default_synth: Synth) -> None:
    roles = default_synth.resources("AWS::IAM::Role")
    assert "ManagedPolicyArns" not in roles[_execution_role(default_synth)]["Properties"]
    assert "FullAccess" not in json.dumps(default_synth.template)
    policy = _execution_policy(default_synth)
    allowed_on_star = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"} | {
        a for a in json.dumps(policy).split('"') if a.startswith("ec2:")
    }
    for statement in policy["PolicyDocument"]["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any(a == "*" or a.endswith(":*") for a in actions), actions
        if statement["Resource"] == "*":
            assert set(actions) <= allowed_on_star, actions
        if any(a.startswith("s3:") for a in actions):
            assert "/models/pagescribe/*" in json.dumps(statement["Resource"])
        if "cloudwatch:PutMetricData" in actions:
            assert statement["Condition"]["StringEquals"]["cloudwatch:namespace"]


def test_scalable_target_and_invocations_tracking_from_sizing(default_synth: Synth) -> None:
    t = default_synth.assertions
    t.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "ServiceNamespace": "sagemaker",
            "ResourceId": f"endpoint/{ENDPOINT}/variant/AllTraffic",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "MinCapacity": 1,
            "MaxCapacity": 4,
        },
    )
    expected = sizing.target_invocations_per_instance(sizing.INSTANCE_SPECS["ml.c6i.2xlarge"])
    assert expected == 1.4
    t.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
                "TargetValue": expected,
                "ScaleOutCooldown": 120,
                "ScaleInCooldown": 600,
            },
        },
    )
    target = default_synth.one("AWS::ApplicationAutoScaling::ScalableTarget")
    assert "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint" in json.dumps(target["RoleARN"])


def test_endpoint_keeps_scaled_count_and_rolls_back_on_5xx(default_synth: Synth) -> None:
    endpoint = default_synth.one("AWS::SageMaker::Endpoint")
    assert endpoint["EndpointName"] == ENDPOINT
    assert endpoint["RetainAllVariantProperties"] is True
    alarm_ids = [
        k
        for k, v in default_synth.resources("AWS::CloudWatch::Alarm").items()
        if v["Properties"]["MetricName"] == "Invocation5XXErrors"
    ]
    rollback = endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert rollback == [{"AlarmName": {"Ref": alarm_ids[0]}}]
    target = next(iter(default_synth.resources("AWS::ApplicationAutoScaling::ScalableTarget").values()))
    assert target["DependsOn"] == [_logical_id(default_synth, "AWS::SageMaker::Endpoint")]


def test_alarms_on_5xx_latency_cpu_and_memory_notify_the_topic(default_synth: Synth) -> None:
    topic = _logical_id(default_synth, "AWS::SNS::Topic")
    alarms = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in default_synth.resources("AWS::CloudWatch::Alarm").values()
    }
    assert set(alarms) == {"Invocation5XXErrors", "ModelLatency", "CPUUtilization", "MemoryUtilization"}
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": topic}]
        assert {"Name": "EndpointName", "Value": ENDPOINT} in alarm["Dimensions"]
    assert alarms["Invocation5XXErrors"]["Threshold"] == 1
    latency = alarms["ModelLatency"]
    assert latency["ExtendedStatistic"] == "p90"
    assert 40_000_000 <= latency["Threshold"] < 60_000_000  # microseconds: near, below the time limits
    assert alarms["CPUUtilization"]["Namespace"] == "/aws/sagemaker/Endpoints"
    assert alarms["CPUUtilization"]["Threshold"] == 90 * 8  # summed over the 8 vCPUs
    assert alarms["MemoryUtilization"]["Threshold"] == 90


def test_public_front_and_async_endpoint_are_off_by_default(default_synth: Synth) -> None:
    default_synth.assertions.resource_count_is("AWS::ApiGateway::RestApi", 0)
    default_synth.assertions.resource_count_is("AWS::SageMaker::Endpoint", 1)
    assert "DataCaptureConfig" not in default_synth.one("AWS::SageMaker::EndpointConfig")


def test_alarm_topic_lets_this_accounts_cloudwatch_alarms_publish(default_synth: Synth) -> None:
    """enforce_ssl replaces SNS's default policy: without an allow for CloudWatch no alarm e-mail arrives."""
    topic = _logical_id(default_synth, "AWS::SNS::Topic")
    (policy,) = [
        p["Properties"]
        for p in default_synth.resources("AWS::SNS::TopicPolicy").values()
        if p["Properties"]["Topics"] == [{"Ref": topic}]
    ]
    statements = policy["PolicyDocument"]["Statement"]
    allow = next(s for s in statements if s["Effect"] == "Allow")
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Resource"] == {"Ref": topic}
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source = json.dumps(allow["Condition"]["ArnLike"]["aws:SourceArn"])
    assert ":cloudwatch:" in source and source.endswith(':alarm:*"]]}')
    # ...and publishers without TLS are still refused.
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )


def test_model_environment_carries_the_sizing_for_its_instance_type(default_synth: Synth) -> None:
    environment = default_synth.one("AWS::SageMaker::Model")["PrimaryContainer"]["Environment"]
    sized = sizing.realtime_container(sizing.INSTANCE_SPECS["ml.c6i.2xlarge"])
    assert environment == sized.environment()
    assert environment == {
        "PAGESCRIBE_THREADS": "4",  # the 4 physical cores of 8 vCPUs
        "PAGESCRIBE_SLOTS": "1",  # a page alone takes 57 s: two at once would each take twice the budget
        "PAGESCRIBE_CTX": "4096",
        "PAGESCRIBE_TIME_LIMIT_S": "50",  # inside real-time hosting's 60 s
    }


def test_endpoint_log_group_is_made_first_with_retention_and_the_key(default_synth: Synth) -> None:
    key_id = _logical_id(default_synth, "AWS::KMS::Key")
    groups = {
        k: v
        for k, v in default_synth.resources("AWS::Logs::LogGroup").items()
        if v["Properties"].get("LogGroupName") == f"/aws/sagemaker/Endpoints/{ENDPOINT}"
    }
    assert len(groups) == 1
    ((group_id, group),) = groups.items()
    assert group["Properties"]["RetentionInDays"] == 365
    assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    endpoint = next(iter(default_synth.resources("AWS::SageMaker::Endpoint").values()))
    assert group_id in endpoint["DependsOn"]
    # The execution role may still write to it.
    statements = _execution_policy(default_synth)["PolicyDocument"]["Statement"]
    logs = next(s for s in statements if "logs:PutLogEvents" in s["Action"])
    assert json.dumps(logs["Resource"]).endswith(f':log-group:/aws/sagemaker/Endpoints/{ENDPOINT}*"]]}}')


def test_latency_alarm_fires_before_requests_reach_the_time_budget(default_synth: Synth) -> None:
    (latency,) = [
        a["Properties"]
        for a in default_synth.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "ModelLatency"
    ]
    budget_us = int(default_synth.one("AWS::SageMaker::Model")["PrimaryContainer"]["Environment"][
        "PAGESCRIBE_TIME_LIMIT_S"
    ]) * 1_000_000
    assert latency["Threshold"] < budget_us  # a cut request lasts the whole budget; the alarm must come first
    assert latency["Threshold"] == 45_000_000
