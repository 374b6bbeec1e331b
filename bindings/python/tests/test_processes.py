"""Processes: a forked child keeps using the store it inherited (on a token, hsmkit
initialises the PKCS#11 module again in the child), and two processes work on one
keystore and one token at the same time."""

from __future__ import annotations

import multiprocessing
import os
import sys
import warnings
from pathlib import Path

import pytest

import hsmkit

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")


def _child_work(store: hsmkit.Store, tag: str) -> None:
    key = store.get_key("k")
    sig = key.sign("ES256", b"from the child")
    key.verify("ES256", b"from the child", sig)
    new = store.create_key(f"child-{tag}", "ec", curve="P-256")
    new.verify("ES256", b"x", new.sign("ES256", b"x"))
    blob = store.seal("kek", b"child data")
    assert store.unseal(blob) == b"child data"


def test_forked_child_uses_the_inherited_store(store: hsmkit.Store) -> None:
    key = store.create_key("k", "ec", curve="P-256")
    store.create_key("kek", "aes")
    sig = key.sign("ES256", b"parent")  # the parent has sessions and a login now
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded, fork() may deadlock"
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            _child_work(store, "a")
            code = 0
        except BaseException as e:  # noqa: BLE001 - reported through the exit code
            print(f"child failed: {e!r}", file=sys.stderr)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's own sessions still work after the child re-initialised its copy.
    key.verify("ES256", b"parent", sig)
    key.verify("ES256", b"parent again", key.sign("ES256", b"parent again"))
    assert store.unseal(store.seal("kek", b"p")) == b"p"
    # The child's key is on the token / in the keystore file, which both processes share.
    assert "child-a" in store.list_keys()


ROUNDS = 100


def _worker(uri: str, key_file: "str | None", pin: "str | None", tag: str, rounds: int) -> None:
    store = hsmkit.open(uri, key_file=key_file, pin=pin)
    key = store.get_key("shared")
    for i in range(rounds):
        msg = f"{tag} {i}".encode()
        key.verify("ES256", msg, key.sign("ES256", msg))
        assert store.unseal(store.seal("kek", msg)) == msg
        if i % 10 == 0:
            store.create_key(f"{tag}-{i}", "aes", size=128)
            store.rotate_key("kek")


@pytest.mark.parametrize("backend", ["soft", "pkcs11"])
def test_two_processes_share_one_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend == "soft":
        key_file = tmp_path / "store.key"
        key_file.write_text(os.urandom(32).hex())
        uri, kf, pin = f"file://{tmp_path / 'store'}", str(key_file), None
        store = hsmkit.open(uri, key_file=kf)
    else:
        uri, kf, pin = request.getfixturevalue("softhsm_token"), None, None
        store = hsmkit.open(uri)
    store.create_key("shared", "ec", curve="P-256")
    store.create_key("kek", "aes")
    # Spawned, not forked: two independent processes, as two programs would be.
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(uri, kf, pin, tag, ROUNDS)) for tag in ("p1", "p2")]
    for p in procs:
        p.start()
    _worker(uri, kf, pin, "main", ROUNDS)
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    names = set(store.list_keys())
    assert {f"{t}-{i}" for t in ("p1", "p2", "main") for i in range(0, ROUNDS, 10)} <= names
    # Every rotation by every process is a distinct version: none lost, none doubled.
    assert [v.version for v in store.list_versions("kek")] == list(range(1, 1 + 3 * (ROUNDS // 10) + 1))
