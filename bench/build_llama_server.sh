#!/usr/bin/env bash
# Build llama.cpp's own llama-server from the llama.cpp source vendored in the pinned llama-cpp-python sdist,
# into a cache directory outside the repository (default ~/.cache/pagescribe/llama-server). Used by bench/.
# Usage: build_llama_server.sh [TARGET] (default llama-server; bench/run.py --limits also builds llama-batched-bench).
# Same compiler flags as a default llama-cpp-python wheel build here (native CPU), so the comparison is fair.
set -euo pipefail
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
CACHE="${PAGESCRIBE_LLAMA_SERVER_CACHE:-$HOME/.cache/pagescribe/llama-server}"
TARGET="${1:-llama-server}"
BIN="$CACHE/build/bin/$TARGET"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
mkdir -p "$CACHE"
PYTHON="${PYTHON:-python3}"
if [ ! -d "$CACHE/src" ]; then
    "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$CACHE/sdist" >&2
    mkdir -p "$CACHE/src"
    tar -xzf "$CACHE/sdist/llama_cpp_python-$VERSION.tar.gz" -C "$CACHE/src" --strip-components=1
fi
GEN=()
command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
cmake -S "$CACHE/src/vendor/llama.cpp" -B "$CACHE/build" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF >&2
cmake --build "$CACHE/build" --config Release -j"$(nproc)" --target "$TARGET" >&2
echo "$BIN"
