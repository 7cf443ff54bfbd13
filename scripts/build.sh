#!/usr/bin/env bash
# Configures (once) and builds distdb into build/ (or $DISTDB_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${DISTDB_BUILD_DIR:-build}
if [[ ! -f "$build_dir/build.ninja" ]]; then
  meson setup "$build_dir" "$@"
fi
ninja -C "$build_dir"
