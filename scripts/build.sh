#!/bin/sh
# Configures and builds faceau into build/ (BUILD_DIR, CMAKE_ARGS override).
set -eu
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} >/dev/null
ninja -C "$build_dir" >/dev/null
