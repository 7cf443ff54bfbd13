#!/usr/bin/env bash
# Throwaway MariaDB servers on 127.0.0.1, for the test suite and benchmarks.
#
#   DISTDB_SANDBOX_DIR=/tmp/x scripts/mariadb-sandbox.sh start 0
#
# Commands:
#   start N     initialize server N's data dir on first use, start it, and
#               wait until it answers a ping (idempotent: a running server is left alone)
#   stop N      clean shutdown; waits until the process is gone
#   kill N      kill -9 (a crash, as the durability tests need); waits until gone
#   stop-all    stops every server under the sandbox dir
#   env COUNT   prints the export lines the test suite reads (tests/support/mariadb_env.hpp)
#
# Environment:
#   DISTDB_SANDBOX_DIR        (required) where server N lives: $DISTDB_SANDBOX_DIR/server-N
#   DISTDB_SANDBOX_BASE_PORT  (default 23306) server N listens on BASE_PORT+N
#
# Each server writes a binary log in row format (server-id N+1), which
# distdb's row capture reads (libdistdb/src/storage/mariadb_row_events.hpp);
# binlogs older than an hour are purged at rotation. With a binary log,
# CREATE FUNCTION without DETERMINISTIC/NO SQL/READS SQL DATA is refused
# (1418) unless log_bin_trust_function_creators is on (safe in row format).
#
# Root has an empty password over TCP; the servers bind to 127.0.0.1 only.
# Nothing here is fit for anything but tests.
set -euo pipefail

SCRIPT_PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
readonly SCRIPT_PATH
readonly BASE_PORT="${DISTDB_SANDBOX_BASE_PORT:-23306}"
readonly START_DEADLINE_S=60
readonly STOP_DEADLINE_S=60

die() {
  echo "mariadb-sandbox: $*" >&2
  exit 1
}

usage() {
  cat >&2 <<EOF
usage: $(basename "$0") start N | stop N | kill N | stop-all | env COUNT
  (DISTDB_SANDBOX_DIR must be set; server N listens on 127.0.0.1:\$((${BASE_PORT}+N)))
EOF
  exit 2
}

# Prints the path of the first of the given programs found in PATH or /usr/sbin
# (Debian puts mariadbd there, outside a normal user's PATH).
find_program() {
  local name
  for name in "$@"; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return 0
    fi
    for dir in /usr/sbin /usr/local/sbin /usr/local/mysql/bin; do
      if [[ -x "$dir/$name" ]]; then
        echo "$dir/$name"
        return 0
      fi
    done
  done
  return 1
}

server_bin() { find_program mariadbd mysqld || die "no mariadbd/mysqld found (install mariadb-server)"; }
install_db_bin() { find_program mariadb-install-db mysql_install_db || die "no mariadb-install-db/mysql_install_db found"; }
admin_bin() { find_program mariadb-admin mysqladmin || die "no mariadb-admin/mysqladmin found"; }

require_sandbox_dir() {
  [[ -n "${DISTDB_SANDBOX_DIR:-}" ]] || die "DISTDB_SANDBOX_DIR is not set (e.g. export DISTDB_SANDBOX_DIR=\$(mktemp -d))"
  mkdir -p "$DISTDB_SANDBOX_DIR" || die "cannot create $DISTDB_SANDBOX_DIR"
  # Absolute, so that the paths handed to mariadbd do not depend on its cwd.
  DISTDB_SANDBOX_DIR="$(cd "$DISTDB_SANDBOX_DIR" && pwd)"
}

require_index() {
  [[ "${1:-}" =~ ^[0-9]+$ ]] || die "server index must be a non-negative integer, got '${1:-}'"
}

server_dir() { echo "$DISTDB_SANDBOX_DIR/server-$1"; }
server_port() { echo $((BASE_PORT + $1)); }
pid_file() { echo "$(server_dir "$1")/mariadbd.pid"; }
error_log() { echo "$(server_dir "$1")/error.log"; }

