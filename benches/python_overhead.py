"""Python per-call cost: hsmkit's Python binding against the same call in Rust (criterion's
median from benches/run.sh, same machine) and against pyca/cryptography (OpenSSL).
Run by benches/run.sh with the venv that tests/run-all.sh builds; prints a Markdown table."""

from __future__ import annotations

import json
import statistics
import sys
import timeit
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

import hsmkit

crit = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("target/criterion")
MSG = b"The quick brown fox jumps over the lazy dog, 64 bytes of message."


def median_us(fn, number: int) -> float:
    # The median of 15 repeats, to compare with criterion's median (a best-of-N against
    # a median would flatter Python); RSA's ±10% run-to-run drift needs the repeats.
    return statistics.median(timeit.repeat(fn, number=number, repeat=15)) / number * 1e6


def rust_us(group: str) -> float | None:
    p = crit / group / "hsmkit soft aws-lc" / "new" / "estimates.json"
    return json.loads(p.read_text())["median"]["point_estimate"] / 1000 if p.exists() else None


store = hsmkit.open("memory:")
rsa_key = store.create_key("rsa", "rsa", size=2048, exportable=True)
ec_key = store.create_key("ec", "ec", curve="P-256", exportable=True)
store.create_key("kek", "aes")
pyca_rsa = serialization.load_der_private_key(rsa_key.export_key(), None)
pyca_ec = serialization.load_der_private_key(ec_key.export_key(), None)
kib = bytes(1024)

rows = [
    ("RSA-2048 sign RS256", lambda: rsa_key.sign("RS256", MSG),
     lambda: pyca_rsa.sign(MSG, padding.PKCS1v15(), hashes.SHA256()), 200, "RSA-2048 sign RS256"),
    ("ECDSA P-256 sign", lambda: ec_key.sign("ES256", MSG),
     lambda: pyca_ec.sign(MSG, ec.ECDSA(hashes.SHA256())), 2000, "ECDSA P-256 sign"),
    ("envelope seal 1 KiB", lambda: store.seal("kek", kib), None, 2000, None),
]
print("| operation | hsmkit from Python | same call in Rust | Python overhead | pyca/cryptography | hsmkit / pyca time |")
print("|---|---|---|---|---|---|")
for name, fn, ref, n, group in rows:
    py = median_us(fn, n)
    rs = rust_us(group) if group else None
    pc = median_us(ref, n) if ref else None
    over = "—" if rs is None else f"{py - rs:+.2f} µs ({(py / rs - 1) * 100:+.1f}%)"
    print(
        f"| {name} | {py:.2f} µs | {'—' if rs is None else f'{rs:.2f} µs'} | {over} | "
        f"{'—' if pc is None else f'{pc:.2f} µs'} | {'—' if pc is None else f'{py / pc:.2f}x'} |"
    )
