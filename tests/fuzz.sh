#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (default 60 s each; FUZZ_SECONDS to change;
# FUZZ_TARGETS to pick), starting from the seeds in fuzz/seeds (fuzz/seeds/make_seeds.py
# writes the non-envelope ones). Needs the nightly toolchain; installs
# cargo-fuzz from crates.io if it is missing. A crash fails the run and leaves the input in
# fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${FUZZ_SECONDS:-60}"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz: the nightly toolchain is required (rustup toolchain install nightly)" >&2
    exit 1
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
targets="${FUZZ_TARGETS:-envelope_header envelope_open key_import parse_text verify unwrap c_abi x509_parse jws_parse pkcs12_parse}"
cargo +nightly fuzz build --fuzz-dir fuzz >/dev/null 2>&1 || cargo +nightly fuzz build --fuzz-dir fuzz
for target in $targets; do
    corpus="target/fuzz-corpus/$target"
    mkdir -p "$corpus"
    echo "==> fuzz $target for ${secs}s"
    log="target/fuzz-$target.log"
    status=0
    cargo +nightly fuzz run --fuzz-dir fuzz "$target" "$corpus" "fuzz/seeds/$target" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=$?
    # The progress lines are many; show the summary, or everything on failure.
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log"
        echo "fuzz: $target failed (exit $status); the input is in fuzz/artifacts/$target/" >&2
        exit "$status"
    fi
    grep -E "DONE|^Done|stat::number_of_executed_units" "$log"
done
