"""hsmkit's envelope from Python against Google Tink and the AWS Encryption SDK, one
interleaved run (issue 24), written as a table into BENCHMARKS.md.

    python benches/python_peers.py BENCHMARKS.md      (benches/run.sh runs it)

Needs `hsmkit`, `tink` and `aws-encryption-sdk` in the running interpreter (run.sh
installs the last two into target/py-venv). Each library seals and opens with an AES-256
KEK held in process:
- hsmkit: `memory:` store (aws-lc engine), `Store.seal`/`unseal`, `seal_file`/`unseal_file`
  (64 KiB chunks, committing, fsync and rename at the end);
- Tink: `KmsEnvelopeAead` with an AES256_GCM data-key template over an AES256_GCM KEK
  for one-shot; `AES256_GCM_HKDF_1MB` streaming AEAD for files (fsync at the end too);
- AWS Encryption SDK: a raw AES-256 master key, suite AES_256_GCM_HKDF_SHA512_COMMIT_KEY
  (committing, no signature), default 4 KiB frames; one-shot only (it streams a 256 MiB
  file at a few MB/s).
Libraries take turns within every repetition, so drift hits them alike; each figure is
the median over the repetitions. The stall columns: the longest time a spinning Python
thread could not run while another thread made one 64 MiB call, against that call's
length (switch interval 1 ms).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import aws_encryption_sdk
import hsmkit
import tink
from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy, EncryptionKeyType, WrappingAlgorithm
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.raw import RawMasterKey
from markers import put_table
from tink import aead, streaming_aead

REPS = int(os.environ.get("PEER_REPS", "7"))
FILE_REPS = int(os.environ.get("PEER_FILE_REPS", "7"))
ONE_SHOT = [("1 KiB", 1 << 10), ("64 KiB", 64 << 10), ("1 MiB", 1 << 20)]
FILE_SIZE = 256 << 20


class Lib:
    def __init__(self, name: str, seal: Callable[[bytes], bytes], open_: Callable[[bytes], bytes],
                 seal_file: Callable[[Path, Path], None] | None, open_file: Callable[[Path, Path], None] | None):
        self.name, self.seal, self.open, self.seal_file, self.open_file = name, seal, open_, seal_file, open_file


def fsynced(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def libs() -> list[Lib]:
    store = hsmkit.open("memory:")
    store.create_key("kek", "aes")
    hk = Lib("hsmkit", lambda d: store.seal("kek", d), store.unseal,
             lambda s, d: store.seal_file(s, d, "kek"), lambda s, d: store.unseal_file(s, d))

    aead.register()
    streaming_aead.register()
    remote = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM).primitive(aead.Aead)
    env = aead.KmsEnvelopeAead(aead.aead_key_templates.AES256_GCM, remote)
    stream = tink.new_keyset_handle(streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_1MB).primitive(
        streaming_aead.StreamingAead)

    def tink_seal_file(src: Path, dst: Path) -> None:
        with open(src, "rb") as f, open(dst, "wb") as out:
            with stream.new_encrypting_stream(out, b"") as enc:
                shutil.copyfileobj(f, enc, 1 << 20)
        fsynced(dst)

    def tink_open_file(src: Path, dst: Path) -> None:
        with open(src, "rb") as f, stream.new_decrypting_stream(f, b"") as dec, open(dst, "wb") as out:
            shutil.copyfileobj(dec, out, 1 << 20)
        fsynced(dst)

    tk = Lib("Tink", lambda d: env.encrypt(d, b""), lambda c: env.decrypt(c, b""), tink_seal_file, tink_open_file)

    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    mk = RawMasterKey(provider_id="bench", key_id=b"kek", wrapping_key=WrappingKey(
        wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING, wrapping_key=os.urandom(32),
        wrapping_key_type=EncryptionKeyType.SYMMETRIC))
    suite = Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
    es = Lib("AWS ESDK", lambda d: client.encrypt(source=d, key_provider=mk, algorithm=suite)[0],
             lambda c: client.decrypt(source=c, key_provider=mk)[0], None, None)
    return [hk, tk, es]


def per_call(fn: Callable[[], object], budget: float = 0.05) -> float:
    """Seconds per call, over a batch that lasts at least `budget`."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        t = time.perf_counter() - start
        if t >= budget:
            return t / n
        n = max(n * 2, int(n * budget * 1.1 / max(t, 1e-6)))


def stall(fn: Callable[[], object]) -> float:
    """Longest gap a spinning thread saw, over the call's length (best of 3)."""
    best = 1.0
    for _ in range(3):
        done, span = threading.Event(), []

        def work() -> None:
            t0 = time.perf_counter()
            fn()
            span.append(time.perf_counter() - t0)
            done.set()

        t = threading.Thread(target=work)
        last, gap = time.perf_counter(), 0.0
        t.start()
        while not done.is_set():
            now = time.perf_counter()
            gap, last = max(gap, now - last), now
        t.join()
        best = min(best, gap / span[0])
    return best


