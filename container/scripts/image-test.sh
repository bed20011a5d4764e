#!/usr/bin/env bash
# Run the built image the way SageMaker does and check the hosting contract from outside the container.
#
#   container/scripts/image-test.sh [IMAGE]   default IMAGE: localhost/pagescribe:<version from pyproject.toml>
#
# 1. synthesizes the tiny random-weight model pair and mounts it read-only at /opt/ml/model;
# 2. starts `IMAGE serve` (podman, or docker when its daemon answers) with port 8080 published on loopback;
# 3. checks /ping, a dialog-batch request, streaming and more from outside (image_check.py);
# 4. checks that PID 1 is the server itself, then sends SIGTERM and expects exit status 0 within the grace period.
#
# Environment: PYTHON (the project's .venv python: synthesizes the model and runs the checks), STORAGE_DRIVER (vfs),
# RUN_ARGS (extra arguments for `podman run`), KEEP=1 (leave the container and work directory for a look).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -n 1)
image=${1:-localhost/pagescribe:$version}
python=${PYTHON:-$repo/.venv/bin/python}
name=pagescribe-image-test-$$
grace_s=30  # SageMaker sends SIGKILL 30 s after SIGTERM

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    engine=(docker)
elif command -v podman >/dev/null; then
    engine=(podman --storage-driver "${STORAGE_DRIVER:-vfs}")
else
    echo "image-test needs podman or a running Docker daemon (make image-tools installs podman)" >&2
    exit 1
fi
# Default limits above this machine's hard limits make the OCI runtime fail (setrlimit EPERM); these suffice.
read -r -a run_args <<< "${RUN_ARGS:---ulimit nofile=8192:8192 --ulimit nproc=8192:8192}"
if [[ ${engine[0]} == podman ]] && ! "${engine[@]}" run --rm "${run_args[@]}" "$image" true >/dev/null 2>&1; then
    # Debian 12's crun refuses hosts with hybrid cgroup hierarchies; runc copes with them
    command -v runc >/dev/null && engine+=(--runtime runc)
fi

work=$(mktemp -d "${TMPDIR:-/var/tmp}/pagescribe-image-test.XXXXXX")
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    if [[ ${KEEP:-0} == 1 ]]; then
        echo "kept container $name and $work"
        return
    fi
    "${engine[@]}" rm --force "$name" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

start=$SECONDS
"$python" -m pagescribe.cli model synth --preset tiny --out "$work/model" >/dev/null
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${engine[@]}" image inspect "$image" > "$work/inspect.json"

# Anything but `serve` runs as a command (the entrypoint execs it): which ggml CPU variant does this machine get?
cpu=$("${engine[@]}" run --rm "${run_args[@]}" "$image" python -c '
import glob, os, llama_cpp
libs = glob.glob(os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libggml-cpu-*.so"))
llama_cpp.llama_backend_init()
print(len(libs), llama_cpp.llama_print_system_info().decode().strip())')
if (( ${cpu%% *} >= 10 )); then
    echo "ok   CPU backends: ${cpu%% *} variants in the image; loaded here: ${cpu#* }"
else
    echo "FAIL CPU backends: expected every x86-64 variant, found: $cpu"
    exit 1
fi

echo "starting $image serve (model $work/model -> /opt/ml/model:ro, 127.0.0.1:$port -> 8080)"
"${engine[@]}" run --detach --name "$name" "${run_args[@]}" \
    --publish "127.0.0.1:$port:8080" --volume "$work/model:/opt/ml/model:ro" "$image" serve >/dev/null

status=0
"$python" "$repo/container/scripts/image_check.py" "http://127.0.0.1:$port" --inspect "$work/inspect.json" \
    || status=1

pid1=$("${engine[@]}" exec "$name" cat /proc/1/cmdline | tr '\0' ' ')
if [[ $pid1 == *"pagescribe serve"* ]]; then
    echo "ok   PID 1 is the server: $pid1"
else
    echo "FAIL PID 1 is not the server: $pid1"
    status=1
fi
if [[ ${engine[0]} == podman ]] && "${engine[@]}" healthcheck run "$name" >/dev/null 2>&1; then
    echo "ok   HEALTHCHECK reports healthy"
elif "${engine[@]}" exec "$name" /opt/program/healthcheck; then
    echo "ok   /opt/program/healthcheck reports healthy"
else
    echo "FAIL the health check reports unhealthy"
    status=1
fi

term_start=$SECONDS
"${engine[@]}" kill --signal TERM "$name" >/dev/null
exit_code=$(timeout "$grace_s" "${engine[@]}" wait "$name" || echo "still running after ${grace_s} s")
if [[ $exit_code == 0 ]]; then
    echo "ok   SIGTERM: exit status 0 after $((SECONDS - term_start)) s"
else
    echo "FAIL SIGTERM: exit status $exit_code"
    status=1
fi
if (( status != 0 )); then
    echo "--- container log (last 40 lines)"
    "${engine[@]}" logs "$name" 2>&1 | tail -n 40
fi
echo "image-test $( ((status == 0)) && echo passed || echo FAILED ) in $((SECONDS - start)) s"
exit "$status"
