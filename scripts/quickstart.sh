#!/usr/bin/env bash
# Builds distdb, starts a local three-node cluster on SQLite (nothing else to
# install), and opens distdb-cli connected to it. Leaving the shell (:exit or
# Ctrl-D) stops the cluster; the data stays in .run/quickstart/.
#
#   scripts/quickstart.sh            interactive
#   scripts/quickstart.sh --script   a short scripted session on a fresh cluster, then exit
#
# Ports 5000-5002 by default (the seed's); DISTDB_QUICKSTART_PORT moves them.
# Clients log in: the nodes know one user, "demo", whose password is drawn
# afresh at every start and kept (readable by you only) in the run directory;
# the shell opened here gets it from DISTDB_PASSWORD.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

mode=interactive
case "${1:-}" in
  --script) mode=script ;;
  "") ;;
  *) echo "usage: scripts/quickstart.sh [--script]" >&2; exit 2 ;;
esac

scripts/deps.sh
export DISTDB_BUILD_DIR=${DISTDB_BUILD_DIR:-build}
scripts/build.sh >/dev/null
bin="$root/$DISTDB_BUILD_DIR/tools"
# Translated messages (LANG=pt_BR.UTF-8) straight from the build tree.
export DISTDB_LOCALEDIR=${DISTDB_LOCALEDIR:-$root/$DISTDB_BUILD_DIR/po}

base_port=${DISTDB_QUICKSTART_PORT:-5000}
if [[ $mode == script ]]; then
  run_dir=$(mktemp -d "${TMPDIR:-/tmp}/distdb-quickstart.XXXXXX")
else
  run_dir="$root/.run/quickstart"
fi
mkdir -p "$run_dir"

port_of() { echo $((base_port + $1 - 1)); }

# shellcheck source=lib/node-config.sh
source "$root/scripts/lib/node-config.sh"
# The demo user's password: random, in a file only its owner reads.
umask 077
demo_password=$(head -c 18 /dev/urandom | base64)
printf '%s\n' "$demo_password" >"$run_dir/demo-password"
users="{\"users\": [$(client_user_json demo "$demo_password")]}"
export DISTDB_PASSWORD=$demo_password
write_config() {  # the seed's format, plus the storage and security extensions
  write_node_config "$run_dir/config$1.json" "$1" "\"storage\": {\"backend\": \"sqlite\", \"path\": \"node$1.db\"}" "$users"
}

pids=()
stop_cluster() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ $mode == script ]]; then rm -rf "$run_dir"; fi
}
trap stop_cluster EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for id in 1 2 3; do
  if port_open "$(port_of "$id")"; then
    echo "distdb: port $(port_of "$id") is already in use; set DISTDB_QUICKSTART_PORT to another base port" >&2
    exit 1
  fi
  write_config "$id"
  "$bin/distdb-node" "$run_dir/config$id.json" > "$run_dir/node$id.log" 2>&1 &
  pids+=($!)
done

for id in 1 2 3; do
  deadline=$((SECONDS + 20))
  until port_open "$(port_of "$id")"; do
    if ((SECONDS > deadline)) || ! kill -0 "${pids[$((id - 1))]}" 2>/dev/null; then
      echo "distdb: node $id did not start; its log:" >&2
      cat "$run_dir/node$id.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  grep -h '\[\*\]' "$run_dir/node$id.log" | sed "s/^/  node $id | /" || true
done

# The prototype's schema (sql/init_db.sql), so that its example session works
# as it is: created once, replicated to every node. The first write also
# waits for the nodes to elect their coordinator.
"$bin/distdb-cli" -h 127.0.0.1 -P "$(port_of 1)" -u demo \
  -e "CREATE TABLE IF NOT EXISTS teste (id INT PRIMARY KEY)" >/dev/null

cli=("$bin/distdb-cli" -h 127.0.0.1 -P "$(port_of 3)" -u demo)
if [[ $mode == script ]]; then
  "${cli[@]}" --format table <<'SQL'
INSERT INTO teste VALUES (1);
INSERT INTO teste VALUES (2);
SELECT * FROM teste;
SQL
  # The same rows, read on another node: the writes were replicated.
  "$bin/distdb-cli" -h 127.0.0.1 -P "$(port_of 1)" -u demo --format table -e "SELECT * FROM teste"
else
  echo "Cluster running (logs in $run_dir). Type SQL, :help for commands, :exit to stop."
  echo "Other shells log in as user demo, password in $run_dir/demo-password."
  "${cli[@]}"
fi
