# Sourced by the scripts that start a local three-node cluster.
#
#   write_node_config FILE ID STORAGE SECURITY
#   client_user_json NAME PASSWORD
#
# write_node_config writes node ID's config.json in the prototype's format:
# the node on 127.0.0.1:$(port_of ID), the two others as peers, STORAGE (a
# JSON member such as '"storage": {"backend": "sqlite", "path": "node1.db"}'
# or a '"db_config": {...}') inside local_node, and SECURITY (the value of
# "security", e.g. '{"client_auth": "off"}' or '{"users": [...]}') at the
# top level. The caller defines port_of.
#
# client_user_json prints '{"name": NAME, "password": <verifier>}', the
# security.users entry of a user with that password, hashed by
# "$bin/distdb-node" --hash-password (the caller defines bin).
client_user_json() {
  local verifier
  verifier=$(printf '%s\n' "$2" | "$bin/distdb-node" --hash-password) || return 1
  printf '{"name": "%s", "password": "%s"}' "$1" "$verifier"
}

write_node_config() {
  local file=$1 id=$2 storage=$3 security=$4 peers="" p
  for p in 1 2 3; do
    [[ $p == "$id" ]] && continue
    peers+="${peers:+, }{\"id\": $p, \"ip\": \"127.0.0.1\", \"port\": $(port_of "$p")}"
  done
  cat >"$file" <<JSON
{
  "local_node": {
    "id": $id,
    "ip": "127.0.0.1",
    "port": $(port_of "$id"),
    $storage
  },
  "peers": [$peers],
  "security": $security
}
JSON
}