def fmt(size: int, seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if size <= 4096:
        return f"{seconds * 1e6:.1f} µs"
    return f"{size / seconds / 1e9:.2f} GB/s"


def main() -> None:
    md = Path(sys.argv[1])
    ls = libs()
    rows: list[str] = []
    for label, size in ONE_SHOT:
        data = os.urandom(size)
        sealed = {lib.name: lib.seal(data) for lib in ls}
        for lib in ls:
            assert lib.open(sealed[lib.name]) == data, lib.name
        times: dict[tuple[str, str], list[float]] = {}
        for rep in range(REPS):
            for lib in ls[rep % len(ls):] + ls[:rep % len(ls)]:
                times.setdefault((lib.name, "seal"), []).append(per_call(lambda: lib.seal(data)))
                times.setdefault((lib.name, "open"), []).append(per_call(lambda: lib.open(sealed[lib.name])))
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append(row(label, size, med, ls))
    # Files: 256 MiB on tmpfs (if there is one) and on the disk under target/.
    dirs = [("tmpfs", Path("/dev/shm"))] if Path("/dev/shm").is_dir() else []
    dirs.append(("disk", Path("target")))
    for where, base in dirs:
        with tempfile.TemporaryDirectory(dir=base) as d:
            src = Path(d) / "plain"
            with open(src, "wb") as f:
                for _ in range(FILE_SIZE >> 20):
                    f.write(os.urandom(1 << 20))
            fsynced(src)
            times = {}
            file_libs = [lib for lib in ls if lib.seal_file]
            for rep in range(FILE_REPS):
                for lib in file_libs[rep % 2:] + file_libs[:rep % 2]:
                    # Fresh names, removed after: neither library overwrites the other's files.
                    enc, out = Path(d) / f"{lib.name}-{rep}.sealed", Path(d) / f"{lib.name}-{rep}.opened"
                    t0 = time.perf_counter()
                    lib.seal_file(src, enc)  # type: ignore[misc]
                    t1 = time.perf_counter()
                    lib.open_file(enc, out)  # type: ignore[misc]
                    t2 = time.perf_counter()
                    times.setdefault((lib.name, "seal"), []).append(t1 - t0)
                    times.setdefault((lib.name, "open"), []).append(t2 - t1)
                    assert out.stat().st_size == FILE_SIZE
                    enc.unlink()
                    out.unlink()
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append(row(f"256 MiB file, {where}", FILE_SIZE, med, ls))
    sys.setswitchinterval(0.001)
    big = bytes(64 << 20)
    stalls = []
    for lib in ls[:2]:
        blob = lib.seal(big)
        stalls.append(f"{lib.name}: seal {stall(lambda: lib.seal(big)):.0%}, open {stall(lambda: lib.open(blob)):.0%}")
    alloc = ", ".join(f"{k}={v}" for k, v in os.environ.items() if k.startswith("MALLOC_")) or "glibc defaults"
    table = (
        "<!-- peers-table: written by benches/run.sh -->\n"
        f"Measured {time.strftime('%Y-%m-%d')}: hsmkit {version('hsmkit')}, tink {version('tink')}, "
        f"aws-encryption-sdk {version('aws-encryption-sdk')}, CPython {sys.version.split()[0]}; "
        f"median of {REPS} interleaved repetitions (files: {FILE_REPS}); allocator: {alloc}.\n\n"
        "| size | hsmkit seal | Tink seal | ESDK seal | hsmkit / Tink | hsmkit / ESDK | "
        "hsmkit open | Tink open | ESDK open | hsmkit / Tink | hsmkit / ESDK |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"Longest stall of another Python thread during one 64 MiB call (of the call's length, "
        f"best of 3): {'; '.join(stalls)}.\n"
        "<!-- /peers-table -->"
    )
    heading = "## Envelope from Python against Tink and the AWS Encryption SDK (issue 24)"
    md.write_text(put_table(md.read_text(), "peers", table, heading))
    print(table)


def row(label: str, size: int, med: dict[tuple[str, str], float], ls: list[Lib]) -> str:
    def ratio(op: str, other: str) -> str:
        a, b = med.get(("hsmkit", op)), med.get((other, op))
        return "—" if a is None or b is None else f"**{b / a:.2f}x**"

    cells = [label]
    for op in ("seal", "open"):
        cells += [fmt(size, med.get((lib.name, op))) for lib in ls]
        cells += [ratio(op, "Tink"), ratio(op, "AWS ESDK")]
    return "| " + " | ".join(cells) + " |"


if __name__ == "__main__":
    main()
