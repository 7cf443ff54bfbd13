#!/usr/bin/env bash
# The protocol core, the storage layer and the unit tests under
# AddressSanitizer and UndefinedBehaviorSanitizer: a separate build (no
# tools, no MariaDB) whose every report fails the run.
#
#   scripts/sanitize.sh              unit, storage and simulator tests
#   DISTDB_SANITIZE_SEEDS=1000 ...   more simulator seeds (default 200: the
#                                    sanitizers make each run ~10x slower)
set -euo pipefail
cd "$(dirname "$0")/.."

build=${DISTDB_SANITIZE_BUILD_DIR:-build-sanitize}
seeds=${DISTDB_SANITIZE_SEEDS:-200}

if [[ ! -d $build ]]; then
  meson setup "$build" -Db_sanitize=address,undefined -Dtools=false -Dexamples=false \
    -Dmariadb=disabled -Dnls=disabled >/dev/null
fi
ninja -C "$build" >/dev/null

# Any report stops the program with a failure: a test cannot pass over one.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

meson test -C "$build" --no-rebuild --print-errorlogs unit storage-sqlite sim-scenarios
"$build/tests/sim/distdb-sim" --seeds "$seeds" --from 1
echo "sanitizers: no report (unit, storage-sqlite, sim-scenarios, $seeds simulator seeds)"
