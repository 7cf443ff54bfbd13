#!/usr/bin/env bash
# How long a full copy of the data takes between two members, and how much
# memory each end needs for it (docs/performance.md, "Full copies").
#
# Starts three throwaway MariaDB servers and a three-node cluster that keeps
# 10 log entries, creates a table, stops node 1, writes ROWS rows of about
# PAD bytes through the coordinator (in batches of 5,000: a write must be
# prepared on a member within timeouts.heartbeat_timeout_ms), restarts node 1
# and waits until it holds every row: it gets them as a full copy. Prints
# the copy's size, the time from the restart until node 1 holds the data,
# and the peak resident memory (VmHWM) of node 1 and of the coordinator.
# Everything it starts is stopped and removed at the end.
#
#   scripts/full-copy-bench.sh                  300,000 rows of 1 KB (about 300 MB)
#   scripts/full-copy-bench.sh --rows 20000     a smaller copy
#
# Options: --rows N [300000], --pad BYTES [1000], --db-port P [29306]
# (server N on P+N), --node-port P [29400] (node N on P+N).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

rows=300000
pad=1000
db_port=29306
node_port=29400
while [[ $# -gt 0 ]]; do
  case $1 in
    --rows) rows=$2; shift ;;
    --pad) pad=$2; shift ;;
    --db-port) db_port=$2; shift ;;
    --node-port) node_port=$2; shift ;;
    *) echo "usage: $0 [--rows N] [--pad BYTES] [--db-port P] [--node-port P]" >&2; exit 2 ;;
  esac
  shift
done

log() { echo "full-copy-bench: $*" >&2; }
die() { log "$*"; exit 1; }
now_ms() { date +%s%3N; }

export DISTDB_BUILD_DIR=${DISTDB_BUILD_DIR:-build}
scripts/build.sh >/dev/null
bin="$root/$DISTDB_BUILD_DIR/tools"
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/distdb-full-copy.XXXXXX")
export DISTDB_SANDBOX_DIR="$run_dir/mariadb"
export DISTDB_SANDBOX_BASE_PORT=$db_port
declare -A pid=()

cleanup() {
  local status=$? p
  trap - EXIT INT TERM
  for p in "${pid[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pid[@]}"; do wait "$p" 2>/dev/null || true; done
  scripts/mariadb-sandbox.sh stop-all || true
  if [[ $status -ne 0 ]]; then
    log "failed (status $status); node logs:"
    tail -n 15 "$run_dir"/node*.log >&2 2>/dev/null || true
  fi
  rm -rf "$run_dir"
  exit "$status"
}
trap cleanup EXIT INT TERM

db_of() { echo $((db_port + $1 - 1)); }
port_of() { echo $((node_port + $1)); }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
sql() { mariadb -uroot -h127.0.0.1 -P"$(db_of "$1")" -N -e "$2"; }
through() { "$bin/distdb-cli" -h 127.0.0.1 -P "$(port_of "$1")" -e "$2" >/dev/null; }
peak_kb() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; }

for i in 0 1 2; do scripts/mariadb-sandbox.sh start "$i"; done
# shellcheck source=lib/node-config.sh
source "$root/scripts/lib/node-config.sh"
for id in 1 2 3; do
  write_node_config "$run_dir/config$id.json" "$id" \
    "\"db_config\": {\"user\": \"root\", \"password\": \"\", \"host\": \"127.0.0.1\", \"port\": $(db_of "$id"), \"database\": \"distdb_full_copy\"}, \"storage\": {\"backend\": \"mariadb\", \"spool_dir\": \"$run_dir\"}" \
    '{"client_auth": "off"}'
  # Keep 10 entries: node 1 comes back through a full copy.
  sed -i 's/^  "security"/  "limits": {"log_retention_entries": 10},\n  "security"/' "$run_dir/config$id.json"
done
start() {
  local deadline=$((SECONDS + 30))
  "$bin/distdb-node" "$run_dir/config$1.json" >>"$run_dir/node$1.log" 2>&1 &
  pid[$1]=$!
  until port_open "$(port_of "$1")"; do
    kill -0 "${pid[$1]}" 2>/dev/null || die "node $1 exited at start"
    ((SECONDS < deadline)) || die "node $1 does not listen"
    sleep 0.05
  done
}
for id in 1 2 3; do start "$id"; done

deadline=$((SECONDS + 60))
until through 3 "CREATE TABLE big (id INT PRIMARY KEY, pad MEDIUMTEXT)" 2>/dev/null; do
  ((SECONDS < deadline)) || die "node 3 did not become the coordinator"
  sleep 0.2
done
for id in 1 2; do
  until [[ $(sql "$id" "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'distdb_full_copy' AND TABLE_NAME = 'big'") == 1 ]]; do
    sleep 0.1
  done
done
kill -TERM "${pid[1]}"
wait "${pid[1]}" || true
unset 'pid[1]'
log "node 1 stopped; writing $rows rows of $pad bytes through node 3"
for ((b = 0; b < rows; b += 5000)); do
  last=$((b + 5000 < rows ? b + 5000 : rows))
  through 3 "INSERT INTO big SELECT seq, REPEAT(CHAR(65 + seq % 26), $pad) FROM seq_$((b + 1))_to_$last"
done
# Past two trims of the log (every 10 entries): node 1's position is gone.
for i in $(seq 30); do through 3 "INSERT INTO big VALUES ($((rows + i)), 'x')"; done
want=$((rows + 30))
coordinator_before=$(peak_kb "${pid[3]}")

t0=$(now_ms)
start 1
deadline=$((SECONDS + 1800))
until [[ $(sql 1 "SELECT COUNT(*) FROM distdb_full_copy.big" 2>/dev/null || echo 0) == "$want" ]]; do
  ((SECONDS < deadline)) || die "node 1 did not get the data within 30 minutes"
  sleep 0.2
done
grep -q "Installed a full copy" "$run_dir/node1.log" || die "node 1 caught up from the log, not by a full copy"
t1=$(now_ms)
bytes=$(grep -o "Installed a full copy of the data ([0-9]* bytes" "$run_dir/node1.log" | tail -n 1 | grep -o "[0-9]*")
[[ $(sql 1 "CHECKSUM TABLE distdb_full_copy.big" | cut -f2) == $(sql 3 "CHECKSUM TABLE distdb_full_copy.big" | cut -f2) ]] ||
  die "node 1's table differs from node 3's"
printf 'rows %d, copy %d bytes: node 1 had the data %d ms after its restart; peak RSS node 1 %d KiB, coordinator %d KiB (%d KiB before the copy)\n' \
  "$rows" "$bytes" "$((t1 - t0))" "$(peak_kb "${pid[1]}")" "$(peak_kb "${pid[3]}")" "$coordinator_before"
grep -h "full copy" "$run_dir/node1.log" "$run_dir/node3.log" | sed 's/^/  /'
