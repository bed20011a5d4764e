"""`pagescribe image push`: the ECR API calls against moto's server, the container tool's command line with a stub.

The layer upload itself needs a real registry; here a stand-in pusher records the image in moto's ECR the way a
finished push would (PutImage), so the CLI's output is what ECR then reports.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pagescribe import __version__
from pagescribe.aws import image
from pagescribe.cli import image as image_cli
from pagescribe.errors import InvalidRequest
from servers import use_moto

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


@pytest.fixture
def ecr(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A boto3 ECR client on the moto server; every client the CLI makes goes there too."""
    import boto3
    import requests

    use_moto(monkeypatch, moto_url, REGION)
    yield boto3.client("ecr", region_name=REGION)
    requests.post(f"{moto_url}/moto-api/reset", timeout=10)


DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI = "application/vnd.oci.image.manifest.v1+json"


class RecordingPusher:
    """Stands in for docker/buildah push: remembers its arguments and records the image in (moto's) ECR."""

    def __init__(self, client: Any, media_type: str = DOCKER_V2) -> None:
        self.client = client
        self.calls: list[tuple[str, str, image.RegistryLogin]] = []
        self.manifest = json.dumps({"schemaVersion": 2, "mediaType": media_type})

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest.encode()).hexdigest()

    def __call__(self, source: str, destination: str, login: image.RegistryLogin) -> None:
        self.calls.append((source, destination, login))
        repository_uri, tag = destination.rsplit(":", 1)
        self.client.put_image(
            repositoryName=repository_uri.split("/", 1)[1],
            imageManifest=self.manifest,
            imageTag=tag,
            imageDigest=self.digest,
        )


