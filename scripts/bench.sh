#!/usr/bin/env bash
# The benchmark of docs/benchmarks.md: three throwaway MariaDB servers and a
# three-node distdb cluster on this machine, distdb-bench against one server
# directly (the baseline) and against the cluster, back to back, for each
# workload at 1, 4 and 16 threads (inserts also with the benchmark running
# two-phase commit on the three servers itself, and point selects also
# through a relay that only copies bytes, and spread over the three servers
# directly and through three relays: the floors); then a coordinator
# failover under load, a participant catching up, and (with --soak) the
# nodes' memory over a long mixed load. Writes docs/benchmarks/results.json, two charts (gnuplot) and
# docs/benchmarks.md. Everything it starts is stopped and removed at the end,
# also on failure or Ctrl-C.
#
#   scripts/bench.sh                 the full run (20 s per measurement after a 3 s warmup)
#   scripts/bench.sh --quick         3 s / 1 s, fewer catch-up writes: to try it out
#   scripts/bench.sh --soak 10       also a 10-minute memory soak
#
# Options (defaults in brackets):
#   --quick                 --seconds 3 --warmup 1 --catchup-writes 5000 --failover-runs 1
#   --seconds S [20]        measured seconds per distdb-bench run
#   --warmup S [3]          warmup seconds per run
#   --threads "LIST" ["1 4 16"]
#   --workloads "LIST" ["insert point-select mixed"]
#   --failover-runs N [3]   coordinator kills (0: none)
#   --catchup-writes N [100000]  single-row INSERTs a stopped participant misses (0: no catch-up test)
#   --soak MINUTES [0]      mixed load for MINUTES, sampling each node's RSS every 30 s
#   --replication MODE [statements]  the nodes' storage.replication: statements or rows
#   --db-port P [27306]     MariaDB server N listens on P+N
#   --node-port P [27400]   distdb node N (1..3) listens on P+N
#   --out DIR [docs/benchmarks]   results.json and the charts; the page goes to DIR.md
#
# DISTDB_BUILD_DIR (default build) is the build directory used.
set -euo pipefail
# The whole script is one group, read before it runs: a run takes minutes, in
# a tree that may change meanwhile (bash otherwise reads a script as it goes).
{
cd "$(dirname "$0")/.."
root=$(pwd)
command_line="scripts/bench.sh${*:+ $*}"

seconds=20
warmup=3
threads_list="1 4 16"
workloads="insert point-select mixed"
failover_runs=3
catchup_writes=100000
soak_minutes=0
db_port=27306
node_port=27400
replication=statements
out_dir=docs/benchmarks
quick=false

help_text() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
usage() {
  help_text >&2
  exit 2
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=true; seconds=3; warmup=1; catchup_writes=5000; failover_runs=1 ;;
    --seconds) seconds=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --threads) threads_list=$2; shift ;;
    --workloads) workloads=$2; shift ;;
    --failover-runs) failover_runs=$2; shift ;;
    --catchup-writes) catchup_writes=$2; shift ;;
    --soak) soak_minutes=$2; shift ;;
    --replication) replication=$2; shift ;;
    --db-port) db_port=$2; shift ;;
    --node-port) node_port=$2; shift ;;
    --out) out_dir=$2; shift ;;
    -h | --help) help_text; exit 0 ;;
    *) echo "bench: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }
now_ms() { date +%s%3N; }

# --- 1. what it needs -------------------------------------------------------

