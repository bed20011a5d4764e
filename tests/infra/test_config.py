"""Config from CDK context (strings, as `-c` passes them) and the sizing arithmetic behind the defaults."""

from __future__ import annotations

import pytest
from pagescribe_infra.config import PagescribeConfig
from pydantic import ValidationError

from pagescribe.aws import sizing
from pagescribe.errors import InvalidRequest


def test_defaults_are_valid_and_derive_the_scaling_target() -> None:
    config = PagescribeConfig()
    assert config.instance_type == "ml.c6i.2xlarge"
    assert config.instance == sizing.InstanceSpec(8, 16.0)
    # 70 s per page on 2 vCPUs -> 17.5 s on 8 -> 3.43 pages/min -> 70% -> 2.4 per instance per minute.
    assert sizing.pages_per_minute(8) == pytest.approx(60 / 17.5)
    assert config.scaling_target == 2.4
    assert config.model_data_key == "models/pagescribe/"


def test_scaling_target_follows_the_instance_size() -> None:
    assert PagescribeConfig(instance_type="ml.c6i.4xlarge").scaling_target == 4.8
    assert PagescribeConfig(instance_type="ml.c7i.8xlarge").scaling_target == 9.6
    assert PagescribeConfig(target_invocations_per_instance=5).scaling_target == 5


def test_context_strings_are_parsed() -> None:
    config = PagescribeConfig.model_validate(
        {
            "min_instances": "2",
            "public_api": "true",
            "vpc_id": "vpc-1",
            "subnet_ids": "subnet-a, subnet-b",
            "availability_zones": '["eu-west-1a", "eu-west-1b"]',
            "route_table_ids": "rtb-a,rtb-b",
            "container_environment": '{"PAGESCRIBE_LOG_LEVEL": "debug"}',
            "model_prefix": "/models/v2",
            "volume_size_gb": "none",
        }
    )
    assert config.min_instances == 2 and config.public_api is True
    assert config.subnet_ids == ("subnet-a", "subnet-b")
    assert config.availability_zones == ("eu-west-1a", "eu-west-1b")
    assert config.container_environment == {"PAGESCRIBE_LOG_LEVEL": "debug"}
    assert config.model_prefix == "models/v2/"
    assert config.volume_size_gb is None


def test_from_node_reads_the_dict_then_flat_keys() -> None:
    from aws_cdk import App

    app = App(context={"pagescribe": {"max_instances": 8, "endpoint_name": "docs"}, "max_instances": "3"})
    config = PagescribeConfig.from_node(app.node)
    assert (config.endpoint_name, config.max_instances) == ("docs", 3)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"instance_type": "ml.c6i.xlarge"}, "needs 9 GiB"),
        ({"min_instances": 3, "max_instances": 2}, "must not exceed"),
        (
            {"vpc_id": "vpc-1", "subnet_ids": "subnet-a", "availability_zones": "eu-west-1a"},
            ">= 2 subnet_ids",
        ),
        (
            {"vpc_id": "vpc-1", "subnet_ids": "a,b", "availability_zones": "eu-west-1a,eu-west-1a"},
            "two availability zones",
        ),
        ({"image_digest": "sha256:abc"}, "sha256:<64 hex digits>"),
        ({"endpoint_name": "x" * 58}, "at most 57"),
        ({"api_timeout_s": 60}, "less than or equal to 29"),
        ({"instance_type": "ml.x99.huge"}, "unknown instance type"),
        ({"unknown_key": 1}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_settings_are_refused_with_a_reason(values: dict[str, object], message: str) -> None:
    with pytest.raises((ValidationError, InvalidRequest), match=message):
        PagescribeConfig.model_validate(values)


def test_unknown_instance_type_works_with_explicit_size() -> None:
    config = PagescribeConfig(instance_type="ml.c8i.2xlarge", instance_vcpus=8, instance_memory_gib=16)
    assert config.scaling_target == 2.4


def test_memory_check_counts_the_system_reserve() -> None:
    sizing.check_memory(sizing.InstanceSpec(2, 11.0))
    with pytest.raises(InvalidRequest, match="11 GiB"):
        sizing.check_memory(sizing.InstanceSpec(2, 10.5))
