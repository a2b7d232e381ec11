#!/bin/sh
# Configures and builds faceau into build/ (BUILD_DIR, CMAKE_ARGS override).
set -eu
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} >/dev/null
# Quiet when it works; the compiler's messages when it does not.
ninja -C "$build_dir" >"$build_dir/build.log" 2>&1 || { cat "$build_dir/build.log"; exit 1; }
