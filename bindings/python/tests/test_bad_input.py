"""Truncated, oversized and garbage input on both backends: the right exception, never a
crash, never a partial output file, never a half-made key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import hsmkit

GARBAGE = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(128))  # 4 KiB


@pytest.fixture
def keys(store: hsmkit.Store) -> hsmkit.Store:
    store.create_key("kek", "aes")
    store.create_key("rsa", "rsa", size=2048, ops=["encrypt", "decrypt"])
    store.create_key("ec", "ec", curve="P-256")
    return store


def test_envelopes(keys: hsmkit.Store, tmp_path: Path) -> None:
    tmp_path = tmp_path / "files"
    tmp_path.mkdir()
    good = keys.seal("kek", b"some plaintext" * 100)
    cuts = [0, 1, 4, 20, len(good) // 2, len(good) - 17, len(good) - 1]
    bad = [good[:n] for n in cuts] + [GARBAGE, good + b"tail", good[:10] + bytes([good[10] ^ 0x40]) + good[11:]]
    body_start = len(good) - 1400 - 16  # one chunk: header, 1400 bytes, a tag
    for i, blob in enumerate(bad):
        with pytest.raises(hsmkit.DecryptionFailed):
            keys.unseal(blob)
        if len(blob) < body_start or blob is GARBAGE:
            with pytest.raises(hsmkit.DecryptionFailed):
                keys.rewrap(blob, "kek")
        elif len(blob) < len(good):
            # Rewrap reads the header only: a cut body passes through and still fails.
            with pytest.raises(hsmkit.DecryptionFailed):
                keys.unseal(keys.rewrap(blob, "kek"))
        src, dst = tmp_path / f"bad{i}.hkev", tmp_path / f"out{i}"
        src.write_bytes(blob)
        with pytest.raises(hsmkit.DecryptionFailed):
            keys.unseal_file(src, dst)
        assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"bad{i}.hkev" for i in range(len(bad)))


def test_ciphertexts_and_signatures(keys: hsmkit.Store) -> None:
    rsa, kek, ec = keys.get_key("rsa"), keys.get_key("kek"), keys.get_key("ec")
    for ct in (GARBAGE, GARBAGE[:255], GARBAGE[:256], b""):
        with pytest.raises(hsmkit.DecryptionFailed):
            rsa.decrypt("RSA-OAEP", ct)
    for wrapped in (GARBAGE[:40], GARBAGE[:24], GARBAGE[:17], b""):
        with pytest.raises(hsmkit.DecryptionFailed):
            kek.unwrap_key("A256KW", wrapped)
    with pytest.raises(hsmkit.InvalidInput):
        rsa.encrypt("RSA-OAEP", b"x" * 300)  # more than RSA-2048 OAEP carries
    with pytest.raises(hsmkit.InvalidInput):
        kek.wrap_key("A256KW", b"x" * ((1 << 20) + 3))  # KW takes multiples of 8 bytes
    sig = ec.sign("ES256", b"m")
    for s in (sig[:10], GARBAGE[:64], GARBAGE, b""):
        with pytest.raises(hsmkit.InvalidSignature):
            ec.verify("ES256", b"m", s)
    with pytest.raises(hsmkit.InvalidSignature):
        ec.verify("ES256", b"m", GARBAGE[:72], encoding="der")


def test_keys_and_names(keys: hsmkit.Store) -> None:
    pem = keys.get_key("ec").public_key_pem()
    bad_keys: list[object] = [
        GARBAGE,
        pem[: len(pem) // 2],
        b"",
        "",
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {"kty": "RSA"},
        '{"kty": "oct", "k": "!!!"}',
    ]
    for i, bad in enumerate(bad_keys):
        with pytest.raises(hsmkit.InvalidInput):
            keys.import_key(f"imp{i}", bad)  # type: ignore[arg-type]
    assert sorted(keys.list_keys()) == ["ec", "kek", "rsa"], "no half-imported key"
    for name in ("n" * 300, "bad/name", ""):
        with pytest.raises(hsmkit.InvalidInput):
            keys.create_key(name, "aes")
    with pytest.raises(hsmkit.InvalidInput):  # also a ValueError
        keys.get_key("ec").sign("ES256", "text, not bytes")  # type: ignore[arg-type]
    with pytest.raises(hsmkit.InvalidInput):
        keys.get_key("ec").sign("NOPE", b"m")


def test_errors_say_why(keys: hsmkit.Store) -> None:
    """InvalidInput and Unsupported carry a typed reason, as pyca's exceptions do."""
    ec = keys.get_key("ec")
    cases = [
        (lambda: ec.sign("ES384", b"m"), hsmkit.InvalidInput, "key-mismatch"),
        (lambda: ec.sign("ES256", b"short", prehashed=True), hsmkit.InvalidInput, "length"),
        (lambda: keys.import_key("bad", b"-----BEGIN GARBAGE-----"), hsmkit.InvalidInput, "malformed"),
        (lambda: keys.create_key("no spaces", "aes"), hsmkit.InvalidInput, "name"),
        (lambda: keys.get_key("kek").public_key_pem(), hsmkit.Unsupported, "operation"),
    ]
    for call, kind, reason in cases:
        with pytest.raises(kind) as e:
            call()
        assert e.value.reason == reason, (str(e.value), e.value.reason)
        assert str(e.value)  # the message is still there
    # The reason survives pickling (multiprocessing sends exceptions that way).
    import pickle

    again = pickle.loads(pickle.dumps(hsmkit.InvalidInput("m", "length")))
    assert (str(again), again.reason) == ("m", "length")
