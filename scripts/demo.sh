#!/bin/sh
# Installs what is missing, builds, and runs faceau (its own face tracker) on OpenFace's sample
# video from ../shared into out/demo/.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
sh scripts/build.sh
shared=${FACEAU_SHARED:-../shared}
models=${FACEAU_MODELS:-$shared/models/openface}
./build/faceau -f "$shared/data/videos/default.wmv" -out_dir out/demo --models "$models"
head -c 400 out/demo/default.csv; echo
