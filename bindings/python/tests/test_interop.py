"""Interop with pyca/cryptography, an independent implementation, in both directions."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.exceptions import InvalidSignature as PycaInvalidSignature
from cryptography.hazmat.primitives import hashes, keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

import hsmkit

HASHES = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}


def b64u(n: int, length: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes(length, "big")).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"])
def test_rsa_signatures_verify_with_pyca(store: hsmkit.Store, alg: str) -> None:
    key = store.create_key("k", "rsa")
    pub = load_pem_public_key(key.public_key_pem())
    assert isinstance(pub, rsa.RSAPublicKey)
    h = HASHES[alg[2:]]
    pad = (
        padding.PKCS1v15()
        if alg.startswith("RS")
        else padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
    )
    sig = key.sign(alg, b"hello")
    pub.verify(sig, b"hello", pad, h)
    with pytest.raises(PycaInvalidSignature):
        pub.verify(sig, b"hellO", pad, h)
    # The other way: pyca signs, hsmkit verifies with the imported public key.
    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = priv.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    imported = store.import_key("pyca", pem)
    imported.verify(alg, b"data", priv.sign(b"data", pad, h))


@pytest.mark.parametrize("key_type,alg", [("ec", "ES256"), ("rsa", "PS256")])
def test_public_key_pem_is_bytes_pyca_loads(store: hsmkit.Store, key_type: str, alg: str) -> None:
    key = store.create_key("k", key_type)
    pem = key.public_key_pem()
    assert isinstance(pem, bytes)
    pub = load_pem_public_key(pem)  # as given: no .encode()
    # the same PEM as pyca writes for that key, and the same key as the DER form
    assert pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo) == pem
    assert load_der_public_key(key.public_key_der()) == pub
    if isinstance(pub, ec.EllipticCurvePublicKey):
        pub.verify(key.sign(alg, b"signed by hsmkit", encoding="der"), b"signed by hsmkit", ec.ECDSA(hashes.SHA256()))
    else:
        assert isinstance(pub, rsa.RSAPublicKey)
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        pub.verify(key.sign(alg, b"signed by hsmkit"), b"signed by hsmkit", pss, hashes.SHA256())
        with pytest.raises(PycaInvalidSignature):
            pub.verify(key.sign(alg, b"signed by hsmkit"), b"another message", pss, hashes.SHA256())


@pytest.mark.parametrize("alg,curve", [("ES256", ec.SECP256R1()), ("ES384", ec.SECP384R1()), ("ES512", ec.SECP521R1())])
def test_ecdsa_signatures_verify_with_pyca(store: hsmkit.Store, alg: str, curve: ec.EllipticCurve) -> None:
    key = store.create_key("k", "ec", curve={"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg])
    pub = load_der_public_key(key.public_key_der())
    assert isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == curve.name
    h = HASHES[alg[2:]]
    pub.verify(key.sign(alg, b"hello", encoding="der"), b"hello", ec.ECDSA(h))
    # raw r||s (JOSE) is the same signature
    raw = key.sign(alg, b"hello")
    n = len(raw) // 2
    der = utils.encode_dss_signature(int.from_bytes(raw[:n], "big"), int.from_bytes(raw[n:], "big"))
    pub.verify(der, b"hello", ec.ECDSA(h))
    # prehashed
    digest = hashlib.new("sha" + alg[2:], b"hello").digest()
    pub.verify(key.sign(alg, digest, prehashed=True, encoding="der"), b"hello", ec.ECDSA(h))
    # pyca signs, hsmkit verifies
    priv = ec.generate_private_key(curve)
    imported = store.import_key(
        "pyca", priv.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    imported.verify(alg, b"data", priv.sign(b"data", ec.ECDSA(h)), encoding="der")
    with pytest.raises(hsmkit.InvalidSignature):
        imported.verify(alg, b"datA", priv.sign(b"data", ec.ECDSA(h)), encoding="der")


@pytest.mark.parametrize("alg,h", [("RSA-OAEP", hashes.SHA1()), ("RSA-OAEP-256", hashes.SHA256())])
def test_pyca_oaep_ciphertexts_decrypt_with_hsmkit(store: hsmkit.Store, alg: str, h: hashes.HashAlgorithm) -> None:
    key = store.create_key("k", "rsa", ops=["encrypt", "decrypt"])
    pub = load_pem_public_key(key.public_key_pem())
    assert isinstance(pub, rsa.RSAPublicKey)
    for label in [None, b"a label"]:
        ct = pub.encrypt(b"from pyca", padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=label))
        unsupported = store.backend_kind == "pkcs11" and (alg == "RSA-OAEP-256" or label is not None)
        if unsupported:  # SoftHSM2 2.6 (see test_ops.softhsm_lacks)
            with pytest.raises(hsmkit.Unsupported):
                key.decrypt(alg, ct, label=label)
        else:
            assert key.decrypt(alg, ct, label=label) == b"from pyca"
    # and hsmkit's ciphertexts decrypt with pyca, for a key pyca holds
    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = priv.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    imported = store.import_key("pyca", pem, ops=["encrypt"])
    ct = imported.encrypt(alg, b"from hsmkit", label=b"L")
    assert priv.decrypt(ct, padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=b"L")) == b"from hsmkit"


def test_jwk_matches_pyca_numbers(store: hsmkit.Store) -> None:
    rsa_key = store.create_key("r", "rsa")
    nums = load_pem_public_key(rsa_key.public_key_pem()).public_numbers()  # type: ignore[union-attr]
    jwk = rsa_key.public_key_jwk()
    assert jwk == {"kty": "RSA", "kid": "r/1", "n": b64u(nums.n, 256), "e": b64u(nums.e, 3)}
    ec_key = store.create_key("e", "ec", curve="P-384")
    nums = load_pem_public_key(ec_key.public_key_pem()).public_numbers()  # type: ignore[union-attr]
    jwk = ec_key.public_key_jwk()
    assert jwk == {"kty": "EC", "kid": "e/1", "crv": "P-384", "x": b64u(nums.x, 48), "y": b64u(nums.y, 48)}


@pytest.mark.parametrize("size", [128, 192, 256])
def test_aes_key_wrap_matches_pyca(store: hsmkit.Store, size: int) -> None:
    kek_bytes = bytes(range(size // 8))
    kek = store.import_key("kek", {"kty": "oct", "k": base64.urlsafe_b64encode(kek_bytes).rstrip(b"=").decode()})
    dek = hashlib.sha256(b"dek").digest()
    w = kek.wrap_key(f"A{size}KW", dek)
    assert w == keywrap.aes_key_wrap(kek_bytes, dek)
    assert kek.unwrap_key(f"A{size}KW", keywrap.aes_key_wrap(kek_bytes, dek)) == dek
    odd = b"seventeen bytes!!"
    if store.backend_kind == "soft":
        assert kek.wrap_key(f"A{size}KWP", odd) == keywrap.aes_key_wrap_with_padding(kek_bytes, odd)
        assert kek.unwrap_key(f"A{size}KWP", keywrap.aes_key_wrap_with_padding(kek_bytes, odd)) == odd


def test_imported_pyca_private_key_signs_for_pyca(store: hsmkit.Store) -> None:
    priv = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key = store.import_key("k", pkcs8)
    priv.public_key().verify(key.sign("ES256", b"m", encoding="der"), b"m", ec.ECDSA(hashes.SHA256()))


def test_exported_key_loads_in_pyca() -> None:
    store = hsmkit.open("memory:")
    key = store.create_key("k", "rsa", exportable=True)
    priv = serialization.load_der_private_key(key.export_key(), password=None)
    assert isinstance(priv, rsa.RSAPrivateKey)
    sig = priv.sign(b"m", padding.PKCS1v15(), hashes.SHA256())
    key.verify("RS256", b"m", sig)


def test_ed25519_signatures_interoperate_with_pyca(store: hsmkit.Store) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = store.create_key("ed", "ed25519")
    assert key.key_type == "ed25519" and key.size_or_curve == "Ed25519"
    pub = load_pem_public_key(key.public_key_pem())
    assert isinstance(pub, ed25519.Ed25519PublicKey)
    sig = key.sign("EdDSA", b"hello")
    assert len(sig) == 64
    pub.verify(sig, b"hello")
    with pytest.raises(PycaInvalidSignature):
        pub.verify(sig, b"hellO")
    # EdDSA signs the message itself: a digest is refused.
    with pytest.raises(hsmkit.InvalidInput):
        key.sign("EdDSA", hashlib.sha512(b"hello").digest(), prehashed=True)
    # pyca's key, imported (PKCS#8), signs exactly as pyca does (Ed25519 is deterministic).
    priv = ed25519.Ed25519PrivateKey.generate()
    pkcs8 = priv.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    imported = store.import_key("pyca", pkcs8)
    assert imported.sign("EdDSA", b"data") == priv.sign(b"data")
    imported.verify("EdDSA", b"data", priv.sign(b"data"))
    with pytest.raises(hsmkit.InvalidSignature):
        imported.verify("EdDSA", b"datA", priv.sign(b"data"))
    # The JWK is RFC 8037's OKP form.
    jwk = key.public_key_jwk()
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519"
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert base64.urlsafe_b64decode(jwk["x"] + "=") == raw


def test_es256k_signatures_interoperate_with_pyca(store: hsmkit.Store) -> None:
    key = store.create_key("k1", "ec", curve="P-256K")
    assert key.size_or_curve == "P-256K"
    pub = load_der_public_key(key.public_key_der())
    assert isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == "secp256k1"
    pub.verify(key.sign("ES256K", b"hello", encoding="der"), b"hello", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(PycaInvalidSignature):
        pub.verify(key.sign("ES256K", b"hello", encoding="der"), b"hellO", ec.ECDSA(hashes.SHA256()))
    priv = ec.generate_private_key(ec.SECP256K1())
    imported = store.import_key(
        "pyca", priv.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    imported.verify("ES256K", b"data", priv.sign(b"data", ec.ECDSA(hashes.SHA256())), encoding="der")
    with pytest.raises(hsmkit.InvalidSignature):
        imported.verify("ES256K", b"datA", priv.sign(b"data", ec.ECDSA(hashes.SHA256())), encoding="der")


@pytest.mark.parametrize("alg,size", [("HS256", 256), ("HS384", 384), ("HS512", 512)])
def test_hmac_matches_python_hmac(store: hsmkit.Store, alg: str, size: int) -> None:
    import hmac as std_hmac

    secret = bytes((i * 31 + 7) % 256 for i in range(size // 8))
    jwk = {"kty": "oct", "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode(), "key_ops": ["sign", "verify"]}
    key = store.import_key("mac", jwk)
    assert key.key_type == "hmac" and key.size_or_curve == size
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    tag = key.sign(alg, b"message")
    assert tag == std_hmac.new(secret, b"message", digest).digest()
    key.verify(alg, b"message", tag)
    with pytest.raises(hsmkit.InvalidSignature):
        key.verify(alg, b"messagE", tag)
    # HMAC keys never leave the backend.
    with pytest.raises(hsmkit.InvalidInput):
        store.create_key("exp", "hmac", size=size, exportable=True)
    generated = store.create_key("gen", "hmac", size=size)
    generated.verify(alg, b"m", generated.sign(alg, b"m"))
    with pytest.raises(hsmkit.PermissionDenied):
        generated.export_key()
