"""Optional parts: public API, async endpoint, data capture, image asset, existing resources, first deploy."""

from __future__ import annotations

import json
from typing import Any

from cdk_synth import EXISTING_DIGEST, EXISTING_KEY, Synth


def _by_metric(synth: Synth) -> dict[str, list[dict[str, Any]]]:
    alarms: dict[str, list[dict[str, Any]]] = {}
    for alarm in synth.resources("AWS::CloudWatch::Alarm").values():
        alarms.setdefault(alarm["Properties"].get("MetricName", ""), []).append(alarm["Properties"])
    return alarms


def test_context_strings_reach_scaling(full_synth: Synth) -> None:
    targets = {
        t["Properties"]["ResourceId"]: t["Properties"]
        for t in full_synth.resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
    }
    realtime = targets["endpoint/pagescribe/variant/AllTraffic"]
    assert (realtime["MinCapacity"], realtime["MaxCapacity"]) == (2, 6)
    full_synth.assertions.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "TargetTrackingScalingPolicyConfiguration": {
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
                "TargetValue": 3.5,
                "ScaleOutCooldown": 90,
                "ScaleInCooldown": 900,
            }
        },
    )
    configs = [c["Properties"] for c in full_synth.resources("AWS::SageMaker::EndpointConfig").values()]
    realtime_config = next(c for c in configs if "AsyncInferenceConfig" not in c)
    assert realtime_config["ProductionVariants"][0]["InitialInstanceCount"] == 2


