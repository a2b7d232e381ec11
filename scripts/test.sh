#!/bin/sh
# Builds and runs the test suite (unit tests and golden tests against OpenFace's outputs in
# ../shared). BUILD_DIR and CMAKE_ARGS select another build, e.g. the sanitizer one.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
sh scripts/build.sh
export FACEAU_MODELS="${FACEAU_MODELS:-$(cd .. && pwd)/shared/models/openface}"
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j2