scripts/deps.sh --test
# gnuplot for the charts and python3 for the report, from Debian, installed
# the way scripts/deps.sh installs its packages.
extra=()
command -v gnuplot >/dev/null || extra+=(gnuplot-nox)
command -v python3 >/dev/null || extra+=(python3)
if [[ ${#extra[@]} -gt 0 ]]; then
  log "installing ${extra[*]}"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "need root (or sudo) to install: ${extra[*]}"
    sudo=(sudo)
  fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${extra[@]}"
fi

export DISTDB_BUILD_DIR=${DISTDB_BUILD_DIR:-build}
scripts/build.sh >/dev/null
bin="$root/$DISTDB_BUILD_DIR/tools"
bench_bin="$bin/distdb-bench"
cli_bin="$bin/distdb-cli"
# The nodes require a login: one user, a fresh random password, passed to
# distdb-cli and distdb-bench in the environment (never on a command line).
bench_user=bench
DISTDB_PASSWORD=$(head -c 18 /dev/urandom | base64)
export DISTDB_PASSWORD

# --- cleanup ----------------------------------------------------------------

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/distdb-bench.XXXXXX")
export DISTDB_SANDBOX_DIR="$run_dir/mariadb"
export DISTDB_SANDBOX_BASE_PORT=$db_port
node_pids=(0 0 0 0)  # by node id 1..3 (0: not running)
helper_pids=()       # background loads and writers
relay_pids=()        # the byte relays: in front of servers 1, 2 and 3

cleanup() {
  local status=$? pid
  trap - EXIT INT TERM
  for pid in "${helper_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${relay_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${node_pids[@]}"; do
    [[ $pid != 0 ]] || continue
    kill -CONT "$pid" 2>/dev/null || true  # a stopped process cannot act on SIGTERM
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${helper_pids[@]}" "${node_pids[@]}"; do
    [[ $pid != 0 ]] && wait "$pid" 2>/dev/null || true
  done
  "$root/scripts/mariadb-sandbox.sh" stop-all || true
  if [[ $status -ne 0 ]]; then
    log "failed (status $status); node logs:"
    tail -n 15 "$run_dir"/node*.log >&2 2>/dev/null || true
  fi
  rm -rf "$run_dir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 2. servers and cluster -------------------------------------------------

db_of() { echo $((db_port + $1 - 1)); }  # node N's server is sandbox server N-1
port_of() { echo $((node_port + $1)); }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for n in 1 2 3; do
  for p in "$(db_of "$n")" "$(port_of "$n")"; do
    ! port_open "$p" || die "port $p is in use; choose others with --db-port / --node-port"
  done
done

for i in 0 1 2; do scripts/mariadb-sandbox.sh start "$i"; done
mariadb_version=$("$(command -v mariadbd || echo /usr/sbin/mariadbd)" --version 2>/dev/null | sed 's/^.* Ver //' || true)

# shellcheck source=lib/node-config.sh
source "$root/scripts/lib/node-config.sh"
security="{\"users\": [$(client_user_json "$bench_user" "$DISTDB_PASSWORD")]}"
write_config() {  # the prototype's format; default timeouts
  write_node_config "$run_dir/config$1.json" "$1" \
    "\"db_config\": {\"user\": \"root\", \"password\": \"\", \"host\": \"127.0.0.1\", \"port\": $(db_of "$1"), \"database\": \"distdb_bench_node\"}, \"storage\": {\"backend\": \"mariadb\", \"replication\": \"$replication\"}" \
    "$security"
}

start_node() {
  local id=$1 deadline=$((SECONDS + 30))
  "$bin/distdb-node" "$run_dir/config$id.json" >>"$run_dir/node$id.log" 2>&1 &
  node_pids[id]=$!
  until port_open "$(port_of "$id")"; do
    kill -0 "${node_pids[id]}" 2>/dev/null || die "node $id exited at start"
    ((SECONDS < deadline)) || die "node $id does not listen on port $(port_of "$id")"
    sleep 0.05
  done
}

# One row per member, as node ID sees the cluster (tab-separated: id,
# address, role, alive, in_view, applied_seq, lag), from the table that
# distdb-cli's :status prints; nothing if the node does not answer.
status_of() {
  "$cli_bin" -u "$bench_user" -h 127.0.0.1 -P "$(port_of "$1")" -e ':status' 2>/dev/null | awk -F'|' '
    NF >= 9 {
      for (i = 2; i < NF; i++) gsub(/^ +| +$/, "", $i)
      if ($2 ~ /^[0-9]+$/) print $2 "\t" $3 "\t" $4 "\t" $5 "\t" $6 "\t" $7 "\t" $8
    }' || true
}
coordinator_seen_by() { status_of "$1" | awk -F'\t' '$3 == "coordinator" { print $1 }'; }
applied_of() { status_of "$1" | awk -F'\t' -v id="$1" '$1 == id { print $6 }'; }

# Until every node agrees on one coordinator, which has every member alive,
# in its view and at its own position (prints the coordinator's id). With
# every member up that is node 3, the highest id: a lower one that won an
# election first hands over to it shortly after.
readonly settle_timeout_s=60
wait_settled() {
  local deadline=$((SECONDS + settle_timeout_s)) c rows
  while ((SECONDS < deadline)); do
    c=$(coordinator_seen_by 3)
    if [[ $c == 3 && $(coordinator_seen_by 1) == "$c" && $(coordinator_seen_by 2) == "$c" ]]; then
      rows=$(status_of "$c")
      if [[ $(awk -F'\t' '$4 == "yes" && $5 == "yes"' <<<"$rows" | wc -l) == 3 &&
            $(awk -F'\t' '{ print $6 }' <<<"$rows" | sort -u | wc -l) == 1 ]]; then
        echo "$c"
        return 0
      fi
    fi
    sleep 0.2
  done
  die "the cluster did not settle within $settle_timeout_s s"
}

for id in 1 2 3; do write_config "$id"; done
for id in 1 2 3; do start_node "$id"; done
coordinator=$(wait_settled)
log "cluster up, coordinator: node $coordinator"
nodes_arg="127.0.0.1:$(port_of 1),127.0.0.1:$(port_of 2),127.0.0.1:$(port_of 3)"
# Relay N (on port_of 8+N) copies bytes to and from server N.
relay_of() { port_of $((8 + $1)); }
for n in 1 2 3; do
  ! port_open "$(relay_of "$n")" || die "port $(relay_of "$n") (a relay) is in use; choose others with --node-port"
  "$bin/distdb-bench-relay" "$(relay_of "$n")" "127.0.0.1:$(db_of "$n")" &
  relay_pids+=($!)
done

uptime >"$run_dir/uptime-start.txt"
stat -f -c %T "$DISTDB_SANDBOX_DIR" >"$run_dir/filesystem.txt"  # where the servers keep their data
date -u '+%Y-%m-%d %H:%M:%S UTC' >"$run_dir/started.txt"

# --- 3. direct vs cluster ---------------------------------------------------

runs="$run_dir/runs.jsonl"
: >"$runs"
bench() {  # TARGET WORKLOAD THREADS: one run, appended to runs.jsonl
  local target=$1 workload=$2 threads=$3 args line
  if [[ $target == direct ]]; then
    args=(--target direct --db "127.0.0.1:$(db_of 1)")
  elif [[ $target == relay ]]; then
    args=(--target direct --db "127.0.0.1:$(relay_of 1)")
  elif [[ $target == direct-3 ]]; then
    args=(--target direct --db "127.0.0.1:$(db_of 1),127.0.0.1:$(db_of 2),127.0.0.1:$(db_of 3)")
  elif [[ $target == relay-3 ]]; then
    args=(--target direct --db "127.0.0.1:$(relay_of 1),127.0.0.1:$(relay_of 2),127.0.0.1:$(relay_of 3)")
  elif [[ $target == two-phase ]]; then
    args=(--target two-phase --db "127.0.0.1:$(db_of 1),127.0.0.1:$(db_of 2),127.0.0.1:$(db_of 3)")
  else
    args=(--target cluster --nodes "$nodes_arg" --user "$bench_user")
  fi
  [[ $workload == mixed ]] && args+=(--read-ratio 0.5)
  log "$workload, $threads thread(s), $target"
  line=$("$bench_bin" "${args[@]}" --workload "$workload" --threads "$threads" \
    --seconds "$seconds" --warmup "$warmup" --json) || die "distdb-bench failed: $line"
  printf '{"workload": "%s", "threads": %d, "target": "%s", "result": %s}\n' \
    "$workload" "$threads" "$target" "$line" >>"$runs"
}

for workload in $workloads; do
  for threads in $threads_list; do
    bench direct "$workload" "$threads"
    bench cluster "$workload" "$threads"
    # The floor under a replicated write: distdb-bench itself runs two-phase
    # commit on the three servers, with no distdb process in between.
    if [[ $workload == insert ]]; then bench two-phase "$workload" "$threads"; fi
    # The floor under a read through any middleware process: the direct
    # load through a relay that only copies bytes (distdb-bench-relay: one
    # thread, epoll) to the same server. The cluster spreads its reads over
    # three servers, which on this machine share the same two cores: the
    # direct load spread the same way over the three (thread i on server i
    # mod 3, a table on each), then through three relays, measures what that
    # spread costs without distdb.
    if [[ $workload == point-select ]]; then
      bench relay "$workload" "$threads"
      bench direct-3 "$workload" "$threads"
      bench relay-3 "$workload" "$threads"
    fi
  done
done

# --- 3b. what two-phase commit costs the database itself ------------------------

# The floor under a replicated write's latency, without distdb: the same
# single-row INSERT as autocommit statements, and as XA transactions (XA
# START, INSERT, XA END, XA PREPARE, XA COMMIT: what every member runs), each
# statement its own round trip from the mariadb client, one connection,
# against the direct run's server.
xa_cost="$run_dir/xa-cost.json"
if [[ " $workloads " == *" insert "* ]]; then
  xa_count=2000
  xa_client=(mariadb --no-defaults -h 127.0.0.1 -P "$(db_of 1)" -u root)
  "${xa_client[@]}" -e "CREATE DATABASE IF NOT EXISTS distdb_bench_xa;
    DROP TABLE IF EXISTS distdb_bench_xa.t; CREATE TABLE distdb_bench_xa.t (id INT PRIMARY KEY, v INT)"
  awk -v n="$xa_count" 'BEGIN { for (i = 1; i <= n; i++) printf "INSERT INTO t VALUES (%d, 1);\n", i }' \
    >"$run_dir/xa-plain.sql"
  awk -v n="$xa_count" 'BEGIN { for (i = 1; i <= n; i++) {
      printf "XA START '"'"'x%d'"'"';\nINSERT INTO t VALUES (%d, 2);\nXA END '"'"'x%d'"'"';\n", i, n + i, i
      printf "XA PREPARE '"'"'x%d'"'"';\nXA COMMIT '"'"'x%d'"'"';\n", i, i } }' >"$run_dir/xa-xa.sql"
  t0=$(now_ms)
  "${xa_client[@]}" distdb_bench_xa <"$run_dir/xa-plain.sql"
  t1=$(now_ms)
  "${xa_client[@]}" distdb_bench_xa <"$run_dir/xa-xa.sql"
  t2=$(now_ms)
  "${xa_client[@]}" -e "DROP DATABASE distdb_bench_xa"
  printf '{"transactions": %d, "plain_ms": %d, "xa_ms": %d}\n' "$xa_count" $((t1 - t0)) $((t2 - t1)) >"$xa_cost"
  log "XA cost: $xa_count autocommit INSERTs in $((t1 - t0)) ms, $xa_count XA transactions in $((t2 - t1)) ms"
fi

# --- 4. failover --------------------------------------------------------------

# distdb-bench inserts with 4 threads spread over the three nodes (the nodes
# forward writes to the coordinator) and reports its completions per 10 ms;
# the coordinator is killed (kill -9) 3 s in, 5 s before the load ends. The report takes the
# time from the kill to the first write acknowledged afterwards.
failovers="$run_dir/failover.jsonl"
: >"$failovers"
for ((run = 1; run <= failover_runs; run++)); do
  coordinator=$(wait_settled)
  "$bench_bin" --target cluster --nodes "$nodes_arg" --user "$bench_user" --workload insert --threads 4 \
    --seconds 8 --warmup 0 --table bench_failover --json --timeline 10 \
    >"$run_dir/failover$run.json" 2>"$run_dir/failover$run.err" &
  helper_pids=($!)
  sleep 3
  killed_at=$(now_ms)
  kill -KILL "${node_pids[coordinator]}"
  wait "${node_pids[coordinator]}" 2>/dev/null || true
  node_pids[coordinator]=0
  log "failover $run/$failover_runs: killed node $coordinator (the coordinator)"
  wait "${helper_pids[0]}" || true  # errors are expected; the figures say how many
  helper_pids=()
  new_coordinator=$(coordinator_seen_by $((coordinator == 1 ? 2 : 1)))
  [[ -s "$run_dir/failover$run.json" ]] || die "distdb-bench reported nothing: $(cat "$run_dir/failover$run.err")"
  # When the new coordinator took office, by its log's clock (local time of day).
  elected_clock=""
  if [[ -n $new_coordinator ]]; then
    elected_clock=$(grep -h 'This node is now the coordinator' "$run_dir/node$new_coordinator.log" |
      tail -n 1 | cut -d' ' -f1)
  fi
  printf '{"run": %d, "killed_node": %d, "new_coordinator": %s, "kill_unix_ms": %s, "elected_clock": "%s", "result": %s}\n' \
    "$run" "$coordinator" "${new_coordinator:-null}" "$killed_at" "$elected_clock" \
    "$(cat "$run_dir/failover$run.json")" >>"$failovers"
  start_node "$coordinator"
done
if ((failover_runs > 0)); then
  coordinator=$(wait_settled)
  log "failover done, coordinator again: node $coordinator"
fi

# --- 5. catch-up ----------------------------------------------------------------

# A participant is stopped (SIGSTOP), CATCHUP_WRITES single-row INSERTs go
# to the coordinator (16 distdb-cli processes at once, one statement
# per request: each is its own replicated write, although the coordinator may
# batch concurrent ones into one log entry), then the participant is continued
# (SIGCONT) and timed until its applied position equals the coordinator's.
catchup="$run_dir/catchup.json"
if ((catchup_writes > 0)); then
  coordinator=$(wait_settled)
  lagger=1
  [[ $coordinator == 1 ]] && lagger=2
  "$cli_bin" -u "$bench_user" -h 127.0.0.1 -P "$(port_of "$coordinator")" \
    -e "DROP TABLE IF EXISTS bench_catchup; CREATE TABLE bench_catchup (id BIGINT PRIMARY KEY, v VARCHAR(32) NOT NULL)" >/dev/null
  wait_settled >/dev/null
  lagger_from=$(applied_of "$lagger")
  kill -STOP "${node_pids[lagger]}"
  log "catch-up: node $lagger stopped at position $lagger_from; writing $catchup_writes rows"
  writers=16
  write_started=$(now_ms)
  for ((w = 0; w < writers; w++)); do
    awk -v w="$w" -v n="$catchup_writes" -v k="$writers" \
      'BEGIN { for (id = w + 1; id <= n; id += k) printf "INSERT INTO bench_catchup VALUES (%d, '"'"'row %d'"'"');\n", id, id }' |
      "$cli_bin" -u "$bench_user" -h 127.0.0.1 -P "$(port_of "$coordinator")" >/dev/null 2>"$run_dir/writer$w.err" &
    helper_pids+=($!)
  done
  for pid in "${helper_pids[@]}"; do wait "$pid" || die "a catch-up writer failed: $(cat "$run_dir"/writer*.err)"; done
  helper_pids=()
  write_ms=$(($(now_ms) - write_started))
  # The coordinator's position, once it no longer moves (its STATUS row can
  # trail the last acknowledgement by a moment).
  head=$(applied_of "$coordinator")
  while sleep 0.2 && [[ $(applied_of "$coordinator") != "$head" ]]; do head=$(applied_of "$coordinator"); done
  continued_at=$(now_ms)
  kill -CONT "${node_pids[lagger]}"
  deadline=$((SECONDS + 600))
  until position=$(applied_of "$lagger") && [[ -n $position ]] && ((position >= head)); do
    ((SECONDS < deadline)) || die "node $lagger did not catch up within 600 s"
    sleep 0.05
  done
  caught_up_ms=$(($(now_ms) - continued_at))
  rows=$("$cli_bin" -u "$bench_user" -h 127.0.0.1 -P "$(port_of "$lagger")" --format tsv \
    -e "SELECT COUNT(*) FROM bench_catchup" | tail -n 1)
  printf '{"node": %d, "writes": %d, "rows_on_node": %s, "from_seq": %s, "to_seq": %s, "write_ms": %d, "catch_up_ms": %d}\n' \
    "$lagger" "$catchup_writes" "$rows" "$lagger_from" "$head" "$write_ms" "$caught_up_ms" >"$catchup"
  log "catch-up: $catchup_writes writes ($((head - lagger_from)) log entries) in $caught_up_ms ms"
  "$cli_bin" -u "$bench_user" -h 127.0.0.1 -P "$(port_of "$coordinator")" -e "DROP TABLE bench_catchup" >/dev/null
fi

# --- 6. memory soak -------------------------------------------------------------

soak="$run_dir/soak.jsonl"
: >"$soak"
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo null; }
if ((soak_minutes > 0)); then
  wait_settled >/dev/null
  log "soak: mixed load, 4 threads, $soak_minutes min"
  "$bench_bin" --target cluster --nodes "$nodes_arg" --user "$bench_user" --workload mixed --threads 4 \
    --seconds $((soak_minutes * 60)) --warmup 0 --table bench_soak --json \
    >"$run_dir/soak-bench.json" 2>"$run_dir/soak-bench.err" &
  helper_pids=($!)
  soak_start=$SECONDS
  while :; do
    printf '{"t_s": %d, "rss_kb": {"1": %s, "2": %s, "3": %s}}\n' $((SECONDS - soak_start)) \
      "$(rss_kb "${node_pids[1]}")" "$(rss_kb "${node_pids[2]}")" "$(rss_kb "${node_pids[3]}")" >>"$soak"
    kill -0 "${helper_pids[0]}" 2>/dev/null || break
    for ((i = 0; i < 30; i++)); do
      kill -0 "${helper_pids[0]}" 2>/dev/null || break
      sleep 1
    done
  done
  wait "${helper_pids[0]}" || die "the soak load failed: $(cat "$run_dir/soak-bench.err")"
  helper_pids=()
fi

# --- 7. the report ----------------------------------------------------------------

uptime >"$run_dir/uptime-end.txt"
mkdir -p "$out_dir"
python3 scripts/bench_report.py --run-dir "$run_dir" --out "$out_dir" --command "$command_line" \
  --mariadb-version "$mariadb_version" --quick "$quick" \
  --seconds "$seconds" --warmup "$warmup" --soak-minutes "$soak_minutes"
exit
}