def test_public_api_uses_iam_auth_throttling_and_the_runtime(full_synth: Synth) -> None:
    api = full_synth.one("AWS::ApiGateway::RestApi")
    assert api["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    method = full_synth.one("AWS::ApiGateway::Method")
    assert method["HttpMethod"] == "POST"
    assert method["AuthorizationType"] == "AWS_IAM"
    integration = method["Integration"]
    assert integration["Type"] == "AWS"
    assert integration["Uri"]["Fn::Join"][1][-1] == ":runtime.sagemaker:path/endpoints/pagescribe/invocations"
    assert integration["TimeoutInMillis"] <= 29_000
    role_id = integration["Credentials"]["Fn::GetAtt"][0]
    policy = next(
        p["Properties"]["PolicyDocument"]
        for p in full_synth.resources("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role_id}]
    )
    assert [s["Action"] for s in policy["Statement"]] == ["sagemaker:InvokeEndpoint"]
    assert json.dumps(policy["Statement"][0]["Resource"]).endswith(':endpoint/pagescribe"]]}')
    stage = full_synth.one("AWS::ApiGateway::Stage")
    settings = stage["MethodSettings"][0]
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (3, 6)
    assert settings["DataTraceEnabled"] is False  # bodies hold page images
    assert "DestinationArn" in stage["AccessLogSetting"]


def test_async_endpoint_writes_to_s3_and_notifies_two_topics(full_synth: Synth) -> None:
    endpoints = {
        e["Properties"]["EndpointName"] for e in full_synth.resources("AWS::SageMaker::Endpoint").values()
    }
    assert endpoints == {"pagescribe", "pagescribe-async"}
    configs = [c["Properties"] for c in full_synth.resources("AWS::SageMaker::EndpointConfig").values()]
    output = next(c for c in configs if "AsyncInferenceConfig" in c)["AsyncInferenceConfig"]["OutputConfig"]
    assert output["S3OutputPath"]["Fn::Join"][1][-1] == "/async/output/"
    assert output["S3FailurePath"]["Fn::Join"][1][-1] == "/async/failure/"
    topics = full_synth.resources("AWS::SNS::Topic")
    notify = output["NotificationConfig"]
    for which in ("SuccessTopic", "ErrorTopic"):
        assert topics[notify[which]["Ref"]]["Properties"]["KmsMasterKeyId"]
    async_target = next(
        t["Properties"]
        for t in full_synth.resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
        if t["Properties"]["ResourceId"] == "endpoint/pagescribe-async/variant/AllTraffic"
    )
    assert async_target["MinCapacity"] == 0  # async endpoints may sleep; a backlog alarm wakes them
    assert "HasBacklogWithoutCapacity" in _by_metric(full_synth)


def test_data_capture_is_sampled_and_encrypted(full_synth: Synth) -> None:
    configs = [c["Properties"] for c in full_synth.resources("AWS::SageMaker::EndpointConfig").values()]
    capture = next(c for c in configs if "DataCaptureConfig" in c)["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == 5
    assert "KmsKeyId" in capture


def test_image_asset_synthesizes_without_docker_and_feeds_the_model(full_synth: Synth) -> None:
    full_synth.assertions.resource_count_is("AWS::ECR::Repository", 0)
    image = json.dumps(full_synth.one("AWS::SageMaker::Model")["PrimaryContainer"]["Image"])
    assert "container-assets" in image
    assets = json.loads((full_synth.outdir / "Pagescribe.assets.json").read_text())
    (docker,) = assets["dockerImages"].values()
    # the whole repository is the build context; the Dockerfile is named inside it
    assert docker["source"]["dockerFile"] == "container/Dockerfile"
    assert (full_synth.outdir / docker["source"]["directory"] / "container" / "Dockerfile").is_file()
    assert docker["source"]["platform"] == "linux/amd64"


def test_prefix_list_narrows_the_model_egress(full_synth: Synth) -> None:
    groups = full_synth.resources("AWS::EC2::SecurityGroup")
    model_sg = next(k for k, g in groups.items() if "SageMaker model" in g["Properties"]["GroupDescription"])
    egress = list(groups[model_sg]["Properties"].get("SecurityGroupEgress", [])) + [
        e["Properties"]
        for e in full_synth.resources("AWS::EC2::SecurityGroupEgress").values()
        if e["Properties"]["GroupId"] == {"Fn::GetAtt": [model_sg, "GroupId"]}
    ]
    assert {e["FromPort"] for e in egress} == {443}
    assert {e.get("DestinationPrefixListId") for e in egress} == {"pl-63a5400a", None}
    assert all("CidrIp" not in e for e in egress)  # S3 by prefix list, the rest to the endpoints' group


def test_alarm_email_subscribes_to_the_topic(full_synth: Synth) -> None:
    full_synth.assertions.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )


def test_existing_vpc_bucket_repository_and_key_are_referenced_not_created(existing_synth: Synth) -> None:
    for created in ("AWS::EC2::VPC", "AWS::S3::Bucket", "AWS::ECR::Repository", "AWS::KMS::Key"):
        existing_synth.assertions.resource_count_is(created, 0)
    model = existing_synth.one("AWS::SageMaker::Model")
    assert model["VpcConfig"]["Subnets"] == ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == "s3://my-models/models/pagescribe/model.tar.gz"
    assert json.dumps(model["PrimaryContainer"]["Image"]).endswith(f'/pagescribe@{EXISTING_DIGEST}"]]}}')
    assert existing_synth.one("AWS::SageMaker::EndpointConfig")["KmsKeyId"] == EXISTING_KEY
    gateway = next(
        e["Properties"]
        for e in existing_synth.resources("AWS::EC2::VPCEndpoint").values()
        if e["Properties"]["VpcEndpointType"] == "Gateway"
    )
    assert gateway["RouteTableIds"] == ["rtb-0aaaaaaaaaaaaaaa1", "rtb-0bbbbbbbbbbbbbbb2"]


def test_api_key_mode_requires_a_key_of_a_throttled_usage_plan(existing_synth: Synth) -> None:
    method = existing_synth.one("AWS::ApiGateway::Method")
    assert method["ApiKeyRequired"] is True
    plan = existing_synth.one("AWS::ApiGateway::UsagePlan")
    assert plan["Throttle"] == {"RateLimit": 5, "BurstLimit": 10}
    existing_synth.assertions.resource_count_is("AWS::ApiGateway::ApiKey", 1)


def test_first_deploy_creates_storage_and_network_but_nothing_to_serve(bootstrap_synth: Synth) -> None:
    t = bootstrap_synth.assertions
    for absent in (
        "AWS::SageMaker::Model",
        "AWS::SageMaker::Endpoint",
        "AWS::ApplicationAutoScaling::ScalableTarget",
    ):
        t.resource_count_is(absent, 0)
    for present in ("AWS::ECR::Repository", "AWS::KMS::Key", "AWS::EC2::VPC"):
        t.resource_count_is(present, 1)
    outputs = bootstrap_synth.template["Outputs"]
    assert {"ModelDataUrl", "ImageUri"} <= set(outputs)
