"""Writes the operation table into BENCHMARKS.md from criterion's estimates and
`openssl speed` output. Usage: report.py CRITERION_DIR OPENSSL_SPEED_TXT BENCHMARKS_MD"""

import datetime
import json
import platform
import re
import subprocess
import sys
from pathlib import Path

crit, speed_file, md = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])

GROUPS = [
    "RSA-2048 generate",
    "RSA-2048 sign RS256",
    "RSA-2048 verify RS256",
    "RSA-3072 sign RS256",
    "RSA-3072 verify RS256",
    "RSA-2048 decrypt RSA-OAEP-256",
    "RSA-2048 decrypt RSA-OAEP",
    "ECDSA P-256 sign",
    "ECDSA P-256 verify",
    "AES-256 unwrap A256KW",
    "ECDSA P-384 sign",
    "ECDSA P-384 verify",
    "ECDSA P-521 sign",
    "ECDSA P-521 verify",
]


def median_ns(group: str, name: str):
    p = crit / group.replace("/", "_") / name.replace("/", "_") / "new" / "estimates.json"
    if not p.exists():
        return None
    return json.loads(p.read_text())["median"]["point_estimate"]


def openssl_rates():
    rates = {}
    for line in speed_file.read_text().splitlines():
        nums = [float(x) for x in re.findall(r"\d+\.\d+", line)]
        m = re.match(r"\s*rsa\s+(\d+) bits", line)
        if m and nums:
            half = len(nums) // 2  # times, then the same count of rates
            r = nums[half:]
            rates[f"RSA-{m.group(1)} sign RS256"] = r[0]
            rates[f"RSA-{m.group(1)} verify RS256"] = r[1]
            if len(r) >= 4:
                rates[f"RSA-{m.group(1)} decrypt RSA-OAEP-256"] = r[3]
        m = re.search(r"ecdsa \(nistp(\d+)\)", line)
        if m and len(nums) >= 4:
            rates[f"ECDSA P-{m.group(1)} sign"] = nums[2]
            rates[f"ECDSA P-{m.group(1)} verify"] = nums[3]
    return rates


def fmt_rate(ns):
    if ns is None:
        return "—"
    r = 1e9 / ns
    return f"{r/1000:.1f}k/s" if r >= 10000 else f"{r:.0f}/s"


def ratio(a, b):
    return "—" if a is None or b is None else f"{b / a:.2f}x"


ossl = openssl_rates()
rows = []
for g in GROUPS:
    h_rc = median_ns(g, "hsmkit soft rustcrypto")
    r_rc = median_ns(g, "raw rustcrypto")
    h_aws = median_ns(g, "hsmkit soft aws-lc")
    r_aws = median_ns(g, "raw aws-lc-rs")
    h_p11 = median_ns(g, "hsmkit pkcs11 softhsm2")
    r_p11 = median_ns(g, "raw cryptoki softhsm2")
    h_aws2 = median_ns(g, "hsmkit soft aws-lc x2 threads")
    o = ossl.get(g)
    rows.append(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            g,
            f"{o:.0f}/s" if o and o < 10000 else (f"{o/1000:.1f}k/s" if o else "—"),
            fmt_rate(h_aws),
            "—" if not (o and h_aws) else f"**{(1e9 / h_aws) / o:.2f}x**",
            ratio(h_aws, r_aws),
            "—" if h_aws2 is None or h_aws is None else f"{h_aws / h_aws2:.2f}x",
            fmt_rate(h_rc),
            ratio(h_rc, r_rc),
            fmt_rate(h_p11),
            ratio(h_p11, r_p11),
            fmt_rate(median_ns(g, "hsmkit pkcs11 softhsm2 x2 threads")),
        )
    )

ossl_version = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), platform.machine())
table = f"""<!-- ops-table: written by benches/run.sh -->
Measured {datetime.date.today()} on {cpu} ({platform.machine()}), {rustc}, {ossl_version}, aws-lc-rs 1.19, rsa 0.10 / p256 0.14, SoftHSM2 2.6.1. Short run (criterion medians, 2 s per case).
Ratios are hsmkit's rate over the reference's rate **in the same run**: 1.00x is no overhead.

| operation | OpenSSL speed | hsmkit soft aws-lc | vs OpenSSL | vs raw aws-lc-rs | 2 threads / 1 | hsmkit soft rustcrypto | vs raw RustCrypto | hsmkit SoftHSM2 | vs raw cryptoki | SoftHSM2 2 threads |
|---|---|---|---|---|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n<!-- /ops-table -->"

text = md.read_text()
if "<!-- ops-table" in text:
    text = re.sub(r"<!-- ops-table.*?<!-- /ops-table -->", lambda _: table, text, flags=re.S)
else:
    text += "\n## Operations (issue 9)\n\n`benches/run.sh` (`benches/benches/ops.rs`).\n\n" + table + "\n"
md.write_text(text)
