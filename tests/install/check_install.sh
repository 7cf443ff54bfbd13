#!/usr/bin/env bash
# Installs libdistdb into a scratch root, then builds and runs a separate host
# project (examples/standalone) that finds it only through pkg-config.
#   check_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build_dir=$1
source_dir=$2
scratch=$(mktemp -d "${TMPDIR:-/tmp}/distdb-install.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

meson install -C "$build_dir" --destdir "$scratch/root" --no-rebuild --quiet
pc=$(find "$scratch/root" -name distdb.pc | head -n 1)
[[ -n "$pc" ]] || { echo "no distdb.pc installed" >&2; exit 1; }
[[ -f "$(dirname "$pc")/../../include/distdb/distdb.hpp" || -n "$(find "$scratch/root" -path '*/include/distdb/distdb.hpp')" ]] \
  || { echo "public headers not installed" >&2; exit 1; }
libdir=$(dirname "$(dirname "$pc")")

export PKG_CONFIG_PATH="$(dirname "$pc")"
meson setup "$scratch/host-build" "$source_dir/examples/standalone" >/dev/null
ninja -C "$scratch/host-build" >/dev/null
out=$(LD_LIBRARY_PATH="$libdir" "$scratch/host-build/host_app" "$scratch")
echo "$out"
[[ "$out" == "answer=42" ]]
