"""Operations on keys: every algorithm, bytes-like inputs, typed errors."""

from __future__ import annotations

import array
import hashlib

import pytest

import hsmkit

SIGN = [
    ("rsa", {}, ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]),
    ("ec", {"curve": "P-256"}, ["ES256"]),
    ("ec", {"curve": "P-384"}, ["ES384"]),
    ("ec", {"curve": "P-521"}, ["ES512"]),
]
# What SoftHSM2 2.6 cannot do, probed by hsmkit at open: OAEP with SHA-256 or with a
# label in C_Decrypt/C_UnwrapKey, and an RFC 5649 (KWP) that passes the RFC's
# known-answer test. hsmkit says Unsupported, typed, before looking at the input.
def softhsm_lacks(store: hsmkit.Store, alg: str, label: bool = False) -> bool:
    return store.backend_kind == "pkcs11" and (alg == "RSA-OAEP-256" or alg.endswith("KWP") or label)


HASH = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


@pytest.mark.parametrize("key_type,kw,algs", SIGN)
def test_sign_verify(store: hsmkit.Store, key_type: str, kw: dict, algs: list) -> None:
    key = store.create_key("k", key_type, **kw)
    for alg in algs:
        sig = key.sign(alg, b"message")
        key.verify(alg, b"message", sig)
        with pytest.raises(hsmkit.InvalidSignature):
            key.verify(alg, b"messagE", sig)
        digest = HASH[alg[2:]](b"message").digest()
        key.verify(alg, digest, key.sign(alg, digest, prehashed=True), prehashed=True)
        key.verify(alg, b"message", key.sign(alg, digest, prehashed=True))
        with pytest.raises(hsmkit.InvalidInput):
            key.sign(alg, b"short", prehashed=True)
        if key_type == "ec":
            der = key.sign(alg, b"message", encoding="der")
            assert der[0] == 0x30
            key.verify(alg, b"message", der, encoding="der")
            with pytest.raises(hsmkit.InvalidSignature):
                key.verify(alg, b"message", der)  # DER given as raw: wrong length
            with pytest.raises(hsmkit.InvalidInput):
                key.sign(alg, b"m", encoding="base64")
    wrong = "ES256" if key_type == "rsa" else "RS256"
    with pytest.raises(hsmkit.InvalidInput):
        key.sign(wrong, b"m")
    with pytest.raises(hsmkit.InvalidInput):
        key.sign("HS256", b"m")


