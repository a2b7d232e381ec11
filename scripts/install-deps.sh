#!/bin/sh
# Installs the Debian packages faceau builds with, when some are missing (needs root for that).
set -eu
# (libopenblas0-pthread only for test_openblas_sposv, which checks faceau's Sigma against it)
packages="build-essential cmake ninja-build pkg-config libavformat-dev libavcodec-dev
libswscale-dev libavutil-dev libjpeg-dev libpng-dev clang libclang-rt-14-dev valgrind
libopenblas0-pthread"
missing=""
for package in $packages; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $package"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "faceau needs these Debian packages:$missing" >&2
    echo "run as root: apt-get install -y$missing" >&2
    exit 1
fi
echo "installing:$missing"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
