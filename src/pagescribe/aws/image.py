"""Push the serving image to Amazon ECR: find (or create) the repository, log in with boto3, push, confirm.

Two halves, kept apart on purpose:

* the AWS API calls (``DescribeRepositories``, ``CreateRepository``, ``GetAuthorizationToken``,
  ``DescribeImages``) go through a boto3 ECR client, so they are tested against moto;
* the layer upload speaks the registry's HTTP API, which only a container tool implements: :func:`push_with_tool`
  runs docker, buildah or podman with the ECR login written to a private auth file, never on a command line.
  It cannot run without a real registry, so :func:`push_image` takes it as a parameter (tests pass a stand-in).

SageMaker's CreateModel accepts only Docker v2 image manifests and refuses OCI ones ("Unsupported manifest media
type application/vnd.oci.image.manifest.v1+json"), which Docker's BuildKit (provenance attestations) and its
containerd image store produce. So buildah and podman push with ``--format v2s2``, and after every push the
manifest type ECR holds is checked: an image SageMaker would refuse is reported here, not at deploy time.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pagescribe import __version__
from pagescribe.errors import InvalidRequest, PagescribeError

#: What ``make image`` builds.
DEFAULT_SOURCE = f"localhost/pagescribe:{__version__}"
TOOLS = ("docker", "buildah", "podman")
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
#: The manifest media types SageMaker hosting accepts for a model image.
SAGEMAKER_MANIFEST_TYPES = frozenset({DOCKER_MANIFEST})
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # the OCI distribution spec's tag grammar


class ImagePushError(PagescribeError):
    """ECR refused a call, the repository or tag is not usable, or the container tool failed."""


@dataclass(frozen=True, slots=True)
class RegistryLogin:
    """Credentials for one registry, as ``GetAuthorizationToken`` hands them out (valid for 12 hours)."""

    registry: str
    username: str
    password: str = field(repr=False)
    expires_at: datetime | None = None

    def auth_config(self) -> dict[str, Any]:
        """The login as a Docker ``config.json`` / containers ``auth.json`` document."""
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return {"auths": {self.registry: {"auth": token}}}


@dataclass(frozen=True, slots=True)
class Repository:
    """An ECR repository: its name, its URI (``REGISTRY/NAME``), whether tags are immutable, whether we made it."""

    name: str
    uri: str
    immutable_tags: bool
    created: bool = False


@dataclass(frozen=True, slots=True)
class PushResult:
    """Where the image went: the tagged URI, the digest ECR holds for it, and the URI pinned by that digest."""

    image_uri: str
    digest: str
    repository_created: bool

    @property
    def pinned_uri(self) -> str:
        """``REGISTRY/NAME@sha256:...``: what a SageMaker model should name (the CDK app's ``image_digest``)."""
        return f"{self.image_uri.rsplit(':', 1)[0]}@{self.digest}"


#: ``pusher(source, destination, login)``: uploads the local image ``source`` as ``destination``.
Pusher = Callable[[str, str, RegistryLogin], None]


def ensure_repository(name: str, *, client: Any, create: bool = False) -> Repository:
    """The repository ``name``; with ``create``, made if missing (scan on push, immutable tags, KMS)."""
    from botocore.exceptions import ClientError

    try:
        found = client.describe_repositories(repositoryNames=[name])["repositories"][0]
        return _repository(found, created=False)
    except ClientError as exc:
        if _code(exc) != "RepositoryNotFoundException":
            raise ImagePushError(_message(exc)) from exc
        if not create:
            raise ImagePushError(
                f"ECR repository {name!r} does not exist: create it with --create or deploy the CDK stack first",
                param="repository",
            ) from exc
    made = _call(
        client.create_repository,
        repositoryName=name,
        imageTagMutability="IMMUTABLE",
        imageScanningConfiguration={"scanOnPush": True},
        encryptionConfiguration={"encryptionType": "KMS"},
    )
    return _repository(made["repository"], created=True)


def ecr_login(*, client: Any) -> RegistryLogin:
    """Log in to the account's registry in the client's region with ``GetAuthorizationToken``."""
    data = _call(client.get_authorization_token)["authorizationData"][0]
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    registry = data["proxyEndpoint"].removeprefix("https://").removeprefix("http://").rstrip("/")
    return RegistryLogin(registry=registry, username=username, password=password, expires_at=data.get("expiresAt"))


def image_details(repository: str, tag: str, *, client: Any) -> dict[str, Any] | None:
    """ECR's ``imageDetails`` of ``repository:tag`` (digest, manifest media type, ...), or None when no image has
    that tag."""
    from botocore.exceptions import ClientError

    try:
        details = client.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
    except ClientError as exc:
        if _code(exc) == "ImageNotFoundException":
            return None
        raise ImagePushError(_message(exc)) from exc
    return dict(details[0]) if details else None


def image_digest(repository: str, tag: str, *, client: Any) -> str | None:
    """The digest of ``repository:tag`` in ECR, or None when no image has that tag."""
    details = image_details(repository, tag, client=client)
    return str(details["imageDigest"]) if details else None


def check_sagemaker_manifest(image_uri: str, media_type: str | None) -> None:
    """Refuse an image whose manifest SageMaker's CreateModel would reject, saying how to build one it accepts."""
    if media_type is None or media_type in SAGEMAKER_MANIFEST_TYPES:
        return
    raise ImagePushError(
        f"{image_uri} was stored as {media_type}, which SageMaker refuses (it needs {DOCKER_MANIFEST}). "
        "Build with `make image` (buildah --format docker) or `docker buildx build --provenance=false "
        "--output type=docker`, then push under a new tag; remove this one with "
        "`aws ecr batch-delete-image --repository-name NAME --image-ids imageTag=TAG`.",
        param="image",
    )


def push_image(
    source: str, *, repository: str, tag: str, client: Any, pusher: Pusher, create: bool = False
) -> PushResult:
    """Push local image ``source`` to ECR as ``repository:tag`` and return what ECR then holds.

    A tag already in an immutable repository is refused before anything is uploaded (ECR would refuse it after);
    an image ECR stored with a manifest SageMaker refuses (OCI) is an error after the push.
    """
    if not _TAG.fullmatch(tag):
        raise InvalidRequest(f"not a valid image tag: {tag!r} (letters, digits, _ . -; at most 128)", param="tag")
    repo = ensure_repository(repository, client=client, create=create)
    if repo.immutable_tags and image_digest(repo.name, tag, client=client) is not None:
        raise ImagePushError(
            f"{repo.uri}:{tag} already exists and the repository's tags are immutable: pick another --tag",
            param="tag",
        )
    destination = f"{repo.uri}:{tag}"
    pusher(source, destination, ecr_login(client=client))
    details = image_details(repo.name, tag, client=client)
    if details is None:
        raise ImagePushError(f"the push finished but ECR has no image tagged {destination}")
    check_sagemaker_manifest(destination, details.get("imageManifestMediaType"))
    return PushResult(image_uri=destination, digest=str(details["imageDigest"]), repository_created=repo.created)


def detect_tool() -> str:
    """docker when its daemon answers, else buildah, else podman (the tool ``make image`` built with)."""
    if shutil.which("docker") and _succeeds(["docker", "info"]):
        return "docker"
    for tool in ("buildah", "podman"):
        if shutil.which(tool):
            return tool
    raise ImagePushError("no container tool to push with: install buildah or podman, or start Docker")


def push_commands(
    tool: str, source: str, destination: str, *, auth_dir: Path, storage_driver: str | None = None
) -> list[list[str]]:
    """The commands that upload ``source`` as ``destination`` with the login kept in ``auth_dir``."""
    if tool == "docker":
        # docker pushes by name, so the image gets the destination's name first; --config holds the login
        return [["docker", "tag", source, destination], ["docker", "--config", str(auth_dir), "push", destination]]
    if tool in ("buildah", "podman"):
        storage = ["--storage-driver", storage_driver] if storage_driver else []
        authfile = str(auth_dir / "config.json")
        # v2s2: a Docker v2 schema 2 manifest whatever the image was built as; SageMaker refuses OCI manifests
        push = ["push", "--format", "v2s2", "--authfile", authfile, source, f"docker://{destination}"]
        return [[tool, *storage, *push]]
    raise InvalidRequest(f"unknown container tool {tool!r}; use one of {', '.join(TOOLS)}", param="tool")


def push_with_tool(
    source: str,
    destination: str,
    login: RegistryLogin,
    *,
    tool: str | None = None,
    storage_driver: str | None = None,
) -> None:
    """Upload ``source`` to the registry as ``destination`` with docker, buildah or podman.

    The login goes into a ``config.json`` readable only by this user, in a directory removed afterwards, so the
    password appears in no process list and no shared Docker config. ``storage_driver`` must match the one the
    image was built with (buildah/podman; ``make image`` uses vfs).
    """
    chosen = tool or detect_tool()
    with tempfile.TemporaryDirectory(prefix="pagescribe-ecr-") as tmp:  # created 0700
        auth_dir = Path(tmp)
        descriptor = os.open(auth_dir / "config.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as auth_file:
            json.dump(login.auth_config(), auth_file)
        for command in push_commands(chosen, source, destination, auth_dir=auth_dir, storage_driver=storage_driver):
            _run(command)


def _run(command: Sequence[str]) -> None:
    try:
        subprocess.run(command, check=True, stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise ImagePushError(f"{command[0]} is not installed") from exc
    except subprocess.CalledProcessError as exc:
        raise ImagePushError(f"{' '.join(command[:3])} ... failed with exit status {exc.returncode}") from exc


def _succeeds(command: Sequence[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _repository(raw: dict[str, Any], *, created: bool) -> Repository:
    return Repository(
        name=raw["repositoryName"],
        uri=raw["repositoryUri"],
        immutable_tags=raw.get("imageTagMutability") == "IMMUTABLE",
        created=created,
    )


def _call(method: Any, **kwargs: Any) -> Any:
    from botocore.exceptions import ClientError

    try:
        return method(**kwargs)
    except ClientError as exc:
        raise ImagePushError(_message(exc)) from exc


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: Any) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', str(exc))}"
