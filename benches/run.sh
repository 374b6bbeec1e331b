#!/usr/bin/env bash
# A short run of every operation bench (benches/benches/ops.rs) and `openssl speed` on the
# same machine, written as a table of ratios into BENCHMARKS.md (between the markers).
#   benches/run.sh            ~3 minutes
#   MEASURE=10 benches/run.sh longer, steadier
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf target/criterion/RSA-* target/criterion/ECDSA*
cargo bench --locked -p hsmkit-benches --bench ops -- --warm-up-time 0.5 --measurement-time "${MEASURE:-2}" --noplot >/dev/null
openssl speed -seconds 2 rsa2048 rsa3072 ecdsap256 ecdsap384 2>/dev/null >target/openssl-speed.txt
python3 benches/report.py target/criterion target/openssl-speed.txt BENCHMARKS.md
echo "BENCHMARKS.md updated"
