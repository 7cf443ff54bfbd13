#!/usr/bin/env bash
# The node's threads under ThreadSanitizer: a separate build (the tools
# included, no MariaDB, no examples) that runs the unit tests and the suites
# in which real distdb-node processes serve clients and each other over TCP
# on SQLite: e2e (one node, one-shot and pipelined clients, distdb-cli, peer
# links) and cluster-sqlite (three nodes: concurrent clients, kill -9 of the
# coordinator and of a participant, failover, catch-up, rejoin). Every
# report fails the run, also one in a node process whose test would not
# have noticed it.
#
#   scripts/tsan.sh                  build (2 jobs), then unit, e2e, cluster-sqlite
#   DISTDB_TSAN_BUILD_DIR=dir ...    another build directory (default build-tsan)
#   DISTDB_TSAN_JOBS=n ...           compile jobs and parallel tests (default 2)
#
# Reports are written to <build>/tsan-reports/ (one file per process that
# had one) and printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${DISTDB_TSAN_BUILD_DIR:-build-tsan}
jobs=${DISTDB_TSAN_JOBS:-2}

# -O1 with line tables only (-g1 keeps the inlined frames in the reports):
# half the compile time of the default -O2 -g, for the same detection.
# Translations stay as in the main build: the e2e suite checks the
# Portuguese output of distdb-cli and distdb-node.
if [[ ! -d $build ]]; then
  meson setup "$build" -Db_sanitize=thread -Dmariadb=disabled -Dexamples=false \
    -Doptimization=1 -Ddebug=false -Dcpp_args=-g1 >/dev/null
fi

# Only what the three tests need (the node, the shell, the test programs
# and the message catalogs), not the whole tree.
targets=(distdb-node distdb-cli unit_tests e2e_tests cluster_sqlite_tests)
# (grep reads it all: with -q, ninja's SIGPIPE would fail the pipeline.)
if ninja -C "$build" -t targets all | grep '^distdb-gmo:' >/dev/null; then targets+=(distdb-gmo); fi
if ! nice -n 10 meson compile -C "$build" -j "$jobs" "${targets[@]}" >"$build/tsan-build.log" 2>&1; then
  cat "$build/tsan-build.log"
  exit 1
fi

reports="$build/tsan-reports"
[[ $reports == /* ]] || reports="$(pwd)/$reports"
rm -rf "$reports"
mkdir -p "$reports"
# The first report stops the program that hit it. log_path: the node
# processes started by the tests report too, into files, whatever their
# test makes of their exit.
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$reports/report"

status=0
nice -n 10 meson test -C "$build" --no-rebuild --print-errorlogs --num-processes "$jobs" \
  unit e2e cluster-sqlite || status=1

shopt -s nullglob
found=("$reports"/report.*)
if ((${#found[@]} > 0)); then
  for f in "${found[@]}"; do
    echo "--- $f"
    cat "$f"
  done
  echo "thread sanitizer: ${#found[@]} process(es) reported (above; kept in $build/tsan-reports/)"
  exit 1
fi
if ((status != 0)); then
  echo "thread sanitizer: no report, but a test failed"
  exit 1
fi
echo "thread sanitizer: no report (unit, e2e, cluster-sqlite)"