# The server's pid if it is running, else nothing (and status 1).
running_pid() {
  local pf pid
  pf="$(pid_file "$1")"
  [[ -f "$pf" ]] || return 1
  pid="$(cat "$pf" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

ping_server() {
  "$(admin_bin)" --no-defaults --protocol=tcp -h127.0.0.1 -P "$(server_port "$1")" -uroot \
    --connect-timeout=2 ping >/dev/null 2>&1
}

show_log_tail() {
  local log
  log="$(error_log "$1")"
  if [[ -f "$log" ]]; then
    echo "--- last lines of $log ---" >&2
    tail -n 30 "$log" >&2
    echo "---" >&2
  fi
}

initialize() {
  local n="$1" dir
  dir="$(server_dir "$n")"
  [[ -d "$dir/data/mysql" ]] && return 0
  mkdir -p "$dir/data"
  # A binary log left from an earlier data dir would be recovered into this one.
  rm -f "$dir"/binlog.*
  local user_args=()
  [[ "$(id -u)" == 0 ]] && user_args=(--user=root)
  # --auth-root-authentication-method=normal: root gets a password (empty)
  # instead of unix_socket auth, so that the tests can log in over TCP.
  if ! "$(install_db_bin)" --no-defaults --datadir="$dir/data" \
      --auth-root-authentication-method=normal --skip-test-db "${user_args[@]}" \
      >"$dir/install.log" 2>&1; then
    echo "--- $dir/install.log ---" >&2
    tail -n 30 "$dir/install.log" >&2
    rm -rf "$dir/data"  # so that the next attempt starts from scratch
    die "initializing the data dir of server $n failed"
  fi
}

cmd_start() {
  local n="$1" dir port
  dir="$(server_dir "$n")"
  port="$(server_port "$n")"
  if running_pid "$n" >/dev/null && ping_server "$n"; then
    return 0  # already up
  fi
  initialize "$n"
  if ! running_pid "$n" >/dev/null; then
    local user_args=()
    [[ "$(id -u)" == 0 ]] && user_args=(--user=root)
    # Background the server detached from our stdout/stderr, so that a caller
    # capturing this script's output (e.g. $(...) or std::system) does not
    # wait for the server to exit.
    # A temporary directory of its own: servers sharing /tmp can meet each
    # other's temporary tables there (a read failed with "Error on delete
    # of '/tmp/#sql-temptable-...'" while another sandbox's servers started).
    mkdir -p "$dir/tmp"
    nohup "$(server_bin)" --no-defaults \
      --datadir="$dir/data" \
      --tmpdir="$dir/tmp" \
      --port="$port" --bind-address=127.0.0.1 \
      --socket="$dir/mariadbd.sock" \
      --pid-file="$(pid_file "$n")" \
      --log-error="$(error_log "$n")" \
      --innodb-buffer-pool-size=64M \
      --innodb-log-file-size=48M \
      --skip-name-resolve \
      --max-connections=500 \
      --log-bin="$dir/binlog" --binlog-format=ROW --binlog-row-image=FULL \
      --server-id=$((n + 1)) --sync-binlog=1 --binlog-expire-logs-seconds=3600 \
      --log-bin-trust-function-creators=1 \
      "${user_args[@]}" \
      </dev/null >>"$dir/stdout.log" 2>&1 &
  fi
  local deadline=$((SECONDS + START_DEADLINE_S))
  until ping_server "$n"; do
    if ((SECONDS >= deadline)); then
      show_log_tail "$n"
      die "server $n did not answer on 127.0.0.1:$port within ${START_DEADLINE_S}s"
    fi
    sleep 0.2
  done
}

wait_gone() {
  local n="$1" pid="$2" deadline=$((SECONDS + STOP_DEADLINE_S))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      show_log_tail "$n"
      die "server $n (pid $pid) is still running after ${STOP_DEADLINE_S}s"
    fi
    sleep 0.1
  done
}

cmd_stop() {
  local n="$1" pid
  pid="$(running_pid "$n")" || return 0  # not running
  # SIGTERM is a clean shutdown for mariadbd, and needs no login.
  kill -TERM "$pid" 2>/dev/null || true
  wait_gone "$n" "$pid"
}

cmd_kill() {
  local n="$1" pid
  pid="$(running_pid "$n")" || return 0
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$n" "$pid"
}

cmd_stop_all() {
  local dir n
  shopt -s nullglob
  for dir in "$DISTDB_SANDBOX_DIR"/server-*; do
    n="${dir##*/server-}"
    [[ "$n" =~ ^[0-9]+$ ]] && cmd_stop "$n"
  done
}

cmd_env() {
  local count="$1" list="" i
  ((count >= 1)) || die "env needs a server count >= 1"
  for ((i = 0; i < count; i++)); do
    list+="${list:+,}127.0.0.1:$(server_port "$i")"
  done
  echo "export DISTDB_TEST_MARIADB=$list"
  echo "export DISTDB_TEST_MARIADB_CTL=\"$SCRIPT_PATH\""
}

main() {
  [[ $# -ge 1 ]] || usage
  local cmd="$1"
  shift
  case "$cmd" in
    start | stop | kill)
      [[ $# -eq 1 ]] || usage
      require_index "$1"
      require_sandbox_dir
      "cmd_$cmd" "$1"
      ;;
    stop-all)
      [[ $# -eq 0 ]] || usage
      require_sandbox_dir
      cmd_stop_all
      ;;
    env)
      [[ $# -eq 1 ]] || usage
      require_index "$1"
      cmd_env "$1"
      ;;
    *) usage ;;
  esac
}

main "$@"
