"""Envelopes: seal/unseal, files (streaming), several recipients, rewrap, tampering."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import hsmkit


@pytest.fixture
def kek_store(store: hsmkit.Store) -> hsmkit.Store:
    store.create_key("kek", "aes")
    store.create_key("kek2", "aes", size=128)
    store.create_key("rsa-kek", "rsa", ops=["wrapKey", "unwrapKey"])
    return store


def test_seal_unseal(kek_store: hsmkit.Store) -> None:
    s = kek_store
    for data in [b"", b"x", os.urandom(100_000)]:
        blob = s.seal("kek", data, aad={"tenant": "a"})
        assert blob[:4] == b"HKEV"
        assert s.unseal(blob, aad={"tenant": "a"}) == data
        assert s.unseal(bytearray(blob), aad={"tenant": "a"}) == data
        for wrong in [None, {"tenant": "b"}, {"tenant": "a", "x": "y"}]:
            with pytest.raises(hsmkit.DecryptionFailed):
                s.unseal(blob, aad=wrong)
    blob = bytearray(s.seal("kek", b"secret data" * 100, chunk_size=256))
    blob[-3] ^= 1
    with pytest.raises(hsmkit.DecryptionFailed):
        s.unseal(blob)
    for junk in [b"", b"HKEV", b"not an envelope at all"]:
        with pytest.raises((hsmkit.DecryptionFailed, hsmkit.InvalidInput)):
            s.unseal(junk)


def test_suites(kek_store: hsmkit.Store, tmp_path: Path) -> None:
    s = kek_store
    # Suite 2 (HKDF-SHA-256) by default; suite 1 on request for older readers.
    assert s.seal("kek", b"x")[5] == 2
    one = s.seal("kek", b"x" * 1000, suite=1)
    assert one[5] == 1 and s.unseal(one) == b"x" * 1000
    s.seal_file(_write(tmp_path / "a", b"y" * 70_000), tmp_path / "a.hkev", "kek", suite=1)
    assert (tmp_path / "a.hkev").read_bytes()[5] == 1
    assert s.unseal_file(tmp_path / "a.hkev", tmp_path / "a.out") == 70_000
    for bad in [0, 3]:
        with pytest.raises(hsmkit.InvalidInput):
            s.seal("kek", b"x", suite=bad)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_several_recipients_and_rewrap(kek_store: hsmkit.Store) -> None:
    s = kek_store
    blob = s.seal("kek", b"data", recipients=["kek2", "rsa-kek"])
    assert blob == blob and s.unseal(blob) == b"data"
    assert s.unseal(s.seal(["kek2", "rsa-kek"], b"data")) == b"data"
    # The store of one recipient alone opens it.
    other = hsmkit.open("memory:")
    with pytest.raises(hsmkit.KeyNotFound):
        other.unseal(blob)
    # rewrap to a new KEK after rotation, then retire the old versions
    s.rotate_key("kek")
    moved = s.rewrap(blob, "kek")
    assert s.unseal(moved) == b"data"
    added = s.rewrap(blob, ["kek"], add=True)
    assert s.unseal(added) == b"data"
    with pytest.raises(hsmkit.KeyNotFound):
        s.seal("missing", b"x")
    with pytest.raises(hsmkit.InvalidInput):
        s.seal([], b"x")
    with pytest.raises(hsmkit.InvalidInput):
        s.seal("kek", b"x", chunk_size=0)


def test_rewrap_needs_the_aad(kek_store: hsmkit.Store) -> None:
    s = kek_store
    aad = {"tenant": "a", "purpose": "backup"}
    blob = s.seal("kek", b"data with a context", aad=aad)
    s.rotate_key("kek")
    # A missing or wrong context fails as unseal fails: the same exception, no detail.
    for wrong in [None, {}, {"tenant": "a"}, {"tenant": "b", "purpose": "backup"}, {**aad, "x": "y"}]:
        with pytest.raises(hsmkit.DecryptionFailed) as unseal_err:
            s.unseal(blob, aad=wrong)
        with pytest.raises(hsmkit.DecryptionFailed) as rewrap_err:
            s.rewrap(blob, "kek", aad=wrong)
        assert type(rewrap_err.value) is type(unseal_err.value)
        assert str(rewrap_err.value) == str(unseal_err.value)
        with pytest.raises(hsmkit.DecryptionFailed):
            s.rewrap(blob, ["kek2"], aad=wrong, add=True)
    with pytest.raises(hsmkit.DecryptionFailed):
        s.rewrap(blob, "kek")  # aad left out altogether
    moved = s.rewrap(blob, "kek", aad=dict(reversed(list(aad.items()))))  # order does not matter
    assert s.unseal(moved, aad=aad) == b"data with a context"
    with pytest.raises(hsmkit.DecryptionFailed):
        s.unseal(moved)  # the context stays in the envelope
    added = s.rewrap(moved, ["kek2"], aad=aad, add=True)
    assert len(added) > len(moved) and s.unseal(added, aad=aad) == b"data with a context"


def test_disabled_kek(kek_store: hsmkit.Store) -> None:
    blob = kek_store.seal("kek", b"x")
    kek_store.update_key("kek", enabled=False)
    with pytest.raises(hsmkit.PermissionDenied):
        kek_store.seal("kek", b"x")
    with pytest.raises((hsmkit.PermissionDenied, hsmkit.DecryptionFailed)):
        kek_store.unseal(blob)


def test_seal_file_unseal_file(kek_store: hsmkit.Store, tmp_path: Path) -> None:
    src, sealed, out = tmp_path / "in.bin", tmp_path / "in.hkev", tmp_path / "out.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)
    src.write_bytes(data)
    n = kek_store.seal_file(src, sealed, "kek", aad={"f": "in.bin"}, chunk_size=65536)
    assert n == len(data)
    assert kek_store.unseal_file(str(sealed), str(out), aad={"f": "in.bin"}) == len(data)
    assert out.read_bytes() == data
    # the one-shot and file forms are the same format
    assert kek_store.unseal(sealed.read_bytes(), aad={"f": "in.bin"}) == data


def test_no_partial_output_on_failure(kek_store: hsmkit.Store, tmp_path: Path) -> None:
    tmp_path = tmp_path / "files"
    tmp_path.mkdir()
    src, sealed, out = tmp_path / "in.bin", tmp_path / "in.hkev", tmp_path / "out.bin"
    src.write_bytes(os.urandom(1024 * 1024))
    kek_store.seal_file(src, sealed, "kek", chunk_size=4096)
    blob = bytearray(sealed.read_bytes())
    blob[len(blob) // 2] ^= 1  # a chunk in the middle
    sealed.write_bytes(blob)
    with pytest.raises(hsmkit.DecryptionFailed):
        kek_store.unseal_file(sealed, out)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bin", "in.hkev"]
    with pytest.raises(hsmkit.StreamError):
        kek_store.seal_file(tmp_path / "missing", out, "kek")
    with pytest.raises(hsmkit.StreamError):
        kek_store.seal_file(src, tmp_path / "no-such-dir" / "x", "kek")
    assert not out.exists()
