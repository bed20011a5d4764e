"""The commands the documentation tells a user to run, checked against what the repository and AWS need."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from pagescribe.aws import sizing

REPO = Path(__file__).resolve().parents[2]
# Each document, and the directory its commands are run from.
BUILD_DOCS = {
    "infra/README.md": REPO / "infra",
    "container/README.md": REPO,
    "container/Dockerfile": REPO,
}


def _commands(text: str, program: str) -> list[list[str]]:
    """Every ``program ...`` command in ``text``: continuation lines joined, comment markers dropped, one command
    per ``&&``."""
    joined = re.sub(r"\\\n\s*(#\s*)?", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip().lstrip("#").strip()
        for part in line.split("&&"):
            if not part.strip().startswith(program):
                continue  # prose, or another command
            tokens = shlex.split(part.replace("$(", "(").replace("<", "").replace(">", ""))
            if tokens[: len(program.split())] == program.split():
                found.append(tokens)
    return found


def _builds(text: str) -> list[list[str]]:
    return _commands(text, "docker build") + _commands(text, "docker buildx build")


def _option(tokens: list[str], *names: str) -> str | None:
    for i, token in enumerate(tokens):
        for name in names:
            if token == name:
                return tokens[i + 1]
            if token.startswith(name + "="):
                return token.split("=", 1)[1]
    return None


@pytest.mark.parametrize("document", sorted(BUILD_DOCS))
def test_documented_docker_builds_use_the_repository_root_and_a_docker_manifest(document: str) -> None:
    """The Dockerfile copies src/, pyproject.toml and the lock file, so only the repository root works as context;
    SageMaker refuses OCI manifests, which BuildKit's provenance attestation produces."""
    cwd = BUILD_DOCS[document]
    builds = _builds((REPO / document).read_text())

    assert builds, f"{document} documents no docker build"
    for tokens in builds:
        dockerfile = _option(tokens, "-f", "--file")
        assert dockerfile is not None, tokens
        assert (cwd / dockerfile).resolve() == REPO / "container" / "Dockerfile", tokens
        assert (cwd / tokens[-1]).resolve() == REPO, f"build context {tokens[-1]} is not the repository root"
        assert "--provenance=false" in tokens, tokens
        assert _option(tokens, "--output") == "type=docker", tokens


def test_the_async_invocation_example_passes_the_invocation_timeout() -> None:
    """Without InvocationTimeoutSeconds SageMaker gives a request 900 s, less than the async container's budget."""
    (example,) = _commands((REPO / "infra" / "README.md").read_text(), "aws sagemaker-runtime invoke-endpoint-async")

    timeout = _option(example, "--invocation-timeout-seconds")
    assert timeout == str(sizing.ASYNC_INVOCATION_TIMEOUT_S)
    assert int(timeout) > sizing.async_container(sizing.INSTANCE_SPECS[sizing.DEFAULT_INSTANCE_TYPE]).time_limit_s