def test_bytes_like_inputs(store: hsmkit.Store) -> None:
    key = store.create_key("k", "ec")
    data = b"bytes-like"
    sig = key.sign("ES256", data)
    for form in [bytearray(data), memoryview(data), array.array("B", data), memoryview(b"xx" + data)[2:]]:
        key.verify("ES256", form, sig)  # type: ignore[arg-type]
        key.verify("ES256", data, key.sign("ES256", form))  # type: ignore[arg-type]
    for bad in ["str", 7, None, 1.5, [1, 2]]:
        with pytest.raises((hsmkit.InvalidInput, TypeError)):
            key.sign("ES256", bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        key.sign(b"ES256", data)  # type: ignore[arg-type]


def test_bytes_like_inputs_any_item_format_and_shape(store: hsmkit.Store) -> None:
    key = store.create_key("k", "ec")
    words = array.array("H", range(1000, 1012))
    grid = memoryview(bytes(range(24))).cast("B", (4, 6))  # 2-D, C-contiguous
    for form, raw in [(words, words.tobytes()), (grid, bytes(range(24))), (bytearray(), b""), (memoryview(b""), b"")]:
        key.verify("ES256", raw, key.sign("ES256", form))  # type: ignore[arg-type]
        key.verify("ES256", form, key.sign("ES256", raw))  # type: ignore[arg-type]
    # Not C-contiguous: refused (as pyca/cryptography refuses it), not silently re-laid out.
    for strided in [memoryview(b"0123456789")[::2], memoryview(words)[::3]]:
        with pytest.raises(hsmkit.InvalidInput, match="C-contiguous"):
            key.sign("ES256", strided)


@pytest.mark.parametrize("alg", ["RSA-OAEP", "RSA-OAEP-256"])
def test_encrypt_decrypt(store: hsmkit.Store, alg: str) -> None:
    key = store.create_key("k", "rsa", ops=["encrypt", "decrypt"])
    ct = key.encrypt(alg, b"secret")
    assert len(ct) == 256
    labelled = key.encrypt(alg, b"secret", label=b"label")
    if softhsm_lacks(store, alg):
        with pytest.raises(hsmkit.Unsupported):
            key.decrypt(alg, ct)
    else:
        assert key.decrypt(alg, ct) == b"secret"
        with pytest.raises(hsmkit.DecryptionFailed):
            key.decrypt(alg, labelled)
        bad = bytearray(ct)
        bad[10] ^= 1
        for c in [bytes(bad), b"", b"\x00" * 256, b"\x01" * 300]:
            with pytest.raises(hsmkit.DecryptionFailed):
                key.decrypt(alg, c)
    if softhsm_lacks(store, alg, label=True):
        with pytest.raises(hsmkit.Unsupported):
            key.decrypt(alg, labelled, label=b"label")
    else:
        assert key.decrypt(alg, labelled, label=bytearray(b"label")) == b"secret"
        with pytest.raises(hsmkit.DecryptionFailed):
            key.decrypt(alg, labelled, label=b"other")
    with pytest.raises(hsmkit.InvalidInput):
        key.encrypt(alg, b"x" * 300)
    with pytest.raises(hsmkit.PermissionDenied):
        key.sign("RS256", b"m")


WRAP = [
    ("aes", {"size": 128}, ["A128KW", "A128KWP"]),
    ("aes", {"size": 192}, ["A192KW", "A192KWP"]),
    ("aes", {"size": 256}, ["A256KW", "A256KWP"]),
    ("rsa", {}, ["RSA-OAEP", "RSA-OAEP-256"]),
]


@pytest.mark.parametrize("key_type,kw,algs", WRAP)
def test_wrap_unwrap(store: hsmkit.Store, key_type: str, kw: dict, algs: list) -> None:
    key = store.create_key("k", key_type, ops=["wrapKey", "unwrapKey"], **kw)
    dek = bytes(range(32))
    for alg in algs:
        if softhsm_lacks(store, alg):
            with pytest.raises(hsmkit.Unsupported):
                key.unwrap_key(alg, key.wrap_key(alg, dek))
            continue
        w = key.wrap_key(alg, dek)
        assert w != dek
        assert key.unwrap_key(alg, w) == dek
        if alg.endswith("KWP"):
            assert key.unwrap_key(alg, key.wrap_key(alg, b"odd length 17 b.")) == b"odd length 17 b."
        bad = bytearray(w)
        bad[-1] ^= 0x80
        for b in [bytes(bad), w[:-8], b"", b"\x00" * 7]:
            with pytest.raises(hsmkit.DecryptionFailed):
                key.unwrap_key(alg, b)
    with pytest.raises(hsmkit.InvalidInput):
        key.wrap_key("A999KW", dek)


def test_public_key_exports(store: hsmkit.Store) -> None:
    for kt, kw in [("rsa", {}), ("ec", {"curve": "P-384"})]:
        key = store.create_key(kt, kt, **kw)
        pem = key.public_key_pem()
        assert isinstance(pem, bytes) and pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
        assert pem.endswith(b"-----END PUBLIC KEY-----\n")
        der = key.public_key_der()
        assert der[0] == 0x30
        jwk = key.public_key_jwk()
        assert jwk["kid"] == f"{kt}/1" and jwk["kty"] == kt.upper()
    aes = store.create_key("aes", "aes")
    for export in [aes.public_key_pem, aes.public_key_der, aes.public_key_jwk]:
        with pytest.raises(hsmkit.Unsupported):
            export()


def test_export(store: hsmkit.Store) -> None:
    plain = store.create_key("plain", "ec")
    with pytest.raises(hsmkit.PermissionDenied):
        plain.export_key()
    if store.backend_kind == "soft":
        key = store.create_key("k", "aes", size=128, exportable=True)
        raw = key.export_key()
        assert len(raw) == 16
        again = store.import_key("again", {"kty": "oct", "k": __import__("base64").urlsafe_b64encode(raw).rstrip(b"=").decode()})
        assert again.unwrap_key("A128KW", key.wrap_key("A128KW", b"k" * 16)) == b"k" * 16
    else:
        with pytest.raises(hsmkit.Unsupported):
            store.create_key("k", "aes", exportable=True)


def test_shared_between_threads(store: hsmkit.Store) -> None:
    from concurrent.futures import ThreadPoolExecutor

    key = store.create_key("k", "ec")

    def work(i: int) -> bool:
        msg = f"message {i}".encode()
        key.verify("ES256", msg, key.sign("ES256", msg))
        return store.get_key("k").version == 1

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, range(64)))
