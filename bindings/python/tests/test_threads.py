"""The GIL is released around cryptographic and token calls.

Proved without timing thresholds on speed: (1) a native call that blocks on input only
another Python thread can provide finishes (with the GIL held it would deadlock); (2) two
threads signing burn more CPU time than wall time passes, which only parallel native code
can do. The speed-up itself is printed.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

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


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to run two threads at once")
@pytest.mark.parametrize("backend", ["soft", "pkcs11"])
def test_threads_sign_in_parallel(backend: str, request: pytest.FixtureRequest) -> None:
    store = hsmkit.open("memory:") if backend == "soft" else request.getfixturevalue("softhsm_store")
    key = store.create_key("k", "rsa")
    n = 600 if backend == "soft" else 250  # a few tenths of a second per phase

    def work() -> None:
        for i in range(n):
            key.sign("RS256", b"%d" % i)

    def measure() -> tuple:
        t0 = time.perf_counter()
        for _ in range(2):
            work()
        serial = time.perf_counter() - t0
        threads = [threading.Thread(target=work) for _ in range(2)]
        t0, c0 = time.perf_counter(), time.process_time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return serial, time.perf_counter() - t0, time.process_time() - c0

    # CPU time beyond wall time means both threads were in native code at once; with the
    # GIL held through the call the ratio cannot exceed 1, whatever the machine. Other
    # load on the machine can only lower it, so a few attempts are allowed.
    attempts = []
    for _ in range(5):
        serial, wall, cpu = measure()
        attempts.append(f"cpu {cpu:.3f}s / wall {wall:.3f}s (serial {serial:.3f}s)")
        print(f"{backend}: 2x{n} RS256 {attempts[-1]}, speed-up {serial / wall:.2f}x")
        if cpu / wall > 1.2:
            return
    pytest.fail(f"threads never ran in parallel: {attempts}")
