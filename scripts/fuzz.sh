#!/bin/sh
# Builds faceau's libFuzzer harnesses (fuzz/, clang with AddressSanitizer + UBSan) and runs each
# for SECONDS (default $FUZZ_SECONDS or 60) on a corpus kept in build-fuzz/corpus/<name>, seeded
# at first from OpenFace's models and the sample media in ../shared (never committed).
# Usage: sh scripts/fuzz.sh [SECONDS] [NAME...]   (NAME: model_text, video, ...; default all)
# Exits non-zero when a harness finds a crash; the input is left in build-fuzz/artifacts/<name>/.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
run_only=0
if [ "${1:-}" = "--run-only" ]; then run_only=1; shift; fi
seconds=${1:-${FUZZ_SECONDS:-60}}
[ $# -gt 0 ] && shift
all_names="model_text model_binary landmark_csv image video model_cache"
names=${*:-$all_names}
shared=${FACEAU_SHARED:-$root/../shared}
models=${FACEAU_MODELS:-$shared/models/openface}
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}

if [ "$run_only" = 0 ]; then
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DFACEAU_FUZZ=ON \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    ninja -C "$build" fuzzers >/dev/null
fi

# seed NAME SELECTOR FILE [BYTES]: the first BYTES of FILE, after a one-byte format selector
# (an empty SELECTOR writes none).
seed() {
    dir="$build/corpus/$1"
    out="$dir/seed-$(basename "$3")-$2"
    [ -f "$out" ] && return 0
    { [ -n "$2" ] && printf "\\$(printf %03o "$2")"; head -c "${4:-1000000}" "$3"; } >"$out"
}

for name in $all_names; do mkdir -p "$build/corpus/$name" "$build/artifacts/$name"; done
seed model_text 0 "$models/model/pdms/In-the-wild_aligned_PDM_68.txt" 4000
seed model_text 1 "$models/AU_predictors/svr_combined/AU_12_static_intensity_comb.dat" 60000
seed model_text 2 "$models/model/pdms/In-the-wild_aligned_PDM_68.txt"
seed model_text 3 "$models/model/tris_68_full.txt"
seed model_text 4 "$models/model/patch_experts/ccnf_patches_0.25_general.txt" 60000
seed model_binary 0 "$models/model/mtcnn_detector/PNet.dat"
seed model_binary 1 "$models/model/mtcnn_detector/PNet.dat"
seed model_binary 2 "$models/model/detection_validation/validator_cnn.txt" 60000
seed landmark_csv "" "$shared/data/reference/openface-2.2-clnf/default/default.csv" 40000
seed image "" "$shared/data/images/sample1.jpg"
seed image "" "$shared/data/images/image_sequence/001.jpg"
seed video "" "$shared/data/videos/default.wmv" 120000
seed video "" "$shared/data/videos/two_faces.mp4" 120000
cache_seeds="$build/corpus/model_cache"
if case " $names " in *" model_cache "*) true;; *) false;; esac && [ ! -d "$cache_seeds/cache" ]; then
    "$build/fuzz_seed_cache" "$models" "$cache_seeds" >/dev/null
fi
template=$(ls -S "$cache_seeds"/cache/*.cache 2>/dev/null | head -1 || true)

status=0
for name in $names; do
    case $name in
        model_cache) max_len=1048576 ;;
        image|video) max_len=131072 ;;
        *) max_len=65536 ;;
    esac
    log="$build/artifacts/$name/last-run.log"
    if FUZZ_CACHE_TEMPLATE="$template" "$build/fuzz_$name" -max_total_time="$seconds" \
        -max_len="$max_len" -rss_limit_mb=3072 -timeout=30 -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/$name/" "$build/corpus/$name" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        coverage=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
        files=$(ls "$build/corpus/$name" | wc -l)
        echo "fuzz_$name: ${seconds} s, $runs runs, $coverage, corpus $files files: no finding"
    else
        echo "fuzz_$name: FINDING (see $log and $build/artifacts/$name/)"
        tail -30 "$log"
        status=1
    fi
done
exit $status
