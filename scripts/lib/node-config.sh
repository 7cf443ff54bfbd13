# Sourced by the scripts that start a local three-node cluster.
#
#   write_node_config FILE ID STORAGE
#
# Writes node ID's config.json in the prototype's format: the node on
# 127.0.0.1:$(port_of ID), the two others as peers, and STORAGE (a JSON
# member such as '"storage": {"backend": "sqlite", "path": "node1.db"}' or a
# '"db_config": {...}') inside local_node. The caller defines port_of.
write_node_config() {
  local file=$1 id=$2 storage=$3 peers="" p
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
  "peers": [$peers]
}
JSON
}
