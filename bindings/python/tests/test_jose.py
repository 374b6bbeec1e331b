"""JWS, JWT and JWKS through Python, checked against PyJWT (an independent implementation)
in both directions."""

from __future__ import annotations

import time
from typing import Any, Dict

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import hsmkit
from hsmkit.exceptions import InvalidInput, InvalidSignature, KeyNotFound

# (key type, create_key keywords, algorithm)
KEYS = [
    ("ec", {}, "ES256"),
    ("ec", {"curve": "P-384"}, "ES384"),
    ("rsa", {}, "RS256"),
    ("rsa", {}, "PS256"),
]


@pytest.mark.parametrize("key_type,kw,alg", KEYS)
def test_jwt_round_trip(store: hsmkit.Store, key_type: str, kw: Dict[str, Any], alg: str) -> None:
    key = store.create_key("issuer", key_type, **kw)
    token = key.jwt_sign(alg, {"sub": "alice", "aud": "payments", "n": [1, 2]}, expires_in=300)
    assert isinstance(token, str)
    claims = store.jwt_verify(token, audience="payments")
    assert claims["sub"] == "alice" and claims["n"] == [1, 2]
    assert isinstance(claims["exp"], int) and isinstance(claims["iat"], int)
    assert 295 <= claims["exp"] - claims["iat"] <= 305
    header = jwt.get_unverified_header(token)
    assert header == {"alg": alg, "kid": "issuer/1", "typ": "JWT"}
    # A list of audiences accepts the token when one matches.
    assert store.jwt_verify(token, audience=["other", "payments"])["sub"] == "alice"
    # Restricting the algorithms to one the token does not use refuses it.
    with pytest.raises(InvalidInput):
        store.jwt_verify(token, audience="payments", algorithms=["HS256"])


@pytest.mark.parametrize("key_type,kw,alg", KEYS)
def test_pyjwt_verifies_hsmkit_jwt_with_jwks(store: hsmkit.Store, key_type: str, kw: Dict[str, Any], alg: str) -> None:
    key = store.create_key("issuer", key_type, **kw)
    token = key.jwt_sign(alg, {"sub": "bob", "aud": "api", "iss": "https://issuer.example"}, expires_in=60)
    doc = store.jwks(["issuer"])
    assert [k["kid"] for k in doc["keys"]] == ["issuer/1"]
    keyset = jwt.PyJWKSet.from_dict(doc)
    signing_key = keyset[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, signing_key.key, algorithms=[alg], audience="api", issuer="https://issuer.example")
    assert claims["sub"] == "bob"
    # A flipped signature byte is refused by PyJWT too.
    head, body, sig = token.split(".")
    flipped = sig[:5] + ("A" if sig[5] != "A" else "B") + sig[6:]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(f"{head}.{body}.{flipped}", signing_key.key, algorithms=[alg], audience="api")


def test_jwks_lists_every_verifying_version(store: hsmkit.Store) -> None:
    store.create_key("k", "ec")
    store.rotate_key("k")
    doc = store.jwks(["k", "k"])
    assert sorted(k["kid"] for k in doc["keys"]) == ["k/1", "k/2"]
    assert all(k["use"] == "sig" and k["alg"] == "ES256" for k in doc["keys"])
    with pytest.raises(KeyNotFound):
        store.jwks(["missing"])


