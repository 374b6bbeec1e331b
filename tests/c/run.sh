#!/usr/bin/env bash
# The C ABI: the committed header matches cbindgen's output; the C tests build with
# -Wall -Wextra -Werror and pass under valgrind (leaks are errors) and under
# AddressSanitizer, on an in-memory store, an encrypted keystore and a SoftHSM2 token; the
# README's example builds with its one gcc line and prints what the README shows.
#   tests/c/run.sh               check everything
#   tests/c/run.sh --regenerate  rewrite include/hsmkit.h
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
say() { printf '\n--> %s\n' "$*"; }

CBINDGEN_VERSION=0.29.4
if ! cbindgen --version 2>/dev/null | grep -qx "cbindgen $CBINDGEN_VERSION"; then
    say "cargo install cbindgen $CBINDGEN_VERSION"
    cargo install cbindgen --version "$CBINDGEN_VERSION" --locked --quiet
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

generate() { (cd crates/hsmkit-ffi && cbindgen --quiet --config cbindgen.toml --output "$1"); }
if [ "${1:-}" = "--regenerate" ]; then
    generate "$root/include/hsmkit.h"
    echo "wrote include/hsmkit.h"
    exit 0
fi

say "header drift: include/hsmkit.h against cbindgen $CBINDGEN_VERSION"
generate "$tmp/hsmkit.h"
if ! diff -u include/hsmkit.h "$tmp/hsmkit.h"; then
    echo "include/hsmkit.h is stale: run tests/c/run.sh --regenerate and commit it" >&2
    exit 1
fi

say "cargo build --release -p hsmkit-ffi"
cargo build --release --locked --quiet -p hsmkit-ffi
lib="$root/target/release"

CFLAGS=(-std=c11 -Wall -Wextra -Werror -Wpedantic -g -Iinclude)
LIBS=(-L"$lib" -Wl,-rpath,"$lib" -lhsmkit_ffi -lpthread)
gcc "${CFLAGS[@]}" tests/c/test_api.c -o "$tmp/test_api" "${LIBS[@]}"
gcc "${CFLAGS[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer tests/c/test_api.c \
    -o "$tmp/test_api_asan" "${LIBS[@]}"

# A private SoftHSM2 configuration and token for this run.
export SOFTHSM2_CONF="$tmp/softhsm2.conf"
mkdir "$tmp/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$tmp/tokens" >"$SOFTHSM2_CONF"
softhsm2-util --init-token --free --label hsmkit-c --pin 1234 --so-pin 5678 >/dev/null
module=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
    /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so; do
    [ -f "$m" ] && module=$m && break
done
[ -n "$module" ] || { echo "SoftHSM2 module not found" >&2; exit 1; }

valgrind_run() {
    valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --suppressions=tests/c/valgrind.supp "$@"
}

n=0
run() { # TOOL URI [PASSPHRASE]
    local tool=$1 uri=$2 pass=${3:-}
    n=$((n + 1))
    local scratch="$tmp/scratch$n"
    mkdir "$scratch"
    local target="$uri"
    [ "$uri" = "KEYSTORE" ] && target="file://$scratch/store"
    say "$tool: test_api on ${target%%\?*}"
    case $tool in
        valgrind) HSMKIT_TEST_PASSPHRASE=$pass valgrind_run "$tmp/test_api" "$target" "$scratch" ;;
        asan) HSMKIT_TEST_PASSPHRASE=$pass ASAN_OPTIONS=detect_leaks=1 "$tmp/test_api_asan" "$target" "$scratch" ;;
    esac
}

run valgrind memory:
run valgrind KEYSTORE "c test passphrase"
run valgrind "pkcs11:token=hsmkit-c?module-path=$module"
run asan memory:
run asan KEYSTORE "c test passphrase"

say "examples/c/quickstart.c, built with the README's line"
line=$(grep -m1 '^gcc examples/c/quickstart.c' README.md)
(cd "$tmp" && cp -r "$root/examples" "$root/include" "$root/hsmkit.pc" . && mkdir -p target &&
    ln -s "$lib" target/release && eval "$line" && ./quickstart >quickstart.out)
# The README shows the output; it is deterministic (key order, lengths, names).
sed -n '/^<!-- quickstart-output -->/,/^```$/p' README.md | sed '1,2d;$d' >"$tmp/expected.out"
diff -u "$tmp/expected.out" "$tmp/quickstart.out"
echo "C ABI: all checks passed"
