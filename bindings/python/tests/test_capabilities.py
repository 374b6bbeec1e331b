"""Store.capabilities(): what the backend can do, as a dict, and that it tells the truth."""

from __future__ import annotations

from typing import Any, Mapping

import pytest

import hsmkit

KEYS = {
    "engine", "metadata", "generate", "import", "export", "sign", "decrypt", "wrap", "unwrap", "oaep_label", "notes"
}


def check_shape(caps: Mapping[str, Any]) -> None:
    assert set(caps) == KEYS
    for k in ("engine", "metadata"):
        assert isinstance(caps[k], str) and caps[k]
    for k in ("import", "export", "oaep_label"):
        assert isinstance(caps[k], bool)
    for k in ("generate", "sign", "decrypt", "wrap", "unwrap", "notes"):
        assert isinstance(caps[k], list) and all(isinstance(x, str) for x in caps[k])


def test_capabilities_on_both_backends(store: hsmkit.Store) -> None:
    caps = store.capabilities()
    check_shape(caps)
    assert caps["engine"] == store.engine  # the getter still works, and agrees
    if store.backend_kind == "soft":
        assert (caps["engine"], caps["metadata"]) == ("aws-lc", "keystore")
        assert caps["import"] and caps["export"] and caps["oaep_label"]
        assert caps["notes"] == []
        assert caps["generate"] == [
            "RSA-2048", "RSA-3072", "RSA-4096", "EC-P-256", "EC-P-384", "EC-P-521", "AES-128", "AES-192", "AES-256",
            "EC-P-256K", "Ed25519", "HMAC-256", "HMAC-384", "HMAC-512",
        ]
        assert caps["sign"] == [
            "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
            "ES256K", "EdDSA", "HS256", "HS384", "HS512",
        ]
        assert caps["decrypt"] == ["RSA-OAEP", "RSA-OAEP-256"]
    else:
        assert store.backend_kind == "pkcs11"
        assert (caps["engine"], caps["metadata"]) == ("pkcs11", "token")
        assert caps["import"] and not caps["export"]
    # A new dict each call: changing one does not change the store's answer.
    caps["sign"].clear()
    assert store.capabilities()["sign"]


def test_capabilities_match_what_the_store_does(store: hsmkit.Store) -> None:
    """Every listed signature algorithm for P-256 signs, and a decryption algorithm the
    store leaves out is refused as Unsupported (SoftHSM2 has no OAEP with SHA-256)."""
    caps = store.capabilities()
    assert "EC-P-256" in caps["generate"] and "ES256" in caps["sign"]
    ec = store.create_key("ec", "ec", curve="P-256")
    ec.verify("ES256", b"m", ec.sign("ES256", b"m"))
    assert "AES-256" in caps["generate"] and "A256KW" in caps["wrap"] and "A256KW" in caps["unwrap"]
    kek = store.create_key("kek", "aes")
    assert kek.unwrap_key("A256KW", kek.wrap_key("A256KW", bytes(32))) == bytes(32)
    rsa = store.create_key("rsa", "rsa", size=2048, ops=["encrypt", "decrypt"])
    for alg in ("RSA-OAEP", "RSA-OAEP-256"):
        ct = rsa.encrypt(alg, b"secret")  # a public operation: always in software
        if alg in caps["decrypt"]:
            assert rsa.decrypt(alg, ct) == b"secret"
        else:
            with pytest.raises(hsmkit.Unsupported):
                rsa.decrypt(alg, ct)
    if store.backend_kind == "pkcs11":
        assert "RSA-OAEP-256" not in caps["decrypt"]


def test_capabilities_of_a_memory_store() -> None:
    caps = hsmkit.open("memory:").capabilities()
    check_shape(caps)
    assert (caps["engine"], caps["metadata"]) == ("aws-lc", "memory")
