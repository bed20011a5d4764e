"""The scripts the image's builder stage runs, tried here on small stand-ins for the virtualenv and lock file."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[2] / "container" / "scripts"


def _check_lock() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_lock", SCRIPTS / "check_lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_lock_reports_unpinned_and_mismatched_distributions() -> None:
    check_lock = _check_lock()
    pins = check_lock.read_pins(
        "numpy==2.1.0\n    # via gguf\nPillow==11.0.0\nuvicorn[standard]==0.34.0 ; python_version >= '3'\n"
    )

    assert pins == {"numpy": "2.1.0", "pillow": "11.0.0", "uvicorn": "0.34.0"}
    present = {"numpy": "2.1.0", "pillow": "10.4.0", "left-pad": "1.0", "pip": "24.0", "uvicorn": "0.34.0"}
    assert check_lock.problems(pins, present, ignore=["pip"]) == [
        "left-pad==1.0 is installed but not in the lock file",
        "pillow==10.4.0 is installed but the lock file pins 11.0.0",
    ]
    assert check_lock.problems(pins, {"numpy": "2.1.0"}) == []


def test_check_lock_fails_the_build_on_an_environment_the_lock_does_not_describe(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("pytest==0.0.1\n")  # this interpreter has pytest, at another version, and much else

    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "check_lock.py"), str(lock)], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    assert "the lock file pins 0.0.1" in result.stderr


def _fake_venv(root: Path) -> Path:
    """A virtualenv without pip (fast to make); returns its site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=60)
    relative = Path(sysconfig.get_path("platlib")).relative_to(sysconfig.get_path("data"))
    return root / relative


def test_trim_venv_links_duplicate_libraries_and_drops_the_cmake_install(tmp_path: Path) -> None:
    site = _fake_venv(tmp_path / "venv")
    lib = site / "llama_cpp" / "lib"
    lib.mkdir(parents=True)
    for name in ("libllama.so", "libllama.so.0", "libllama.so.0.5.0"):
        (lib / name).write_bytes(b"llama library")
    (lib / "libggml-cpu-haswell.so").write_bytes(b"cpu variant")
    (lib / "libother.so.1.2.3").write_bytes(b"new")
    (lib / "libother.so").write_bytes(b"a different build: must stay")
    (site / "lib" / "cmake").mkdir(parents=True)
    (site / "include").mkdir()
    (site / "include" / "llama.h").write_text("/* header */")

    subprocess.run([str(SCRIPTS / "trim-venv.sh"), str(tmp_path / "venv")], check=True, capture_output=True, timeout=60)

    assert (lib / "libllama.so").readlink() == Path("libllama.so.0.5.0")
    assert (lib / "libllama.so.0").readlink() == Path("libllama.so.0.5.0")
    assert (lib / "libllama.so").read_bytes() == b"llama library"
    assert not (lib / "libllama.so.0.5.0").is_symlink()
    assert not (lib / "libother.so").is_symlink() and (lib / "libother.so").read_bytes().startswith(b"a different")
    assert (lib / "libggml-cpu-haswell.so").read_bytes() == b"cpu variant"
    assert not (site / "lib").exists() and not (site / "include").exists()


def _stub(bin_dir: Path, name: str, log: Path) -> None:
    """A stand-in for a container tool: appends its argv to ``log``, one call a line, and succeeds."""
    script = bin_dir / name
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\n')
    script.chmod(0o755)


def _build_with(builder: str, tmp_path: Path) -> list[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for tool in ("docker", "buildah"):
        _stub(bin_dir, tool, log)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "BUILDER": builder,
        # a given base image: the buildah path would otherwise debootstrap one
        "BASE_IMAGE": "localhost/base:test",
        "CA_BUNDLE": "",
        "PIP_CERT": "",
    }
    subprocess.run(
        [str(SCRIPTS / "build.sh"), "localhost/pagescribe:test"], check=True, capture_output=True, env=env, timeout=60
    )
    return log.read_text().splitlines()


def test_docker_builds_a_docker_v2_image_sagemaker_accepts(tmp_path: Path) -> None:
    """BuildKit's provenance attestation and Docker's containerd store give OCI manifests; SageMaker refuses them."""
    build, *_ = _build_with("docker", tmp_path)

    assert build.startswith("buildx build ")
    args = build.split()
    for flag in ("--provenance=false", "--sbom=false"):
        assert flag in args
    assert args[args.index("--output") + 1] == "type=docker"
    assert args[args.index("--platform") + 1] == "linux/amd64"
    assert args[args.index("--file") + 1] == "container/Dockerfile"
    assert args[-1] == "."  # run from the repository root: the build context is the repository


def test_buildah_builds_docker_format(tmp_path: Path) -> None:
    (build, *_) = [line for line in _build_with("buildah", tmp_path) if " bud " in f" {line} "]

    args = build.split()
    assert args[args.index("--format") + 1] == "docker"
    assert args[-1] == "."