def _run_cli(args: list[str], pusher: RecordingPusher, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(
        image, "push_with_tool", lambda source, destination, login, **_: pusher(source, destination, login)
    )
    return CliRunner().invoke(image_cli.image_group, ["push", *args])


def test_push_creates_the_repository_and_prints_the_digest_ecr_holds(ecr: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    pusher = RecordingPusher(ecr)

    result = _run_cli(["--repository", "pagescribe", "--region", REGION, "--create"], pusher, monkeypatch)

    assert result.exit_code == 0, result.output
    destination = f"{REGISTRY}/pagescribe:{__version__}"
    assert result.output.splitlines() == [
        "created repository pagescribe",
        f"pushed {destination}",
        f"digest: {pusher.digest}",
        f"pinned: {REGISTRY}/pagescribe@{pusher.digest} (CDK context image_digest={pusher.digest})",
    ]
    [(source, pushed_to, login)] = pusher.calls
    assert (source, pushed_to) == (image.DEFAULT_SOURCE, destination)
    # the login is the one GetAuthorizationToken hands out for this account's registry
    assert login.registry == REGISTRY
    assert (login.username, login.password) == ("AWS", f"{ACCOUNT}-auth-token")
    repo = ecr.describe_repositories(repositoryNames=["pagescribe"])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["encryptionConfiguration"]["encryptionType"] == "KMS"


def test_push_to_an_existing_repository_with_a_chosen_tag_and_image(ecr: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ecr.create_repository(repositoryName="team/pagescribe", imageTagMutability="MUTABLE")
    pusher = RecordingPusher(ecr)

    args = ["--repository", "team/pagescribe", "--tag", "2024-06-rc1", "--image", "localhost/pagescribe:dev"]
    result = _run_cli(args, pusher, monkeypatch)

    assert result.exit_code == 0, result.output
    assert "created repository" not in result.output
    assert f"pushed {REGISTRY}/team/pagescribe:2024-06-rc1" in result.output
    assert pusher.calls[0][0] == "localhost/pagescribe:dev"


def test_missing_repository_is_an_error_without_create(ecr: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    pusher = RecordingPusher(ecr)

    result = _run_cli(["--repository", "nowhere"], pusher, monkeypatch)

    assert result.exit_code == 1
    assert "ECR repository 'nowhere' does not exist" in result.output
    assert "--create" in result.output
    assert pusher.calls == []


def test_a_tag_already_in_an_immutable_repository_is_refused_before_uploading(
    ecr: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = RecordingPusher(ecr)
    assert _run_cli(["--repository", "pagescribe", "--create", "--tag", "1.0"], first, monkeypatch).exit_code == 0
    second = RecordingPusher(ecr)

    result = _run_cli(["--repository", "pagescribe", "--tag", "1.0"], second, monkeypatch)

    assert result.exit_code == 1
    assert "already exists" in result.output and "immutable" in result.output
    assert second.calls == []


def test_an_oci_manifest_sagemaker_would_refuse_is_an_error_naming_the_fix(
    ecr: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BuildKit provenance or Docker's containerd store push OCI manifests; CreateModel rejects them."""
    pusher = RecordingPusher(ecr, media_type=OCI)

    result = _run_cli(["--repository", "pagescribe", "--create", "--tag", "oci-1"], pusher, monkeypatch)

    assert result.exit_code == 1
    assert f"{REGISTRY}/pagescribe:oci-1 was stored as {OCI}, which SageMaker refuses" in result.output
    assert DOCKER_V2 in result.output
    assert "--provenance=false" in result.output and "make image" in result.output
    assert "pinned:" not in result.output  # no digest to deploy is offered


def test_a_push_that_leaves_nothing_in_ecr_is_reported(ecr: Any) -> None:
    ecr.create_repository(repositoryName="pagescribe")

    with pytest.raises(image.ImagePushError, match="ECR has no image tagged"):
        image.push_image("src", repository="pagescribe", tag="1.0", client=ecr, pusher=lambda *_: None)


@pytest.mark.parametrize("tag", ["", "a:b", "x@sha256:00", "has space", ".hidden", "x" * 129])
def test_unusable_tags_are_refused(ecr: Any, tag: str) -> None:
    with pytest.raises(InvalidRequest):
        image.push_image("src", repository="pagescribe", tag=tag, client=ecr, pusher=lambda *_: None, create=True)


def _stub_tool(bin_dir: Path, name: str, log: Path) -> None:
    """A fake container tool: logs its argv and the auth file it was given (or docker's --config dir)."""
    script = bin_dir / name
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> {log}\n'
        'prev=""\n'
        'for arg in "$@"; do\n'
        f'  if [ "$prev" = --authfile ]; then cat "$arg" >> {log}; echo >> {log}; stat -c %a "$arg" >> {log}; fi\n'
        f'  if [ "$prev" = --config ]; then cat "$arg/config.json" >> {log}; echo >> {log}; fi\n'
        '  prev="$arg"\n'
        "done\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


LOGIN = image.RegistryLogin(registry=REGISTRY, username="AWS", password="s3cret-token")


def _expected_auth() -> dict[str, Any]:
    return {"auths": {REGISTRY: {"auth": base64.b64encode(b"AWS:s3cret-token").decode()}}}


def test_buildah_push_gets_the_login_in_a_private_file_not_on_its_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "calls.log"
    _stub_tool(tmp_path, "buildah", log)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    image.push_with_tool("localhost/pagescribe:0.1.0", f"{REGISTRY}/p:1", LOGIN, tool="buildah", storage_driver="vfs")

    argv, auth, mode = log.read_text().splitlines()
    # --format v2s2: a Docker v2 manifest, the only kind SageMaker accepts, whatever the local image is stored as
    assert argv.startswith("--storage-driver vfs push --format v2s2 --authfile ")
    assert argv.endswith(f" localhost/pagescribe:0.1.0 docker://{REGISTRY}/p:1")
    assert "s3cret" not in argv
    assert json.loads(auth) == _expected_auth()
    assert mode == "600"
    authfile = Path(argv.split("--authfile ")[1].split(" ")[0])
    assert not authfile.parent.exists()  # the login does not outlive the push


def test_docker_push_tags_then_pushes_with_a_private_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "calls.log"
    _stub_tool(tmp_path, "docker", log)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    image.push_with_tool("pagescribe:0.1.0", f"{REGISTRY}/p:1", LOGIN, tool="docker")

    tag_line, push_line, auth = log.read_text().splitlines()
    assert tag_line == f"tag pagescribe:0.1.0 {REGISTRY}/p:1"
    assert push_line.startswith("--config ") and push_line.endswith(f" push {REGISTRY}/p:1")
    assert json.loads(auth) == _expected_auth()


def test_a_failing_tool_is_an_image_push_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing = tmp_path / "podman"
    failing.write_text("#!/bin/sh\nexit 125\n")
    failing.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    with pytest.raises(image.ImagePushError, match="exit status 125"):
        image.push_with_tool("src", f"{REGISTRY}/p:1", LOGIN, tool="podman")


def test_login_is_kept_out_of_the_repr() -> None:
    assert "s3cret" not in repr(LOGIN)
