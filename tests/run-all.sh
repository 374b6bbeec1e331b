#!/usr/bin/env bash
# Every test hsmkit has. Installs what it needs (needs root or sudo for apt-get), then
# runs fmt, clippy, docs and the whole test suite. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step starts with the time since the start (bash's SECONDS), so a slow step shows.
say() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

apt_install() {
    local missing=()
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    say "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

apt_install openssl softhsm2 opensc gcc pkg-config valgrind libp11-kit-dev
# The second real token (tests/tpm2/token.sh installs the same if missing).
apt_install libtpm2-pkcs11-1 libtpm2-pkcs11-tools swtpm swtpm-tools tpm2-tools tpm2-abrmd libtss2-tcti-tabrmd0 dbus
# pyca/cryptography: the independent reader of the envelope vectors.
if ! python3 -c 'import cryptography' 2>/dev/null; then
    say "pip install cryptography"
    python3 -m pip install --quiet cryptography || python3 -m pip install --quiet --break-system-packages cryptography
fi
# PyJWT and joserfc: the independent JOSE implementations of the JWT interop test (cli.rs jwt_*).
if ! python3 -c 'import jwt, joserfc' 2>/dev/null; then
    say "pip install pyjwt joserfc"
    python3 -m pip install --quiet pyjwt joserfc || python3 -m pip install --quiet --break-system-packages pyjwt joserfc
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

say "supply chain: cargo deny check licenses bans sources (advisories: see SECURITY.md)"
command -v cargo-deny >/dev/null 2>&1 || cargo install cargo-deny --locked --quiet
cargo deny --log-level error check licenses bans sources

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

say "cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

say "cargo test --workspace"
# Test tokens live under target/softhsm (see .cargo/config.toml); start from none, so a
# crashed earlier run cannot leave tokens behind.
rm -rf target/softhsm target/xdg
# --nocapture so the per-set Wycheproof counts appear in the log.
cargo test --workspace --locked -- --nocapture

say "conformance on tpm2-pkcs11 (swtpm + tpm2-abrmd), single-threaded, bounded"
# Not in `cargo test --workspace` (`test = false` in crates/hsmkit-pkcs11/Cargo.toml):
# tpm2-pkcs11 shares one SQLite handle between tokens and does not serialise its
# transactions, so concurrent tests can fail with "cannot start a transaction within a
# transaction"; one thread avoids it. tests/tpm2/token.sh (run by the rig) installs swtpm,
# tpm2-abrmd and libtpm2-pkcs11-1; `timeout` bounds the whole step.
timeout --kill-after=30 1800 cargo test --locked -p hsmkit-pkcs11 --test conformance_tpm2 -- --test-threads=1

say "benches: every case once (criterion's test mode; the figures come from benches/run.sh)"
cargo test --locked -p hsmkit-benches --benches

say "Python: pip install ./bindings/python into a fresh venv"
# The wheel is built by maturin (fetched by pip as the PEP 517 backend), as a user would.
rm -rf target/py-venv
python3 -m venv target/py-venv
PY=target/py-venv/bin/python
$PY -m pip install --quiet --upgrade pip
$PY -m pip install --quiet ./bindings/python
$PY -m pip install --quiet pytest cryptography mypy pyjwt

say "Python: mypy.stubtest (stubs against the installed module)"
(cd target && py-venv/bin/python -m mypy.stubtest hsmkit && py-venv/bin/python -m mypy --strict -p hsmkit)

say "Python: pytest (keystore and SoftHSM2, pyca interop, threads, rig)"
# SOFTHSM2_CONF unset: hsmkit.testing gives the process a private token directory.
env -u SOFTHSM2_CONF $PY -m pytest -q -p no:cacheprovider bindings/python/tests

say "C ABI: header drift, C tests under valgrind and ASan, the README's C example"
tests/c/run.sh

say "envelope vectors, read by pyca/cryptography"
python3 tests/interop/envelope_pyca.py

say "fuzz: 10 targets, 15 s each (FUZZ_SECONDS)"
FUZZ_SECONDS="${FUZZ_SECONDS:-15}" tests/fuzz.sh

say "all passed"
