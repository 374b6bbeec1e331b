#!/usr/bin/env bash
# A run of every bench (benches/benches/{ops,envelope}.rs) and `openssl speed` on the
# same machine, written as tables of ratios into BENCHMARKS.md (between the markers).
#   benches/run.sh                short: ~12 minutes, 2 s per case
#   MEASURE=10 benches/run.sh     long: ~45 minutes, steadier
#   BENCHES=envelope benches/run.sh   one bench only
# Run it on an otherwise idle machine: a compile beside it moves every figure.
set -euo pipefail
cd "$(dirname "$0")/.."
MEASURE="${MEASURE:-2}"
export MEASURE
# glibc hands big freed blocks back to the kernel, and the first touch of such memory is
# slow on these machines: a one-shot call that returns a new 256 MiB buffer would measure
# page faults. Keep freed memory in the process (no mmap'd blocks, no trimming), for the
# references and hsmkit alike.
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=17179869184
benches="${BENCHES:-ops envelope}"
for b in $benches; do
    case $b in
    ops) rm -rf target/criterion/RSA-* target/criterion/ECDSA* target/criterion/AES-* target/criterion/Ed25519* target/criterion/HMAC* ;;
    envelope) rm -rf target/criterion/envelope* ;;
    esac
    cargo bench --locked -p hsmkit-benches --bench "$b" -- --warm-up-time 0.5 --measurement-time "$MEASURE" --noplot >/dev/null
done
{
    openssl speed -seconds 2 rsa2048 rsa3072 ecdsap256 ecdsap384 ecdsap521 ed25519 2>/dev/null
    for n in 1024 1048576; do openssl speed -seconds 2 -bytes "$n" -evp aes-256-gcm 2>/dev/null; done
} >target/openssl-speed.txt
python3 benches/report.py target/criterion target/openssl-speed.txt BENCHMARKS.md
# Python per-call cost, with the venv tests/run-all.sh builds (wheel + cryptography).
if [ -x target/py-venv/bin/python ]; then
    target/py-venv/bin/python benches/python_overhead.py target/criterion >target/python-overhead.md
    python3 benches/markers.py BENCHMARKS.md python target/python-overhead.md "## Python per-call cost (issue 9)

hsmkit's binding on the aws-lc engine (\`memory:\` store), median of 15 \`timeit\` repeats, against the same call in Rust (criterion, same run) and pyca/cryptography 48 (OpenSSL)."
fi
# hsmkit's envelope from Python against Tink and the AWS Encryption SDK (issue 24).
if [ -x target/py-venv/bin/python ]; then
    target/py-venv/bin/python -m pip install --quiet tink aws-encryption-sdk
    target/py-venv/bin/python benches/python_peers.py BENCHMARKS.md >/dev/null
fi
echo "BENCHMARKS.md updated"