def test_hsmkit_verifies_pyjwt_token_from_imported_keys(store: hsmkit.Store) -> None:
    now = int(time.time())
    # EC: the private key imported into the store; the token names it in kid.
    ec_priv = ec.generate_private_key(ec.SECP256R1())
    ec_pem = ec_priv.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    store.import_key("partner", ec_pem)
    token = jwt.encode(
        {"sub": "carol", "aud": "me", "exp": now + 60, "iat": now},
        ec_priv,
        algorithm="ES256",
        headers={"kid": "partner/1"},
    )
    assert store.jwt_verify(token, audience="me")["sub"] == "carol"
    payload, header, name, version = store.jws_verify(token)
    assert (header["alg"], name, version) == ("ES256", "partner", 1)
    assert b'"carol"' in payload
    # RSA (PS256), the private key imported too.
    rsa_priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_pem = rsa_priv.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    store.import_key("partner-rsa", rsa_pem)
    token = jwt.encode({"exp": now + 60}, rsa_priv, algorithm="PS256", headers={"kid": "partner-rsa/1"})
    assert store.jwt_verify(token)["exp"] == now + 60
    # Signed by another key with the same kid: the signature does not verify.
    other = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode({"exp": now + 60}, other, algorithm="ES256", headers={"kid": "partner/1"})
    with pytest.raises(InvalidSignature):
        store.jwt_verify(forged)


def test_refused_claims(store: hsmkit.Store) -> None:
    key = store.create_key("issuer", "ec")
    now = int(time.time())
    expired = key.jwt_sign("ES256", {"exp": now - 3600, "aud": "a"}, issued_at=False)
    with pytest.raises(InvalidInput, match="expired") as e:
        store.jwt_verify(expired, audience="a")
    assert e.value.reason == "parameter"
    # Within the leeway it is accepted.
    assert store.jwt_verify(expired, audience="a", leeway=7200.0)["aud"] == "a"
    token = key.jwt_sign("ES256", {"aud": "a", "iss": "me"}, expires_in=60)
    with pytest.raises(InvalidInput, match="audience"):
        store.jwt_verify(token, audience="b")
    with pytest.raises(InvalidInput, match="audience"):
        store.jwt_verify(token)  # a token with an aud needs an expected audience
    with pytest.raises(InvalidInput, match="issuer"):
        store.jwt_verify(token, audience="a", issuer="someone-else")
    no_exp = key.jwt_sign("ES256", {"sub": "x"})
    with pytest.raises(InvalidInput, match="'exp'"):
        store.jwt_verify(no_exp)
    assert store.jwt_verify(no_exp, require_exp=False)["sub"] == "x"
    # Tampered payload: InvalidSignature, not InvalidInput.
    head, _, sig = token.split(".")
    body = jwt.utils.base64url_encode(b'{"aud":"a","iss":"me","exp":9999999999}').decode()
    with pytest.raises(InvalidSignature):
        store.jwt_verify(f"{head}.{body}.{sig}", audience="a")
    with pytest.raises(InvalidInput) as e:
        store.jwt_verify("not.a-token")
    assert e.value.reason == "malformed"


def test_jws_round_trip_and_bad_arguments(store: hsmkit.Store) -> None:
    key = store.create_key("signer", "rsa")
    token = key.jws_sign("RS256", b"\x00binary\xff", {"cty": "octet"})
    payload, header, name, version = store.jws_verify(token, algorithms=["RS256"])
    assert payload == b"\x00binary\xff"
    assert header == {"alg": "RS256", "kid": "signer/1", "cty": "octet"}
    assert (name, version) == ("signer", 1)
    with pytest.raises(InvalidInput):
        store.jws_verify(token, algorithms=["PS256"])
    with pytest.raises(InvalidInput):
        key.jws_sign("RS256", b"x", {"kid": "forged/1"})
    with pytest.raises(InvalidInput):
        key.jwt_sign("RS256", {"exp": 1}, expires_in=60)
    with pytest.raises(InvalidInput):
        key.jwt_sign("RS256", {"sub": "x"}, expires_in=-1)
    with pytest.raises(InvalidInput):
        key.jwt_sign("NOPE", {"sub": "x"})
    with pytest.raises(InvalidInput):
        key.jwt_sign("RS256", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="JSON"):
        key.jwt_sign("RS256", {"sub": b"bytes"})
    with pytest.raises(InvalidInput, match="JSON"):
        key.jwt_sign("RS256", {"n": float("nan")})
    with pytest.raises(InvalidInput):
        store.jwt_verify(token, leeway=-1.0)
