"""The GIL is released around cryptographic and token calls.

Proved without timing thresholds and without needing idle cores: (1) a native call that
blocks on input only another Python thread can provide finishes (with the GIL held it
would deadlock); (2) the main thread keeps running Python code while another thread is
inside a long `sign` call. The parallel speed-up is a bench's business, not a test's.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

import hsmkit


def test_file_calls_release_the_gil(tmp_path: Path) -> None:
    store = hsmkit.open("memory:")
    store.create_key("kek", "aes")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    data = os.urandom(256 * 1024)
    result: list = []

    def seal() -> None:
        try:  # blocks in open()/read() of the FIFO until the main thread writes it
            result.append(store.seal_file(fifo, tmp_path / "sealed", "kek"))
        except BaseException as e:  # noqa: BLE001 - reported below
            result.append(e)

    t = threading.Thread(target=seal)
    t.start()
    with open(fifo, "wb") as w:  # needs the GIL while the sealer waits
        w.write(data)
    t.join(timeout=60)
    assert not t.is_alive(), "seal_file held the GIL while blocked on its input"
    assert result == [len(data)]
    assert store.unseal((tmp_path / "sealed").read_bytes()) == data


@pytest.mark.parametrize("backend", ["soft", "pkcs11"])
def test_sign_releases_the_gil(backend: str, request: pytest.FixtureRequest) -> None:
    """The main thread runs Python code while another thread is inside `sign`.

    With the GIL held through the call, the main thread can look only while the signer
    thread is in Python code on its way in or out: once per call on an idle machine, up to
    9 under four CPU hogs (a stand-in holding the GIL, measured). Released, it looks every
    millisecond of a call that hashes 128 MiB: about 70 per call idle, 150 under the same
    load. The threshold, 20 looks in one call, sits between; load only widens the gap on
    the released side, so the test needs no idle cores.
    """
    store = hsmkit.open("memory:") if backend == "soft" else request.getfixturevalue("softhsm_store")
    key = store.create_key("k", "rsa")
    message = bytes(128 * 1024 * 1024)  # hashing it keeps one call in native code a while
    seen = looks_per_call(lambda: key.sign("RS256", message), calls=20)
    assert max(seen) >= 20, f"the main thread never ran during a sign call (looks per call: {seen})"


@pytest.mark.parametrize("op", ["seal", "unseal"])
def test_seal_and_unseal_release_the_gil(op: str) -> None:
    """The main thread runs Python code while another thread is inside a one-shot
    `seal`/`unseal` of 512 MiB: the envelope is computed straight into the result `bytes`
    with the GIL released, and a `bytes` argument is read in place. What still holds the
    GIL is the allocation of the result (pyo3 zero-fills a new `bytes`); see
    BENCHMARKS.md for the longest stall. The threshold is the sign test's (held, the main
    thread looks up to 9 times per call under load); 512 MiB keeps the released part of
    a call above 50 ms even at 10 GB/s, so a fast machine does not fail it."""
    store = hsmkit.open("memory:")
    store.create_key("kek", "aes")
    data = bytes(512 * 1024 * 1024)
    blob = store.seal("kek", data)
    call = (lambda: store.seal("kek", data)) if op == "seal" else (lambda: store.unseal(blob))
    seen = looks_per_call(call, calls=10)
    assert max(seen) >= 20, f"the main thread never ran during {op} (looks per call: {seen})"


def looks_per_call(call: Callable[[], object], calls: int) -> list[int]:
    """Runs `call` up to `calls` times on another thread while this one looks every
    millisecond; returns, per call, how often it saw the call in progress (stopping once
    one call was seen 20 times). Errors on the other thread are raised here."""
    inside, enough, finished = threading.Event(), threading.Event(), threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(calls):
                seen.append(0)
                inside.set()
                call()
                inside.clear()
                if enough.is_set():
                    break
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            inside.clear()
            finished.set()

    t = threading.Thread(target=worker)
    t.start()
    while not finished.is_set():
        if inside.is_set() and seen:
            seen[-1] += 1
            if seen[-1] >= 20:
                enough.set()
        time.sleep(0.001)
    t.join()
    assert errors == []
    return seen
