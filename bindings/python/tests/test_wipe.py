"""The binding's copies of caller buffers (plaintext, key bytes) are wiped before they are
freed. A child Python runs with an LD_PRELOAD free() that scans every freed block for a
canary (crates/hsmkit-cli/tests/free_scan.c) and with PYTHONMALLOC=malloc, so that
Python's own objects are freed through free() too and a leftover `bytes` copy is seen."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FREE_SCAN = Path(__file__).resolve().parents[3] / "crates" / "hsmkit-cli" / "tests" / "free_scan.c"
CANARY = "CANARY-py-0123ab"  # 16 bytes, as free_scan.c wants
HIT = "FREE_SCAN: canary in freed block"

# The child builds its secret from the environment's copy of the canary (which is never
# freed) by memoryview assignment (bytearray slice assignment from bytes would copy through
# a temporary), keeps every object alive, and leaves with os._exit (no teardown frees).
CHILD = """
import array, os, sys
import hsmkit

store = hsmkit.open("memory:")
kek = store.create_key("kek", "aes")
rsa = store.create_key("rsa", "rsa", ops=["encrypt", "decrypt"])
ec = store.create_key("ec", "ec")
canary = os.environb[b"FREE_SCAN_CANARY"]
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
print("done", flush=True)
os._exit(0)
"""


def run_child(scanner: Path, mode: str) -> str:
    env = {"LD_PRELOAD": str(scanner), "FREE_SCAN_CANARY": CANARY, "PYTHONMALLOC": "malloc"}
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
