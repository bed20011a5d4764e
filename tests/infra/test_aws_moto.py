"""The boto3 paths against moto's server on loopback: package a model to S3, deploy, check status, invoke."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pagescribe.aws import deploy, package
from pagescribe.cli import endpoint as cli
from pagescribe.prompts import load_prompt
from servers import use_moto

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/pagescribe-execution"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/pagescribe:0.1.0"
TEXT_MODEL = b"GGUF\x03\x00\x00\x00 tiny text model"
PROJECTOR = b"GGUF\x03\x00\x00\x00 tiny projector"


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every boto3 client in this test talks to the moto server, with fake credentials."""
    import moto.sagemaker.models as sagemaker_models
    import requests

    use_moto(monkeypatch, moto_url, REGION)
    # moto's instance-type list predates ml.c6i/ml.c7i (our default); accept them like SageMaker does.
    original = sagemaker_models.FakeEndpointConfig.validate_instance_type

    def accept_current_types(self: Any, instance_type: str) -> None:
        if not instance_type.startswith(("ml.c6i.", "ml.c7i.")):
            original(self, instance_type)

    monkeypatch.setattr(sagemaker_models.FakeEndpointConfig, "validate_instance_type", accept_current_types)
    yield moto_url
    requests.post(f"{moto_url}/moto-api/reset", timeout=10)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A fake model directory of a few bytes: a text GGUF, its projector, a note and a hidden file."""
    root = tmp_path / "model"
    root.mkdir()
    (root / "tiny-7b-q4_k_m.gguf").write_bytes(TEXT_MODEL)
    (root / "mmproj-tiny-f16.gguf").write_bytes(PROJECTOR)
    (root / "README.md").write_text("a fake model\n")
    (root / ".cache").mkdir()
    (root / ".cache" / "partial").write_bytes(b"download leftovers")
    return root


def _s3() -> Any:
    import boto3

    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket="models")
    return client


def _keys(s3: Any, prefix: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket="models", Prefix=prefix).get("Contents", [])}


def test_package_uploads_the_files_and_a_checksum_manifest(aws: str, model_dir: Path) -> None:
    s3 = _s3()
    result = package.package_model(model_dir, "s3://models/pagescribe/v1", s3_client=s3)
    assert result.model_data_url == "s3://models/pagescribe/v1/"
    assert _keys(s3, "pagescribe/") == {
        "pagescribe/v1/tiny-7b-q4_k_m.gguf",
        "pagescribe/v1/mmproj-tiny-f16.gguf",
        "pagescribe/v1/README.md",
        "pagescribe/v1/pagescribe-model.json",
    }
    manifest = json.loads(s3.get_object(Bucket="models", Key="pagescribe/v1/pagescribe-model.json")["Body"].read())
    files = {f["path"]: f for f in manifest["files"]}
    assert files["tiny-7b-q4_k_m.gguf"] == {
        "path": "tiny-7b-q4_k_m.gguf",
        "size": len(TEXT_MODEL),
        "sha256": hashlib.sha256(TEXT_MODEL).hexdigest(),
    }
    assert files["mmproj-tiny-f16.gguf"]["sha256"] == hashlib.sha256(PROJECTOR).hexdigest()
    assert (manifest["text"], manifest["mmproj"]) == ("tiny-7b-q4_k_m.gguf", "mmproj-tiny-f16.gguf")
    uploaded = s3.get_object(Bucket="models", Key="pagescribe/v1/tiny-7b-q4_k_m.gguf")["Body"].read()
    assert hashlib.sha256(uploaded).hexdigest() == files["tiny-7b-q4_k_m.gguf"]["sha256"]


def test_package_refuses_a_prefix_holding_other_objects(aws: str, model_dir: Path) -> None:
    s3 = _s3()
    s3.put_object(Bucket="models", Key="pagescribe/v1/old-model.gguf", Body=b"stale")
    with pytest.raises(package.PrefixNotEmpty, match=r"old-model\.gguf"):
        package.package_model(model_dir, "s3://models/pagescribe/v1", s3_client=s3)
    package.package_model(model_dir, "s3://models/pagescribe/v1", s3_client=s3, replace=True)
    assert "pagescribe/v1/old-model.gguf" not in _keys(s3, "pagescribe/v1/")


def test_package_as_tar_gz_records_the_archive_checksum(aws: str, model_dir: Path) -> None:
    s3 = _s3()
    result = package.package_model(model_dir, "s3://models/tgz/", compress=True, s3_client=s3)
    assert result.model_data_url == "s3://models/tgz/model.tar.gz"
    assert _keys(s3, "tgz/") == {"tgz/model.tar.gz", "tgz/pagescribe-model.json"}
    archive = s3.get_object(Bucket="models", Key="tgz/model.tar.gz")["Body"].read()
    outer = json.loads(s3.get_object(Bucket="models", Key="tgz/pagescribe-model.json")["Body"].read())
    assert outer["archive"] == {
        "path": "model.tar.gz",
        "size": len(archive),
        "sha256": hashlib.sha256(archive).hexdigest(),
    }
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == [
            "README.md",
            "mmproj-tiny-f16.gguf",
            "pagescribe-model.json",
            "tiny-7b-q4_k_m.gguf",
        ]
        inner = json.loads(tar.extractfile("pagescribe-model.json").read())  # type: ignore[union-attr]
        assert tar.extractfile("tiny-7b-q4_k_m.gguf").read() == TEXT_MODEL  # type: ignore[union-attr]
    assert inner["files"] == outer["files"]


def test_package_command_prints_the_model_data_url(aws: str, model_dir: Path) -> None:
    _s3()
    result = CliRunner().invoke(cli.package_command, [str(model_dir), "--s3", "s3://models/cli"])
    assert result.exit_code == 0, result.output
    assert "uploaded s3://models/cli/tiny-7b-q4_k_m.gguf" in result.output
    assert "model data: s3://models/cli/" in result.output


def test_package_command_reports_a_directory_without_gguf(aws: str, tmp_path: Path) -> None:
    _s3()
    (tmp_path / "notes.txt").write_text("no model here")
    result = CliRunner().invoke(cli.package_command, [str(tmp_path), "--s3", "s3://models/x"])
    assert result.exit_code == 1
    assert "no .gguf file" in result.output


def _spec(**overrides: Any) -> deploy.EndpointSpec:
    values: dict[str, Any] = {
        "endpoint_name": "pagescribe",
        "image_uri": IMAGE,
        "model_data_url": "s3://models/pagescribe/v1/",
        "role_arn": ROLE,
        "subnet_ids": ("subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"),
        "security_group_ids": ("sg-0123456789abcdef0",),
        "kms_key_id": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    }
    return deploy.EndpointSpec(**{**values, **overrides})


def test_deploy_creates_model_config_and_endpoint(aws: str) -> None:
    import boto3

    sm = boto3.client("sagemaker", region_name=REGION)
    result = deploy.deploy(_spec(), client=sm, poll_s=0.01, timeout_s=10)
    assert (result.status, result.updated) == ("InService", False)
    model = sm.describe_model(ModelName=result.model_name)
    assert model["VpcConfig"]["Subnets"] == ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"]
    assert model["PrimaryContainer"]["Image"] == IMAGE
    source = model["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]
    assert source == {
        "S3Uri": "s3://models/pagescribe/v1/",
        "S3DataType": "S3Prefix",
        "CompressionType": "None",
    }
    config = sm.describe_endpoint_config(EndpointConfigName=result.endpoint_config_name)
    (variant,) = config["ProductionVariants"]
    assert variant["InstanceType"] == "ml.c6i.2xlarge"
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 900
    assert variant["ModelDataDownloadTimeoutInSeconds"] == 1200
    assert config["KmsKeyId"].endswith("1234567890ab")
    status = CliRunner().invoke(cli.endpoint_group, ["status", "pagescribe"])
    assert status.exit_code == 0, status.output
    assert status.output.startswith(f"pagescribe: InService (config {result.endpoint_config_name})")


def _queue_answer(moto_url: str, answer: list[dict[str, Any]]) -> None:
    """Make moto's InvokeEndpoint give ``answer`` (it returns canned bodies, whatever is sent)."""
    import requests

    requests.post(
        f"{moto_url}/moto-api/static/sagemaker/endpoint-results",
        json={"results": [{"Body": json.dumps(answer), "ContentType": "application/json"}]},
        timeout=10,
    ).raise_for_status()


