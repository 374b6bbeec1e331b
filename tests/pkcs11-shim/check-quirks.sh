#!/bin/sh
# Builds the shim and quirks_check.c, makes a throw-away SoftHSM2 token in a private
# token directory, and runs the quirk checks through the shim. Needs softhsm2 and
# libp11-kit-dev. Exit status: the number of failed checks.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
module=${HSMKIT_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$dir" >"$dir/softhsm2.conf"
export SOFTHSM2_CONF="$dir/softhsm2.conf"
softhsm2-util --init-token --free --label quirks --pin 1234 --so-pin 5678 >/dev/null
cflags="-Wall -Wextra -Werror $(pkg-config --cflags p11-kit-1)"
cc -shared -fPIC -O1 $cflags -DSHIM_TARGET="\"$module\"" -DSHIM_CONFIG="\"$dir/faults\"" \
    "$here/shim.c" -o "$dir/shim.so" -ldl -lpthread
cc -O1 $cflags "$here/quirks_check.c" -o "$dir/quirks_check" -ldl
"$dir/quirks_check" "$dir/shim.so" "$dir/faults" quirks 1234
