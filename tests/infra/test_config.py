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
    assert config.instance.cores == 4
    # A page alone takes 57 s on 4 cores (infra/README.md): 1.05 pages/min, each answered in 2 requests (the
    # second continues the cut answer) -> 2.1 invocations/min -> 70% -> 1.4 per instance per minute.
    assert config.scaling_target == 1.4
    assert config.latency_alarm == 45
    assert config.model_data_key == "models/pagescribe/"


def test_scaling_target_follows_the_instance_size() -> None:
    # 8 cores: a page fits one request (44.5 s), 1.35 pages/min; 16 cores: two pages at once still fit.
    assert PagescribeConfig(instance_type="ml.c6i.4xlarge").scaling_target == 0.9
    assert PagescribeConfig(instance_type="ml.c7i.8xlarge").scaling_target == 1.8
    assert PagescribeConfig(target_invocations_per_instance=5).scaling_target == 5


def test_container_environment_wins_over_the_sized_settings() -> None:
    config = PagescribeConfig(container_environment={"PAGESCRIBE_SLOTS": "2", "PAGESCRIBE_LOG_LEVEL": "debug"})
    env = config.model_environment(config.realtime_container)
    assert env == {
        "PAGESCRIBE_THREADS": "4",
        "PAGESCRIBE_SLOTS": "2",
        "PAGESCRIBE_CTX": "4096",
        "PAGESCRIBE_TIME_LIMIT_S": "50",
        "PAGESCRIBE_LOG_LEVEL": "debug",
    }


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
        ({"instance_type": "ml.c6i.xlarge"}, "needs 9.5 GiB"),
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
        ({"api_timeout_s": 61}, "less than or equal to 60"),
        ({"latency_alarm_s": 50}, "below the container's 50 s budget"),
        ({"log_retention_days": 42}, "log_retention_days must be one of"),
        ({"async_invocation_timeout_s": 3601}, "less than or equal to 3600"),
        ({"instance_type": "ml.x99.huge"}, "unknown instance type"),
        ({"unknown_key": 1}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_settings_are_refused_with_a_reason(values: dict[str, object], message: str) -> None:
    with pytest.raises((ValidationError, InvalidRequest), match=message):
        PagescribeConfig.model_validate(values)


def test_unknown_instance_type_works_with_explicit_size() -> None:
    config = PagescribeConfig(instance_type="ml.c8i.2xlarge", instance_vcpus=8, instance_memory_gib=16)
    assert config.scaling_target == 1.4
    one_thread_a_core = PagescribeConfig(
        instance_type="ml.c8a.2xlarge", instance_vcpus=8, instance_memory_gib=16, instance_physical_cores=8
    )
    assert one_thread_a_core.realtime_container.threads == 8


def test_api_timeout_may_go_above_29_s_for_a_raised_quota() -> None:
    assert PagescribeConfig(api_timeout_s="55").api_timeout_s == 55


def test_memory_check_counts_the_system_reserve() -> None:
    sizing.check_memory(sizing.InstanceSpec(2, 11.5))
    with pytest.raises(InvalidRequest, match=r"\(11\.5 GiB\)"):
        sizing.check_memory(sizing.InstanceSpec(2, 11.0))
