"""The systems a benchmark compares, each started the same way: same model files, threads and context.

- ``pagescribe``: `pagescribe serve` (continuous batching, prefix and image caches)
- ``pagescribe@REV``: the same server as committed at git revision REV (a before/after comparison in one run),
  exported from this repository into the cache and run with the same virtualenv
- ``llama-server``: llama.cpp's own server, built from the source vendored in the pinned llama-cpp-python
  (bench/build_llama_server.sh)
- ``llama-cpp-python``: llama-cpp-python's OpenAI server, in its own virtualenv (~/.cache/pagescribe/bench-venv)

All run with flash attention on: pagescribe's default on CPU ("auto"), llama-server's "auto" too; llama-cpp-python
defaults it off, so it is turned on for a like-for-like comparison.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("PAGESCRIBE_BENCH_CACHE", Path.home() / ".cache" / "pagescribe"))
BENCH_VENV = CACHE / "bench-venv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Server:
    name: str
    command: list[str]
    ready_path: str
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    peak_mb: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout_s: float = 300) -> float:
        """Start and wait until ready; returns seconds to ready."""
        started = time.monotonic()
        log = open(CACHE / f"bench-{self.name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
        )
        while time.monotonic() - started < timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {log.name}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{self.name} not ready after {timeout_s} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.peak_mb = peak_rss_mb(self.process.pid)
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def pagescribe_server(
    text: Path, mmproj: Path, *, threads: int, slots: int, ctx: int, revision: str | None = None
) -> Server:
    port = free_port()
    command = [
        sys.executable, "-m", "pagescribe.cli", "serve", "--model", str(text), "--mmproj", str(mmproj),
        "--host", "127.0.0.1", "--port", str(port), "--threads", str(threads), "--slots", str(slots),
        "--ctx", str(ctx),
    ]
    env = {"PAGESCRIBE_QUEUE_SIZE": "64", "PAGESCRIBE_LOG_LEVEL": "warning"}
    if revision is None:
        return Server("pagescribe", command, "/ping", env=env, port=port)
    env["PYTHONPATH"] = str(source_at(revision))
    return Server(f"pagescribe@{revision}", command, "/ping", env=env, port=port)


def source_at(revision: str) -> Path:
    """The package source as committed at ``revision``, exported once into the cache (``git archive``)."""
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{revision}^{{commit}}"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    where = CACHE / "revisions" / sha
    if not (where / "src" / "pagescribe").is_dir():
        where.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", sha, "src"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(where)], input=archive.stdout, check=True)
    return where / "src"


def server_for(name: str, text: Path, mmproj: Path, *, threads: int, slots: int, ctx: int) -> Server:
    """The server a target name stands for: a key of ``SERVERS``, or ``pagescribe@REV``."""
    if name.startswith("pagescribe@"):
        revision = name.partition("@")[2]
        return pagescribe_server(text, mmproj, threads=threads, slots=slots, ctx=ctx, revision=revision)
    return SERVERS[name](text, mmproj, threads=threads, slots=slots, ctx=ctx)


def llama_server(text: Path, mmproj: Path, *, threads: int, slots: int, ctx: int) -> Server:
    binary = subprocess.run(
        ["bash", str(ROOT / "bench" / "build_llama_server.sh")], check=True, capture_output=True, text=True
    ).stdout.strip().splitlines()[-1]
    port = free_port()
    command = [
        binary, "-m", str(text), "--mmproj", str(mmproj), "--host", "127.0.0.1", "--port", str(port),
        "-t", str(threads), "-tb", str(threads), "-np", str(slots), "-c", str(ctx * slots), "--no-webui",
        "-fa", "on",
    ]
    return Server("llama-server", command, "/health", port=port)


def llama_cpp_python_server(text: Path, mmproj: Path, *, threads: int, slots: int, ctx: int) -> Server:
    # One Llama behind a lock: it serves one request at a time whatever the client does. By default a new request
    # cuts the stream in progress (interrupt_requests); turned off, requests wait their turn instead.
    del slots
    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run(
            [str(BENCH_VENV / "bin" / "pip"), "install", "-q", "llama-cpp-python[server]==0.3.36"], check=True
        )
    port = free_port()
    command = [
        str(python), "-m", "llama_cpp.server", "--model", str(text), "--clip_model_path", str(mmproj),
        "--chat_format", "llava-1-5", "--n_threads", str(threads), "--n_threads_batch", str(threads),
        "--n_ctx", str(ctx), "--flash_attn", "true", "--interrupt_requests", "false",
        "--host", "127.0.0.1", "--port", str(port),
    ]
    return Server("llama-cpp-python", command, "/v1/models", port=port)


SERVERS = {
    "pagescribe": pagescribe_server,
    "llama-server": llama_server,
    "llama-cpp-python": llama_cpp_python_server,
}
