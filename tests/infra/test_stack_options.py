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
    assert integration["TimeoutInMillis"] == 29_000  # the most API Gateway allows without a quota increase
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
    for model in full_synth.resources("AWS::SageMaker::Model").values():  # real-time and async
        assert "container-assets" in json.dumps(model["Properties"]["PrimaryContainer"]["Image"])
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


def _outputs(synth: Synth) -> dict[str, Any]:
    return {name: output["Value"] for name, output in synth.template["Outputs"].items()}


def _models_by_endpoint(synth: Synth) -> dict[str, dict[str, Any]]:
    """Endpoint name -> the properties of the model its config's variant serves."""
    configs = synth.resources("AWS::SageMaker::EndpointConfig")
    models = synth.resources("AWS::SageMaker::Model")
    found = {}
    for endpoint in synth.resources("AWS::SageMaker::Endpoint").values():
        config_id = endpoint["Properties"]["EndpointConfigName"]["Fn::GetAtt"][0]
        model_id = configs[config_id]["Properties"]["ProductionVariants"][0]["ModelName"]["Fn::GetAtt"][0]
        found[endpoint["Properties"]["EndpointName"]] = models[model_id]["Properties"]
    return found


def test_api_keeps_the_client_errors_a_caller_acts_on_apart(full_synth: Synth) -> None:
    import re

    method = full_synth.one("AWS::ApiGateway::Method")
    responses = method["Integration"]["IntegrationResponses"]
    expected = {"413": "413", "415": "415", "429": "429", "401": "401", "403": "403", "404": "404", "424": "424"}
    expected |= {"400": "400", "418": "400", "503": "503", "500": "502", "504": "502"}
    for code in range(400, 600):
        matches = [r["StatusCode"] for r in responses if re.fullmatch(r.get("SelectionPattern", "^$"), str(code))]
        assert len(matches) == 1, (code, matches)  # each status selects exactly one response
        if str(code) in expected:
            assert matches == [expected[str(code)]], code
    assert {r["StatusCode"] for r in responses} == {m["StatusCode"] for m in method["MethodResponses"]}


def test_api_timeout_goes_above_29_s_when_asked(existing_synth: Synth) -> None:
    integration = existing_synth.one("AWS::ApiGateway::Method")["Integration"]
    assert integration["TimeoutInMillis"] == 45_000


def test_async_endpoint_serves_its_own_model_with_the_long_budget(full_synth: Synth) -> None:
    models = _models_by_endpoint(full_synth)
    realtime, queued = models["pagescribe"], models["pagescribe-async"]
    assert realtime is not queued
    # The same image and model files...
    assert realtime["PrimaryContainer"]["Image"] == queued["PrimaryContainer"]["Image"]
    assert realtime["PrimaryContainer"]["ModelDataSource"] == queued["PrimaryContainer"]["ModelDataSource"]
    assert queued["EnableNetworkIsolation"] is True and queued["VpcConfig"] == realtime["VpcConfig"]
    # ...but not the 50 s real-time budget: well inside the InvocationTimeoutSeconds callers pass.
    timeout = int(_outputs(full_synth)["AsyncInvocationTimeoutSeconds"])
    assert timeout == 3600
    assert realtime["PrimaryContainer"]["Environment"]["PAGESCRIBE_TIME_LIMIT_S"] == "50"
    assert int(queued["PrimaryContainer"]["Environment"]["PAGESCRIBE_TIME_LIMIT_S"]) == 3000 < timeout
    configs = [c["Properties"] for c in full_synth.resources("AWS::SageMaker::EndpointConfig").values()]
    client = next(c for c in configs if "AsyncInferenceConfig" in c)["AsyncInferenceConfig"]["ClientConfig"]
    slots = int(queued["PrimaryContainer"]["Environment"]["PAGESCRIBE_SLOTS"])
    assert client["MaxConcurrentInvocationsPerInstance"] == slots


def test_async_endpoint_has_its_own_log_group(full_synth: Synth) -> None:
    names = {g["Properties"].get("LogGroupName") for g in full_synth.resources("AWS::Logs::LogGroup").values()}
    assert {"/aws/sagemaker/Endpoints/pagescribe", "/aws/sagemaker/Endpoints/pagescribe-async"} <= names


def test_async_outputs_name_the_endpoint_and_its_s3_locations(full_synth: Synth) -> None:
    outputs = _outputs(full_synth)
    assert outputs["AsyncEndpointName"] == "pagescribe-async"
    for name, suffix in (("AsyncInputUrl", "/async/input/"), ("AsyncOutputUrl", "/async/output/")):
        assert outputs[name]["Fn::Join"][1][-1] == suffix
    assert outputs["AsyncFailureUrl"]["Fn::Join"][1][-1] == "/async/failure/"
    assert {"AsyncQueueUrl", "AsyncSuccessTopicArn", "AsyncErrorTopicArn"} <= set(outputs)


