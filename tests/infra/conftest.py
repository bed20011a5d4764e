"""Fixtures for the infrastructure tests: the CDK app synthesized once per variant per session.

Synthesis runs the jsii kernel (node) and cdk-nag; it takes seconds, so each variant is built once and shared.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

INFRA = Path(__file__).resolve().parents[2] / "infra"
if str(INFRA) not in sys.path:  # the CDK app is not an installed package
    sys.path.insert(0, str(INFRA))
# jsii prints a banner on every start under Node 20 (end of life); it is noise in test output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from cdk_synth import EXISTING_DIGEST, EXISTING_KEY, Synth, synthesize  # noqa: E402


@pytest.fixture(scope="session")
def default_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """`cdk deploy` with no context: everything at its default."""
    return synthesize(tmp_path_factory.mktemp("cdk-default"), {})


@pytest.fixture(scope="session")
def full_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Every option switched on, values given as strings the way `cdk deploy -c` passes them."""
    build_context = tmp_path_factory.mktemp("repo")
    (build_context / "container").mkdir()
    (build_context / "container" / "Dockerfile").write_text("FROM scratch\n")
    overrides = {
        "public_api": "true",
        "api_rate_limit": "3",
        "api_burst_limit": "6",
        "async_endpoint": "true",
        "data_capture": "true",
        "s3_prefix_list_id": "pl-63a5400a",
        "alarm_email": "ops@example.com",
        "build_image_asset": "true",
        "build_context": str(build_context),
        "min_instances": "2",
        "max_instances": "6",
        "target_invocations_per_instance": "3.5",
        "scale_out_cooldown_s": "90",
        "scale_in_cooldown_s": "900",
        "ecr_vpc_endpoints": "true",
        "logs_vpc_endpoint": "true",
        "async_queue": "true",
    }
    return synthesize(tmp_path_factory.mktemp("cdk-full"), overrides)


@pytest.fixture(scope="session")
def existing_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Existing VPC, bucket, repository and key; API keys instead of IAM; a tar.gz model."""
    overrides = {
        "vpc_id": "vpc-0123456789abcdef0",
        "subnet_ids": "subnet-0aaaaaaaaaaaaaaa1,subnet-0bbbbbbbbbbbbbbb2",
        "availability_zones": "eu-west-1a,eu-west-1b",
        "route_table_ids": "rtb-0aaaaaaaaaaaaaaa1,rtb-0bbbbbbbbbbbbbbb2",
        "artifact_bucket_name": "my-models",
        "create_image_repository": "false",
        "image_digest": EXISTING_DIGEST,
        "kms_key_arn": EXISTING_KEY,
        "public_api": "true",
        "api_auth": "api_key",
        "api_timeout_s": "45",
        "model_data_format": "tar.gz",
    }
    return synthesize(tmp_path_factory.mktemp("cdk-existing"), overrides)


@pytest.fixture(scope="session")
def nvme_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """An instance type with local NVMe storage (ml.c5d), real-time and async."""
    overrides = {"instance_type": "ml.c5d.2xlarge", "async_endpoint": "true"}
    return synthesize(tmp_path_factory.mktemp("cdk-nvme"), overrides)


@pytest.fixture(scope="session")
def bootstrap_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The first deploy (`-c deploy_endpoint=false`): repository, bucket, key, network; nothing served."""
    return synthesize(tmp_path_factory.mktemp("cdk-bootstrap"), {"deploy_endpoint": "false"})


@pytest.fixture(scope="session")
def all_synths(
    default_synth: Synth, full_synth: Synth, existing_synth: Synth, nvme_synth: Synth, bootstrap_synth: Synth
) -> dict[str, Synth]:
    return {
        "default": default_synth,
        "full": full_synth,
        "existing": existing_synth,
        "nvme": nvme_synth,
        "bootstrap": bootstrap_synth,
    }
