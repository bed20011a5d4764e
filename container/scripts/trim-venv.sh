#!/usr/bin/env bash
# Drop what the image's virtualenv carries but never loads (runs at the end of the builder stage):  trim-venv.sh VENV
#
# * llama.cpp's own `cmake --install` lands beside the package in site-packages/lib and site-packages/include:
#   headers, CMake and pkg-config files and a second copy of every library. Python loads llama_cpp/lib only.
# * Wheels cannot hold symlinks, so each library in llama_cpp/lib comes three times (libllama.so, .so.0,
#   .so.0.5.0); the two short names become links to the versioned file, as a system install would have them.
set -euo pipefail

venv=$1
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("platlib"))')
rm -rf "${site:?}/lib" "${site:?}/include" "${site:?}/bin"

cd "$site/llama_cpp/lib"
for versioned in lib*.so.*.*.*; do
    [[ -f $versioned && ! -L $versioned ]] || continue
    for name in "${versioned%.*.*}" "${versioned%%.so.*}.so"; do  # libX.so.0, libX.so
        if [[ -f $name && ! -L $name ]] && cmp -s "$versioned" "$name"; then
            ln -sf "$versioned" "$name"
        fi
    done
done
ls -l "$site/llama_cpp/lib"
