#!/usr/bin/env bash
# A throw-away tpm2-pkcs11 token on a software TPM, for hsmkit's tests.
#
#   tests/tpm2/token.sh start DIR [LABEL]   start swtpm + a private D-Bus + tpm2-abrmd,
#                                           make a tpm2-pkcs11 store with one token in DIR,
#                                           print KEY=VALUE lines to export
#   tests/tpm2/token.sh stop DIR            stop everything `start DIR` started
#
# With HSMKIT_TPM2_WATCH_PID=PID, `start` also leaves a watcher that runs `stop DIR` (and,
# with HSMKIT_TPM2_WATCH_RM=1, removes DIR) once process PID is gone, so a killed test
# process leaves nothing running. The watcher gives up after 12 hours.
#
# The label is LABEL, else $HSMKIT_TPM2_LABEL, else "hsmkit-tpm2". User PIN 1234, SO PIN 5678.
# Everything (TPM state, bus socket, logs, pid files, the store) lives in DIR.
#
# Why a resource manager: swtpm holds only three transient objects, and tpm2_ptool /
# libtpm2_pkcs11 load more than that at once; talking to swtpm directly fails with
# TPM_RC_OBJECT_MEMORY (0x902). tpm2-abrmd swaps objects in and out. It wants D-Bus, and
# a private session bus keeps parallel runs (and the machine's system bus) apart.
# tpm2-abrmd takes at most 100 connections and libtpm2_pkcs11 holds one per token, so a
# process can use at most ~98 tokens of one store.
set -euo pipefail

PACKAGES=(libtpm2-pkcs11-1 libtpm2-pkcs11-tools swtpm swtpm-tools tpm2-tools tpm2-abrmd libtss2-tcti-tabrmd0 dbus)
USER_PIN=1234
SO_PIN=5678

die() { echo "token.sh: $*" >&2; exit 1; }

module_path() {
    local m
    for m in /usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so \
             /usr/lib/aarch64-linux-gnu/pkcs11/libtpm2_pkcs11.so \
             /usr/lib/x86_64-linux-gnu/libtpm2_pkcs11.so.1 \
             /usr/lib/aarch64-linux-gnu/libtpm2_pkcs11.so.1 \
             /usr/lib/pkcs11/libtpm2_pkcs11.so \
             /usr/local/lib/libtpm2_pkcs11.so; do
        [ -f "$m" ] && { echo "$m"; return 0; }
    done
    return 1
}

ensure_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
    # Bounded: a stuck apt lock must not hang the caller forever.
    if ! timeout 600 "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" \
            >"$DIR/apt.log" 2>&1; then
        timeout 300 "${sudo[@]}" apt-get update -qq >>"$DIR/apt.log" 2>&1 || true
        timeout 600 "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" \
            >>"$DIR/apt.log" 2>&1 || die "cannot install ${missing[*]} (see $DIR/apt.log)"
    fi
}

