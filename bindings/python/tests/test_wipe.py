"""The binding's copies of caller buffers (plaintext, key bytes) and of secret values are
wiped before they are freed. A child Python runs with an LD_PRELOAD free() that scans
every freed block for a canary (crates/hsmkit-cli/tests/free_scan.c) and with
PYTHONMALLOC=malloc, so that Python's own objects are freed through free() too and a
leftover `bytes` copy is seen."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FREE_SCAN = Path(__file__).resolve().parents[3] / "crates" / "hsmkit-cli" / "tests" / "free_scan.c"
CANARY = "CANARY-py-0123ab"  # 16 bytes, as free_scan.c wants
HIT = "FREE_SCAN: canary in freed block"
# The secret is the canary twice (32 bytes); a secret backup holds it as base64, whose
# first 16 characters encode its first 12 bytes (a multiple of 3): what to scan for there.
CANARY_B64 = base64.b64encode(CANARY.encode() * 2)[:16].decode()

# The child builds its secret from the environment's copy of the canary (which is never
# freed) by memoryview assignment (bytearray slice assignment from bytes would copy through
# a temporary), keeps every object alive, and leaves with os._exit (no teardown frees).
# The secrets modes free what holds the value on purpose (Secret objects, the cache, the
# backup blob), so that the buffers freed with them are scanned too.
CHILD = """
import array, base64, gc, os, sys
import hsmkit

store = hsmkit.open("memory:")
kek = store.create_key("kek", "aes")
rsa = store.create_key("rsa", "rsa", ops=["encrypt", "decrypt"])
ec = store.create_key("ec", "ec")
canary = os.environb[b"SECRET_HALF"]
secret = bytearray(32)
memoryview(secret)[:16] = canary
memoryview(secret)[16:] = canary
forms = (secret, memoryview(secret), array.array("B", secret), memoryview(secret).cast("B", (2, 16)))
mode = sys.argv[1]
if mode == "control":
    leftover = memoryview(secret).tobytes()  # what bytes_arg used to do
    del leftover
elif mode == "operations":
    for form in forms:
        kek.wrap_key("A256KW", form)
        rsa.encrypt("RSA-OAEP", form)
        ec.sign("ES256", form)
        store.seal("kek", form)
elif mode == "secrets-control":
    store.set_secret("s", secret)
    leftover = store.get_secret("s").value  # a caller-owned bytes: not the binding's to wipe
    del leftover
    gc.collect()
elif mode == "control-b64":
    leftover = base64.b64encode(bytes(secret))  # what a backup holds, in plain
    del leftover
elif mode == "secrets":
    store.set_secret("s", secret)
    got = store.get_secret("s")
    cache = hsmkit.SecretCache(store)
    hits = [cache.get("s") for _ in range(3)]
    blob = store.backup_secret("s")
    store.delete_secret("s")
    store.purge_deleted_secret("s")
    store.restore_secret(blob)
    again = store.get_secret("s")
    cache.invalidate("s")
    fresh = cache.get("s")
    assert got.version == fresh.version == 1 and got.name == "s"
    del got, hits, cache, blob, again, fresh
    gc.collect()
print("done", flush=True)
os._exit(0)
"""


def run_child(scanner: Path, mode: str, scan_for: str = CANARY) -> str:
    env = {"LD_PRELOAD": str(scanner), "FREE_SCAN_CANARY": scan_for, "SECRET_HALF": CANARY, "PYTHONMALLOC": "malloc"}
    p = subprocess.run(
        [sys.executable, "-c", CHILD, mode], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert p.returncode == 0 and p.stdout == "done\n", p.stderr
    return p.stderr


@pytest.fixture(scope="module")
def scanner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not sys.platform.startswith("linux"):
        pytest.skip("free_scan.c is for glibc")
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler for free_scan.c")
    so = tmp_path_factory.mktemp("free_scan") / "free_scan.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(so), str(FREE_SCAN), "-ldl"], check=True)
    return so


def test_the_scanner_sees_a_leftover_python_copy(scanner: Path) -> None:
    assert HIT in run_child(scanner, "control")


def test_copies_of_caller_buffers_are_wiped(scanner: Path) -> None:
    """bytearray, memoryview, array and a 2-D memoryview, into wrap_key, encrypt, sign and
    seal: no freed block holds the secret."""
    assert HIT not in run_child(scanner, "operations")


def test_the_scanner_sees_leftover_secret_values(scanner: Path) -> None:
    """The controls for the test below: a `Secret.value` bytes freed unwiped, and the
    value's base64 form freed unwiped, are both seen."""
    assert HIT in run_child(scanner, "secrets-control")
    assert HIT in run_child(scanner, "control-b64", scan_for=CANARY_B64)


@pytest.mark.parametrize("scan_for", [CANARY, CANARY_B64], ids=["raw", "base64"])
def test_secret_values_are_wiped(scanner: Path, scan_for: str) -> None:
    """set_secret from a bytearray, get_secret, SecretCache hits and misses, backup_secret
    and restore_secret, then every object that held the value freed: no freed block holds
    it, raw or as the base64 a backup's plaintext carries."""
    assert HIT not in run_child(scanner, "secrets", scan_for=scan_for)
