#!/usr/bin/env bash
# Makes a throwaway certificate authority and certificates for a local
# cluster and for the tests: TLS in security.tls (docs/security.md) needs a
# CA, and a certificate and key per node. FOR LOCAL CLUSTERS AND TESTS ONLY:
# the CA's key lies next to the certificates, unprotected.
#
#   scripts/make-test-certs.sh DIR [NODE_IDS...]     (default ids: 1 2 3)
#
# Writes into DIR (created if needed):
#   ca.crt, ca.key                the test CA ("distdb test CA")
#   node<ID>.crt, node<ID>.key    per node: CN distdb-node-<ID>, valid for
#                                 IP 127.0.0.1 and DNS localhost, for both
#                                 serverAuth and clientAuth (a node is a
#                                 client of its peers)
#   client.crt, client.key        a client certificate: CN distdb-client, clientAuth
# Keys are EC P-256, unencrypted, mode 600. Files already in DIR are kept, so
# running it again with more ids adds nodes under the same CA; with a new CA
# (ca.crt or ca.key missing) every certificate is made again. Needs the
# openssl command.
set -euo pipefail

usage() {
  echo "usage: $0 DIR [NODE_IDS...]   (a test CA and certificates; default ids 1 2 3)" >&2
  exit "${1:-2}"
}
[[ $# -ge 1 ]] || usage
[[ $1 == -h || $1 == --help ]] && usage 0
dir=$1
shift
ids=("$@")
[[ ${#ids[@]} -gt 0 ]] || ids=(1 2 3)
for id in "${ids[@]}"; do
  [[ $id =~ ^[1-9][0-9]{0,9}$ ]] || { echo "$0: node id '$id' is not a positive integer" >&2; exit 2; }
done
command -v openssl >/dev/null || { echo "$0: the openssl command is needed (Debian: apt-get install openssl)" >&2; exit 1; }

mkdir -p "$dir"
umask 077
days=3650
work=$(mktemp -d "${TMPDIR:-/tmp}/distdb-certs.XXXXXX")
trap 'rm -rf "$work"' EXIT

fresh_ca=0
if [[ ! -s $dir/ca.crt || ! -s $dir/ca.key ]]; then
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc -sha256 -days "$days" \
    -keyout "$work/ca.key" -out "$work/ca.crt" -subj "/CN=distdb test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>"$work/log" || { cat "$work/log" >&2; exit 1; }
  mv "$work/ca.key" "$dir/ca.key"
  mv "$work/ca.crt" "$dir/ca.crt"
  fresh_ca=1
fi

# issue NAME CN EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]
issue() {
  local name=$1 cn=$2 eku=$3 san=${4:-}
  if [[ $fresh_ca == 0 && -s $dir/$name.crt && -s $dir/$name.key ]]; then return; fi
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=$eku"
    echo "subjectKeyIdentifier=hash"
    echo "authorityKeyIdentifier=keyid"
    [[ -n $san ]] && echo "subjectAltName=$san"
  } >"$work/$name.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc -sha256 \
    -keyout "$work/$name.key" -out "$work/$name.csr" -subj "/CN=$cn" 2>"$work/log" ||
    { cat "$work/log" >&2; exit 1; }
  openssl x509 -req -in "$work/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -sha256 -days "$days" \
    -set_serial "0x$(openssl rand -hex 16)" -extfile "$work/$name.ext" -out "$work/$name.crt" 2>"$work/log" ||
    { cat "$work/log" >&2; exit 1; }
  mv "$work/$name.key" "$dir/$name.key"
  mv "$work/$name.crt" "$dir/$name.crt"
  chmod 644 "$dir/$name.crt"
}

chmod 644 "$dir/ca.crt"
for id in "${ids[@]}"; do
  issue "node$id" "distdb-node-$id" "serverAuth,clientAuth" "IP:127.0.0.1,DNS:localhost"
done
issue client distdb-client clientAuth

echo "$dir: CA ca.crt; nodes ${ids[*]} (node<ID>.crt/.key); client.crt/.key -- for local clusters and tests only"
