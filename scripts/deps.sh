#!/usr/bin/env bash
# Installs the Debian packages distdb needs, if any are missing.
#   scripts/deps.sh            build dependencies
#   scripts/deps.sh --test     build dependencies + MariaDB server/client, clang
#                              (libFuzzer, for scripts/fuzz.sh) and the openssl
#                              command (the TLS tests' certificates) for the tests
set -euo pipefail

packages=(g++ meson ninja-build pkg-config libasio-dev rapidjson-dev libmariadb-dev
          libsqlite3-dev libssl-dev doctest-dev libcli11-dev libedit-dev gettext)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(mariadb-server mariadb-client clang openssl)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "distdb: installing ${missing[*]}" >&2
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "distdb: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
# Installing mariadb-server must not start a system-wide server: the tests
# run their own, on their own ports.
if [[ ! -e /usr/sbin/policy-rc.d ]] && [[ " ${missing[*]} " == *" mariadb-server "* ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${sudo[@]}" chmod +x /usr/sbin/policy-rc.d
  trap '"${sudo[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
fi
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