def test_async_queue_hears_both_topics_encrypted_with_a_dead_letter_queue(full_synth: Synth) -> None:
    key_id = next(iter(full_synth.resources("AWS::KMS::Key")))
    queues = full_synth.resources("AWS::SQS::Queue")
    (queue_id,) = [k for k, v in queues.items() if "RedrivePolicy" in v["Properties"]]
    assert len(queues) == 2  # the queue and its dead-letter queue
    assert _outputs(full_synth)["AsyncQueueUrl"] == {"Ref": queue_id}
    for props in (v["Properties"] for v in queues.values()):
        assert props["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    configs = [c["Properties"] for c in full_synth.resources("AWS::SageMaker::EndpointConfig").values()]
    notify = next(c for c in configs if "AsyncInferenceConfig" in c)["AsyncInferenceConfig"]["OutputConfig"][
        "NotificationConfig"
    ]
    topics = {notify["SuccessTopic"]["Ref"], notify["ErrorTopic"]["Ref"]}
    subscriptions = [s["Properties"] for s in full_synth.resources("AWS::SNS::Subscription").values()]
    to_queue = [s for s in subscriptions if s["Protocol"] == "sqs"]
    assert {s["TopicArn"]["Ref"] for s in to_queue} == topics
    assert all(s["Endpoint"] == {"Fn::GetAtt": [queue_id, "Arn"]} and s["RawMessageDelivery"] for s in to_queue)
    # Only those two topics may send, and only over TLS.
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in full_synth.resources("AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in p["Properties"]["Queues"]
    ]
    (sender,) = [s for s in policy if s["Effect"] == "Allow"]
    assert sender["Principal"] == {"Service": "sns.amazonaws.com"} and sender["Action"] == "sqs:SendMessage"
    assert {source["Ref"] for source in sender["Condition"]["ArnEquals"]["aws:SourceArn"]} == topics
    assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s) for s in policy)


def test_optional_ecr_and_logs_endpoints_come_when_asked(full_synth: Synth) -> None:
    services = {
        str(e["Properties"]["ServiceName"]["Fn::Join"][1][-1]).lstrip(".")
        for e in full_synth.resources("AWS::EC2::VPCEndpoint").values()
    }
    assert services == {"sagemaker.runtime", "ecr.api", "ecr.dkr", "logs", "s3"}
    gateway = next(
        e["Properties"]
        for e in full_synth.resources("AWS::EC2::VPCEndpoint").values()
        if e["Properties"]["VpcEndpointType"] == "Gateway"
    )
    assert "starport-layer-bucket" in json.dumps(gateway["PolicyDocument"])


def test_runtime_endpoint_policy_covers_the_async_endpoint_too(full_synth: Synth) -> None:
    runtime = next(
        e["Properties"]
        for e in full_synth.resources("AWS::EC2::VPCEndpoint").values()
        if str(e["Properties"]["ServiceName"]["Fn::Join"][1][-1]).endswith("sagemaker.runtime")
    )
    (statement,) = runtime["PolicyDocument"]["Statement"]
    names = sorted(json.dumps(r).rsplit("endpoint/", 1)[1].split('"')[0] for r in statement["Resource"])
    assert names == ["pagescribe", "pagescribe-async"]


def test_local_nvme_instances_get_no_volume_key_and_no_volume_size(
    nvme_synth: Synth, default_synth: Synth
) -> None:
    configs = [c["Properties"] for c in nvme_synth.resources("AWS::SageMaker::EndpointConfig").values()]
    assert len(configs) == 2  # real-time and async
    for config in configs:
        assert "KmsKeyId" not in config  # CreateEndpointConfig refuses a key for instance-store types
        assert config["ProductionVariants"][0]["InstanceType"] == "ml.c5d.2xlarge"
        assert "VolumeSizeInGB" not in config["ProductionVariants"][0]
    # The async results in S3 are still encrypted with the stack key.
    queued = next(c for c in configs if "AsyncInferenceConfig" in c)
    assert "KmsKeyId" in queued["AsyncInferenceConfig"]["OutputConfig"]
    # EBS-backed types keep both.
    (default,) = [c["Properties"] for c in default_synth.resources("AWS::SageMaker::EndpointConfig").values()]
    assert "KmsKeyId" in default and default["ProductionVariants"][0]["VolumeSizeInGB"] == 30