# Is TCP port $1 on 127.0.0.1 free (nobody listening)?
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits up to $2 tenths of a second for the command "$3..." to succeed.
wait_for() {
    local what=$1 tenths=$2; shift 2
    local i
    for ((i = 0; i < tenths; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "timed out waiting for $what (logs in $DIR)"
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_swtpm() {
    mkdir -p "$DIR/tpmstate"
    local try base
    for try in 1 2 3 4 5 6 7 8 9 10; do
        # Spread by pid and attempt over 20000..59999, two ports per run.
        base=$(( 20000 + ( ($$ * 7 + RANDOM + try * 131) % 20000 ) * 2 ))
        port_free "$base" && port_free $((base + 1)) || continue
        rm -f "$DIR/swtpm.pid"
        if swtpm socket --tpm2 \
                --tpmstate "dir=$DIR/tpmstate" \
                --server "type=tcp,port=$base,bindaddr=127.0.0.1" \
                --ctrl "type=tcp,port=$((base + 1)),bindaddr=127.0.0.1" \
                --flags not-need-init,startup-clear \
                --pid "file=$DIR/swtpm.pid" \
                --log "file=$DIR/swtpm.log" \
                --daemon >>"$DIR/swtpm.log" 2>&1; then
            # --daemon returns once the sockets are bound and the pid file is written.
            wait_for "swtpm pid file" 50 test -s "$DIR/swtpm.pid"
            echo "$base" >"$DIR/swtpm.port"
            return 0
        fi
    done
    die "could not start swtpm on a free port (see $DIR/swtpm.log)"
}

start_dbus() {
    local out
    out=$(timeout 10 dbus-daemon --session --fork --nopidfile \
        --address="unix:path=$DIR/bus" --print-address=1 --print-pid=1 2>"$DIR/dbus.log") \
        || die "dbus-daemon did not start (see $DIR/dbus.log)"
    # Two lines: the address, then the pid.
    echo "$out" | sed -n 1p >"$DIR/dbus.address"
    echo "$out" | sed -n 2p >"$DIR/dbus.pid"
    [ -s "$DIR/dbus.address" ] && [ -s "$DIR/dbus.pid" ] || die "dbus-daemon printed no address/pid"
}

start_abrmd() {
    local port
    port=$(cat "$DIR/swtpm.port")
    local root=()
    [ "$(id -u)" -eq 0 ] && root=(--allow-root)
    DBUS_SESSION_BUS_ADDRESS=$(cat "$DIR/dbus.address") \
        setsid tpm2-abrmd --session "${root[@]}" --flush-all --max-connections=100 --max-transients=100 \
        --tcti="swtpm:host=127.0.0.1,port=$port" \
        </dev/null >"$DIR/abrmd.log" 2>&1 &
    echo $! >"$DIR/abrmd.pid"
    # Ready once its name is on the bus.
    wait_for "tpm2-abrmd on the bus" 100 abrmd_ready
}

abrmd_ready() {
    pid_alive "$DIR/abrmd.pid" || die "tpm2-abrmd exited (see $DIR/abrmd.log)"
    DBUS_SESSION_BUS_ADDRESS=$(cat "$DIR/dbus.address") timeout 5 dbus-send --session --print-reply \
        --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner \
        string:com.intel.tss2.Tabrmd 2>/dev/null | grep -q 'boolean true'
}

make_store() {
    local label=$1
    mkdir -p "$DIR/store"
    export TPM2_PKCS11_STORE="$DIR/store"
    export DBUS_SESSION_BUS_ADDRESS
    DBUS_SESSION_BUS_ADDRESS=$(cat "$DIR/dbus.address")
    export TPM2TOOLS_TCTI="tabrmd:bus_type=session"
    export TPM2_PKCS11_TCTI="tabrmd:bus_type=session"
    timeout 120 tpm2_ptool init --path "$DIR/store" >"$DIR/ptool.log" 2>&1 \
        || die "tpm2_ptool init failed (see $DIR/ptool.log)"
    timeout 120 tpm2_ptool addtoken --pid=1 --label="$label" --userpin="$USER_PIN" --sopin="$SO_PIN" \
        --path "$DIR/store" >>"$DIR/ptool.log" 2>&1 \
        || die "tpm2_ptool addtoken failed (see $DIR/ptool.log)"
}

# Sends TERM to the pid in file $1, waits up to $2 tenths of a second (default 30), then KILL.
kill_pidfile() {
    local f=$1 tenths=${2:-30} pid i
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < tenths; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}

cmd_start() {
    local label=${1:-${HSMKIT_TPM2_LABEL:-hsmkit-tpm2}}
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    ensure_packages
    local module
    # A module given by the caller wins (e.g. OpenSC's pkcs11-spy.so in front of it).
    module=${HSMKIT_TPM2_MODULE:-}
    [ -n "$module" ] || module=$(module_path) || die "libtpm2_pkcs11.so not found after installing libtpm2-pkcs11-1"
    # Whatever fails below, leave nothing running.
    trap 'rc=$?; [ "$rc" -eq 0 ] || cmd_stop >/dev/null 2>&1' EXIT
    trap 'exit 1' INT TERM
    start_swtpm
    start_dbus
    start_abrmd
    make_store "$label"
    trap - EXIT INT TERM
    echo "$label" >"$DIR/label"
    start_watcher
    {
        echo "HSMKIT_TPM2_MODULE=$module"
        echo "HSMKIT_TPM2_LABEL=$label"
        echo "TPM2_PKCS11_STORE=$DIR/store"
        echo "TPM2_PKCS11_TCTI=tabrmd:bus_type=session"
        echo "TPM2TOOLS_TCTI=tabrmd:bus_type=session"
        echo "DBUS_SESSION_BUS_ADDRESS=$(cat "$DIR/dbus.address")"
        echo "TSS2_LOG=all+NONE"
    } | tee "$DIR/env"
}

start_watcher() {
    local pid=${HSMKIT_TPM2_WATCH_PID:-}
    [ -n "$pid" ] || return 0
    local rm=${HSMKIT_TPM2_WATCH_RM:-0} self
    self=$(readlink -f "$0")
    setsid bash -c '
        pid=$1 self=$2 dir=$3 rm=$4
        for ((i = 0; i < 43200; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        HSMKIT_TPM2_IN_WATCHER=1 "$self" stop "$dir"
        [ "$rm" = 1 ] && rm -rf "$dir"
    ' watcher "$pid" "$self" "$DIR" "$rm" </dev/null >/dev/null 2>&1 &
    echo $! >"$DIR/watcher.pid"
}

cmd_stop() {
    DIR=$(cd "$DIR" 2>/dev/null && pwd) || return 0
    # Not the watcher when it is the one stopping.
    [ -n "${HSMKIT_TPM2_IN_WATCHER:-}" ] || kill_pidfile "$DIR/watcher.pid"
    # tpm2-abrmd can take seconds to act on TERM; nothing of it needs keeping.
    kill_pidfile "$DIR/abrmd.pid" 5
    kill_pidfile "$DIR/dbus.pid"
    if [ -f "$DIR/swtpm.pid" ]; then
        # Ask swtpm nicely over its control channel, then signal it.
        [ -f "$DIR/swtpm.port" ] && timeout 3 swtpm_ioctl --tcp "127.0.0.1:$(( $(cat "$DIR/swtpm.port") + 1 ))" -s \
            >/dev/null 2>&1 || true
        kill_pidfile "$DIR/swtpm.pid"
    fi
    rm -f "$DIR/bus"
}

[ $# -ge 2 ] || die "usage: $0 start DIR [LABEL] | stop DIR"
DIR=$2
case $1 in
    start) cmd_start "${3:-}" ;;
    stop) cmd_stop ;;
    *) die "usage: $0 start DIR [LABEL] | stop DIR" ;;
esac