def _bodies_sent() -> list[dict[str, Any]]:
    """The request bodies moto's InvokeEndpoint received (it keys the answers it gave by them)."""
    from moto.sagemakerruntime.models import sagemakerruntime_backends

    # moto files them under no endpoint name (it looks for the name in the body, not the path).
    results = sagemakerruntime_backends[ACCOUNT][REGION].results
    return [json.loads(json.loads(base64.b64decode(key))["Body"]) for seen in results.values() for key in seen]


def test_invoke_sends_format_a_and_prints_the_text(aws: str, tmp_path: Path) -> None:
    from PIL import Image

    deploy.deploy(_spec(), poll_s=0.01, timeout_s=10)
    _queue_answer(aws, [{"generated_text": "# Invoice 42\nTotal: 10 EUR", "finish_reason": "stop"}])
    page = tmp_path / "page.png"
    Image.new("RGB", (300, 200), "white").save(page)
    result = CliRunner().invoke(cli.endpoint_group, ["invoke", "pagescribe", str(page), "--prompt", "Read it."])
    assert result.exit_code == 0, result.output
    assert result.output == "# Invoice 42\nTotal: 10 EUR\n"
    [body] = _bodies_sent()
    (dialog,) = body["inputs"]
    assert dialog == [{"role": "user", "content": "Read it.", "image": dialog[0]["image"]}]
    assert base64.b64decode(dialog[0]["image"]) == page.read_bytes()
    assert body["parameters"] == {"max_tokens": 1024}


def test_invoke_raw_prints_the_whole_answer_as_json(aws: str, tmp_path: Path) -> None:
    from PIL import Image

    usage = {"prompt_tokens": 600, "completion_tokens": 3}
    _queue_answer(aws, [{"generated_text": "Total: 10 EUR", "finish_reason": "length", "usage": usage}])
    page = tmp_path / "page.png"
    Image.new("RGB", (300, 200), "white").save(page)
    result = CliRunner().invoke(cli.endpoint_group, ["invoke", "pagescribe", str(page), "--max-tokens", "3", "--raw"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert (printed["text"], printed["finish_reason"]) == ("Total: 10 EUR", "length")
    assert printed["usage"] == {"prompt_tokens": 600, "completion_tokens": 3, "total_tokens": 603}
    [body] = _bodies_sent()
    assert body["parameters"] == {"max_tokens": 3}
    assert body["inputs"][0][0]["content"] == load_prompt("document").text


def test_delete_removes_endpoint_config_and_model(aws: str) -> None:
    import boto3

    sm = boto3.client("sagemaker", region_name=REGION)
    result = deploy.deploy(_spec(), client=sm, poll_s=0.01, timeout_s=10)
    deploy.delete("pagescribe", client=sm)
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == []
    assert result.model_name.startswith("pagescribe-")


def test_status_of_a_missing_endpoint_is_a_clear_error(aws: str) -> None:
    result = CliRunner().invoke(cli.endpoint_group, ["status", "nope"])
    assert result.exit_code == 1
    assert "ValidationException" in result.output and "nope" in result.output
