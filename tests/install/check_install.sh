#!/usr/bin/env bash
# Installs libdistdb into a scratch root, then builds and runs a separate host
# project (examples/standalone) that finds it only through pkg-config.
#   check_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build_dir=$1
source_dir=$2
scratch=$(mktemp -d "${TMPDIR:-/tmp}/distdb-install.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

meson install -C "$build_dir" --destdir "$scratch/root" --no-rebuild --quiet
pc=$(find "$scratch/root" -name distdb.pc | head -n 1)
[[ -n "$pc" ]] || { echo "no distdb.pc installed" >&2; exit 1; }
[[ -f "$(dirname "$pc")/../../include/distdb/distdb.hpp" || -n "$(find "$scratch/root" -path '*/include/distdb/distdb.hpp')" ]] \
  || { echo "public headers not installed" >&2; exit 1; }
libdir=$(dirname "$(dirname "$pc")")

export PKG_CONFIG_PATH="$(dirname "$pc")"
meson setup "$scratch/host-build" "$source_dir/examples/standalone" >/dev/null
ninja -C "$scratch/host-build" >/dev/null
out=$(LD_LIBRARY_PATH="$libdir" "$scratch/host-build/host_app" "$scratch")
echo "$out"
[[ "$out" == "answer=42" ]]

# The tools' translations are installed beside them and found relative to the
# executable, wherever the tree was copied to.
mo=$(find "$scratch/root" -path '*/share/locale/pt/LC_MESSAGES/distdb.mo' | head -n 1)
cli=$(find "$scratch/root" -path '*/bin/distdb-cli' | head -n 1)
if [[ -n "$cli" && -n "$mo" ]]; then
  help=$(env -u LC_ALL -u LC_MESSAGES -u LANGUAGE -u DISTDB_LOCALEDIR LANG=pt_BR.UTF-8 \
    LD_LIBRARY_PATH="$libdir" "$cli" --help)
  grep -q "Executa estes comandos SQL" <<<"$help" || { echo "installed distdb-cli does not find its catalog" >&2; exit 1; }
  echo "translations: found beside the installed tools"
elif [[ -n "$cli" ]]; then
  echo "translations: not built (nls disabled or msgfmt missing)"
fi
