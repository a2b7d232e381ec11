#!/bin/sh
# Installs what is missing, builds, and runs faceau on OpenFace's sample video (from ../shared,
# with OpenFace's own landmarks) into out/demo/.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
sh scripts/build.sh
shared=${FACEAU_SHARED:-../shared}
models=${FACEAU_MODELS:-$shared/models/openface}
./build/faceau -f "$shared/data/videos/default.wmv" \
    --landmarks-from "$shared/data/reference/openface-2.2-clnf/default/default.csv" \
    -out_dir out/demo --models "$models"
head -c 400 out/demo/default.csv; echo
