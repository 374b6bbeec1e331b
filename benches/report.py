"""Writes the operation and envelope tables into BENCHMARKS.md from criterion's estimates
and `openssl speed` output. Usage: report.py CRITERION_DIR OPENSSL_SPEED_TXT BENCHMARKS_MD"""

import datetime
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

from markers import put_table

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
    "ECDSA P-256K sign",
    "ECDSA P-256K verify",
    "Ed25519 sign",
    "Ed25519 verify",
    "HMAC HS256 sign",
    "HMAC HS256 verify",
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
        if re.search(r"EdDSA \(Ed25519\)", line) and len(nums) >= 4:
            rates["Ed25519 sign"] = nums[2]
            rates["Ed25519 verify"] = nums[3]
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
Measured {datetime.date.today()} on {cpu} ({platform.machine()}), {rustc}, {ossl_version}, aws-lc-rs 1.19, rsa 0.10 / p256 0.14, SoftHSM2 2.6.1. {"Short" if float(os.environ.get("MEASURE", "2")) < 5 else "Long"} run (criterion medians, {os.environ.get("MEASURE", "2")} s per case).
Ratios are hsmkit's rate over the reference's rate **in the same run**: 1.00x is no overhead.

| operation | OpenSSL speed | hsmkit soft aws-lc | vs OpenSSL | vs raw aws-lc-rs | 2 threads / 1 | hsmkit soft rustcrypto | vs raw RustCrypto | hsmkit SoftHSM2 | vs raw cryptoki | SoftHSM2 2 threads |
|---|---|---|---|---|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n<!-- /ops-table -->"

text = put_table(md.read_text(), "ops", table, "## Operations (issue 9)\n\n`benches/run.sh` (`benches/benches/ops.rs`).")


def gcm_rates():
    """OpenSSL's AES-256-GCM bytes/s per block size, from `openssl speed -evp` runs."""
    rates = {}
    size = None
    for line in speed_file.read_text().splitlines():
        m = re.match(r"type\s+(\d+) bytes", line.strip())
        if m:
            size = int(m.group(1))
        m = re.match(r"\s*aes-256-gcm\s+.*?([\d.]+)k\s*$", line, re.I)
        if m and size:
            rates[size] = float(m.group(1)) * 1000
    return rates


def gbs(size, ns):
    return "—" if ns is None else f"{size / ns:.2f} GB/s"


def envelope_table():
    sizes = [("1KiB", "1 KiB", 1 << 10), ("64KiB", "64 KiB", 64 << 10), ("1MiB", "1 MiB", 1 << 20),
             ("256MiB", "256 MiB", 256 << 20)]
    engines = [("aws-lc", "raw aws-lc-rs", "aws-lc"), ("rustcrypto", "raw rustcrypto", "RustCrypto"),
               ("pkcs11 softhsm2", "raw aws-lc-rs", "SoftHSM2 KEK (aws-lc GCM)")]
    if not (crit / "envelope 1MiB").exists():
        return None
    rows, threads = [], []
    for eng, raw, title in engines:
        for key, label, size in sizes:
            g = f"envelope {key}"
            enc, dec = median_ns(g, f"{raw} encrypt"), median_ns(g, f"{raw} decrypt")
            ss, so = median_ns(g, f"seal stream {eng}"), median_ns(g, f"seal {eng}")
            os_, oo = median_ns(g, f"open stream {eng}"), median_ns(g, f"open {eng}")
            si, oi = median_ns(g, f"seal into {eng}"), median_ns(g, f"open into {eng}")
            if enc is None or (ss is None and so is None):
                continue
            s2, o2 = median_ns(g, f"seal stream {eng} x2 threads"), median_ns(g, f"open stream {eng} x2 threads")
            if s2 and o2 and ss and os_:
                threads.append(f"{title} {label}: seal stream {ss / s2:.2f}x, open stream {os_ / o2:.2f}x")
            bold = lambda r: r if size < 64 << 10 or r == "—" else f"**{r}**"
            rows.append("| " + " | ".join([
                title, label, gbs(size, enc),
                gbs(size, ss), bold(ratio(ss, enc)), gbs(size, so), bold(ratio(so, enc)),
                gbs(size, si), bold(ratio(si, enc)),
                gbs(size, dec),
                gbs(size, os_), bold(ratio(os_, dec)), gbs(size, oo), bold(ratio(oo, dec)),
                gbs(size, oi), bold(ratio(oi, dec)),
            ]) + " |")
    ossl = gcm_rates()
    raw2 = median_ns("envelope 1MiB", "raw aws-lc-rs encrypt x2 threads")
    raw1 = median_ns("envelope 1MiB", "raw aws-lc-rs encrypt")
    notes = []
    for key, label, size in (sizes[0], sizes[2]):
        seal = median_ns(f"envelope {key}", "seal aws-lc") or median_ns(f"envelope {key}", "seal stream aws-lc")
        raw = median_ns(f"envelope {key}", "raw aws-lc-rs encrypt")
        if size in ossl and raw:
            notes.append(f"{label}: `openssl speed -evp aes-256-gcm` {ossl[size] / 1e9:.2f} GB/s; raw aws-lc-rs "
                         f"{(size / raw * 1e9) / ossl[size]:.2f}x of it, hsmkit seal (aws-lc) "
                         f"{(size / seal * 1e9) / ossl[size]:.2f}x")
    for key, label, size in sizes[1:3]:
        scatter = median_ns(f"envelope {key}", "raw aws-lc-rs encrypt")
        in_place = median_ns(f"envelope {key}", "raw aws-lc-rs encrypt in place")
        if scatter and in_place:
            notes.append(f"{label}: raw aws-lc-rs encrypt out of place (scatter seal, the reference) runs at "
                         f"{in_place / scatter:.2f}x its in-place seal")
    if raw1 and raw2:
        notes.append(f"raw aws-lc-rs encrypt on 2 threads: {raw1 / raw2:.2f}x one thread at 1 MiB (the machine's ceiling)")
    notes += [f"2 threads / 1, {t}" for t in threads]
    return f"""<!-- envelope-table: written by benches/run.sh -->
Measured {datetime.date.today()} on {cpu}, {rustc}, {ossl_version}. Criterion medians; GB/s is 10^9 bytes/s.
Ratios are hsmkit's throughput over the raw AES-256-GCM of the **same engine** in the same run.

| engine | size | raw encrypt | seal stream | vs raw | seal | vs raw | seal_into | vs raw | raw decrypt | open stream | vs raw | open | vs raw | open_into | vs raw |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n\n" + "".join(f"- {n}\n" for n in notes) + "<!-- /envelope-table -->"


env = envelope_table()
if env:
    text = put_table(text, "envelope", env, "## Envelope per engine (issue 9)")
md.write_text(text)
