#!/usr/bin/env bash
# A short run of every operation bench (benches/benches/ops.rs) and `openssl speed` on the
# same machine, written as a table of ratios into BENCHMARKS.md (between the markers).
#   benches/run.sh            ~3 minutes
#   MEASURE=10 benches/run.sh longer, steadier
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf target/criterion/RSA-* target/criterion/ECDSA*
cargo bench --locked -p hsmkit-benches --bench ops -- --warm-up-time 0.5 --measurement-time "${MEASURE:-2}" --noplot >/dev/null
openssl speed -seconds 2 rsa2048 rsa3072 ecdsap256 ecdsap384 ecdsap521 2>/dev/null >target/openssl-speed.txt
python3 benches/report.py target/criterion target/openssl-speed.txt BENCHMARKS.md
# Python per-call cost, with the venv tests/run-all.sh builds (wheel + cryptography).
if [ -x target/py-venv/bin/python ]; then
    target/py-venv/bin/python benches/python_overhead.py target/criterion >target/python-overhead.md
    python3 - <<'PY'
import re
from pathlib import Path
md = Path("BENCHMARKS.md")
table = "<!-- python-table: written by benches/run.sh -->\n" + Path("target/python-overhead.md").read_text() + "<!-- /python-table -->"
text = md.read_text()
if "<!-- python-table" in text:
    text = re.sub(r"<!-- python-table.*?<!-- /python-table -->", lambda _: table, text, flags=re.S)
else:
    text += "\n## Python per-call cost (issue 9)\n\nhsmkit's binding on the aws-lc engine (`memory:` store), best of 5 `timeit` repeats, against the same call in Rust (criterion, same run) and pyca/cryptography 48 (OpenSSL).\n\n" + table + "\n"
md.write_text(text)
PY
fi
echo "BENCHMARKS.md updated"
