#!/usr/bin/env bash
# Build llama-cpp-python (the version pinned in the lock file) into a virtualenv, portable across x86-64 CPUs.
#
# Runs inside the image's builder stage:  build-llama-cpp-python.sh LOCK_FILE VENV
#
# ggml is built with every CPU backend variant (x64, sse42, ..., haswell, skylakex, icelake, sapphirerapids, zen4)
# as separate libggml-cpu-*.so files; at start-up ggml scores each against CPUID and loads the best one. So one
# image runs on ml.c5 (Skylake/Cascade Lake), ml.c6i (Ice Lake) and ml.c7i (Sapphire Rapids, AMX) alike, and
# nothing is built for the build machine's CPU (GGML_NATIVE=OFF; never -march=native).
set -euo pipefail

lock=$1
venv=$2
build_dir=${LLAMA_BUILD_DIR:-/tmp/llama-build}

# llama-cpp-python installs only the targets it names (llama, ggml, ggml-base, mtmd, ...), not the CPU variants,
# so they are copied beside them from the build tree; GGML_BACKEND_DIR tells ggml to look for them there (by
# default it looks next to the executable, i.e. the Python interpreter, and in the working directory).
lib_dir="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("platlib"))')/llama_cpp/lib"
export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DGGML_BACKEND_DIR=$lib_dir \
-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"

version=$(sed -n 's/^llama-cpp-python==\([^ ;]*\).*/\1/p' "$lock")
[[ -n $version ]] || { echo "no llama-cpp-python pin in $lock" >&2; exit 1; }
echo "building llama-cpp-python $version with CMAKE_ARGS=$CMAKE_ARGS"

"$venv/bin/pip" install --no-deps --no-binary llama-cpp-python \
    --config-settings "build-dir=$build_dir" "llama-cpp-python==$version"

mapfile -t variants < <(find "$build_dir" -name 'libggml-cpu-*.so' -type f)
if (( ${#variants[@]} < 2 )); then
    echo "expected several libggml-cpu-*.so CPU variants in $build_dir, found ${#variants[@]}" >&2
    exit 1
fi
install -m 0644 "${variants[@]}" "$lib_dir/"
# the release build carries no debug info, but symbol tables are still ~10% of each library
strip --strip-unneeded "$lib_dir"/*.so
echo "CPU variants in $lib_dir:"
printf '  %s\n' "${variants[@]##*/}"
rm -rf "$build_dir"
