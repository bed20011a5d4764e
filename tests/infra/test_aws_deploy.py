"""The deploy calls moto cannot serve (it has no UpdateEndpoint): botocore's Stubber checks the exact
requests and plays back SageMaker's answers."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from pagescribe.aws import deploy, sizing
from pagescribe.errors import InvalidRequest

SPEC = deploy.EndpointSpec(
    endpoint_name="pagescribe",
    image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/pagescribe@sha256:" + "ab" * 32,
    model_data_url="s3://models/pagescribe/model.tar.gz",
    role_arn="arn:aws:iam::123456789012:role/pagescribe",
)


def _client() -> Any:
    import boto3

    return boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def _described(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "EndpointName": "pagescribe",
        "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/pagescribe",
        "EndpointConfigName": "pagescribe-old",
        "EndpointStatus": status,
        "CreationTime": "2026-01-01T00:00:00Z",
        "LastModifiedTime": "2026-01-01T00:00:00Z",
        **extra,
    }


def test_redeploy_updates_in_place_and_keeps_the_scaled_instance_count() -> None:
    sm = _client()
    with Stubber(sm) as stub:
        stub.add_response("describe_endpoint", _described("InService"), {"EndpointName": "pagescribe"})
        stub.add_response(
            "create_model",
            {"ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/x"},
            {
                "ModelName": ANY,
                "ExecutionRoleArn": SPEC.role_arn,
                "PrimaryContainer": {
                    "Image": SPEC.image_uri,
                    "Mode": "SingleModel",
                    "ModelDataUrl": "s3://models/pagescribe/model.tar.gz",
                    "Environment": sizing.realtime_container(sizing.INSTANCE_SPECS[SPEC.instance_type]).environment(),
                },
                "EnableNetworkIsolation": True,
                "Tags": [],
            },
        )
        stub.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/x"},
            {"EndpointConfigName": ANY, "ProductionVariants": ANY, "Tags": []},
        )
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/pagescribe"},
            {"EndpointName": "pagescribe", "EndpointConfigName": ANY, "RetainAllVariantProperties": True},
        )
        stub.add_response("describe_endpoint", _described("Updating"), {"EndpointName": "pagescribe"})
        stub.add_response("describe_endpoint", _described("InService"), {"EndpointName": "pagescribe"})
        result = deploy.deploy(SPEC, client=sm, poll_s=0, timeout_s=5)
        stub.assert_no_pending_responses()
    assert (result.status, result.updated) == ("InService", True)
    assert result.model_name.startswith("pagescribe-2")


def test_a_failed_endpoint_raises_with_sagemakers_reason() -> None:
    sm = _client()
    with Stubber(sm) as stub:
        failed = _described(
            "Failed", FailureReason="The primary container did not pass the ping health check."
        )
        stub.add_response("describe_endpoint", failed, {"EndpointName": "pagescribe"})
        with pytest.raises(deploy.DeployError, match="did not pass the ping health check"):
            deploy.wait_in_service("pagescribe", client=sm, poll_s=0, timeout_s=5)


def test_variant_uses_the_sized_defaults() -> None:
    variant = deploy.production_variant(SPEC, "m")
    assert variant["InstanceType"] == "ml.c6i.2xlarge"
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 900
    assert variant["ModelDataDownloadTimeoutInSeconds"] == 1200
    assert variant["VolumeSizeInGB"] == 30


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"subnet_ids": ("subnet-a",), "security_group_ids": ("sg-1",)}, ">= 2 subnets"),
        ({"subnet_ids": ("subnet-a", "subnet-b")}, "security group"),
        ({"instance_type": "ml.c6i.xlarge"}, "needs 9.5 GiB"),
        ({"instance_count": 0}, "instance_count"),
    ],
)
def test_spec_refuses_unsafe_or_undersized_settings(overrides: dict[str, Any], message: str) -> None:
    values = {
        "endpoint_name": "e",
        "image_uri": SPEC.image_uri,
        "model_data_url": SPEC.model_data_url,
        "role_arn": SPEC.role_arn,
        **overrides,
    }
    with pytest.raises(InvalidRequest, match=message):
        deploy.EndpointSpec(**values)


def test_deploy_sizes_the_container_like_the_stack() -> None:
    """The boto3 path and the CDK app take the container's settings from the same sizing function."""
    from pagescribe_infra.config import PagescribeConfig

    for instance_type in ("ml.c6i.2xlarge", "ml.c6i.16xlarge", "ml.m5.4xlarge"):
        spec = replace(SPEC, instance_type=instance_type, environment={"PAGESCRIBE_LOG_LEVEL": "debug"})
        config = PagescribeConfig(instance_type=instance_type, container_environment={"PAGESCRIBE_LOG_LEVEL": "debug"})
        environment = deploy.container_definition(spec)["Environment"]
        assert environment == config.model_environment(config.realtime_container)
        assert environment["PAGESCRIBE_THREADS"] == str(sizing.INSTANCE_SPECS[instance_type].vcpus // 2)


@pytest.mark.parametrize(("instance_type", "has_key"), [("ml.c5.2xlarge", True), ("ml.c5d.2xlarge", False)])
def test_local_nvme_instances_get_no_volume_key(instance_type: str, has_key: bool) -> None:
    spec = replace(SPEC, instance_type=instance_type, kms_key_id="arn:aws:kms:us-east-1:123456789012:key/k")
    request = deploy.endpoint_config_request(spec, "c")
    assert ("KmsKeyId" in request) is has_key  # CreateEndpointConfig refuses a key for instance-store types
    assert ("VolumeSizeInGB" in request["ProductionVariants"][0]) is has_key
