"""Writes the seed corpora of the key_import, parse_text, verify, unwrap and c_abi fuzz
targets (the envelope seeds come from the frozen vectors). Run from the repository root:
python3 fuzz/seeds/make_seeds.py. Keys are fresh each run; the seeds are inputs, not
answers, so any run's output is as good."""

import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, utils

root = Path(__file__).parent
E = serialization.Encoding
PF = serialization.PrivateFormat
PubF = serialization.PublicFormat
NONE = serialization.NoEncryption()


def write(target: str, name: str, data: bytes) -> None:
    d = root / target
    d.mkdir(exist_ok=True)
    (d / name).write_bytes(data)


def b64u(n: int, size: int) -> str:
    import base64

    return base64.urlsafe_b64encode(n.to_bytes(size, "big")).rstrip(b"=").decode()


r = rsa.generate_private_key(65537, 2048)
keys = {"rsa": r, "p256": ec.generate_private_key(ec.SECP256R1()), "p384": ec.generate_private_key(ec.SECP384R1()),
        "p521": ec.generate_private_key(ec.SECP521R1()), "p256k": ec.generate_private_key(ec.SECP256K1())}
for name, k in keys.items():
    write("key_import", f"{name}-pkcs8.der", k.private_bytes(E.DER, PF.PKCS8, NONE))
    write("key_import", f"{name}-pkcs8.pem", k.private_bytes(E.PEM, PF.PKCS8, NONE))
    write("key_import", f"{name}-spki.der", k.public_key().public_bytes(E.DER, PubF.SubjectPublicKeyInfo))
    write("key_import", f"{name}-spki.pem", k.public_key().public_bytes(E.PEM, PubF.SubjectPublicKeyInfo))
    trad = k.private_bytes(E.PEM, PF.TraditionalOpenSSL, NONE)  # PKCS#1 or SEC1
    write("key_import", f"{name}-traditional.pem", trad)
pn = r.public_key().public_numbers()
write("key_import", "rsa-public.jwk", json.dumps({"kty": "RSA", "n": b64u(pn.n, 256), "e": "AQAB"}).encode())
en = keys["p256"].private_numbers()
write("key_import", "p256-private.jwk", json.dumps({
    "kty": "EC", "crv": "P-256", "x": b64u(en.public_numbers.x, 32), "y": b64u(en.public_numbers.y, 32),
    "d": b64u(en.private_value, 32)}).encode())
ed = ed25519.Ed25519PrivateKey.generate()
write("key_import", "ed25519-pkcs8.der", ed.private_bytes(E.DER, PF.PKCS8, NONE))
write("key_import", "ed25519-spki.pem", ed.public_key().public_bytes(E.PEM, PubF.SubjectPublicKeyInfo))
edx = ed.public_key().public_bytes(E.Raw, PubF.Raw)
write("key_import", "ed25519-private.jwk", json.dumps({
    "kty": "OKP", "crv": "Ed25519", "x": b64u(int.from_bytes(edx, "big"), 32),
    "d": b64u(int.from_bytes(ed.private_bytes(E.Raw, PF.Raw, NONE), "big"), 32)}).encode())
write("key_import", "hmac.jwk", json.dumps({"kty": "oct", "k": b64u(int.from_bytes(os.urandom(48), "big"), 48),
                                            "key_ops": ["sign", "verify"]}).encode())
write("key_import", "aes.jwk", json.dumps({"kty": "oct", "k": b64u(int.from_bytes(os.urandom(32), "big"), 32)}).encode())

for i, text in enumerate([
    "pkcs11:token=hsmkit%20test;object=k;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234",
    "pkcs11:serial=0123456789abcdef;slot-id=7?pin-source=file:/tmp/pin",
    "file:///var/lib/hsmkit/keys", "file://localhost/tmp/x%20y", "memory:", "pkcs:typo",
    '{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}', "name-with_dots.1",
]):
    write("parse_text", f"text-{i}", text.encode())
for curve, h in [(ec.SECP256R1(), hashes.SHA256()), (ec.SECP521R1(), hashes.SHA512())]:
    der = ec.generate_private_key(curve).sign(b"m", ec.ECDSA(h))
    write("parse_text", f"der-{curve.name}", der)
    rr, ss = utils.decode_dss_signature(der)
    n = (curve.key_size + 7) // 8
    write("parse_text", f"raw-{curve.name}", rr.to_bytes(n, "big") + ss.to_bytes(n, "big"))

# verify: [algorithm and encoding, message byte, signature...]; 14 algorithms (see ALGS),
# DER when (sel / 14) is odd.
for sel, n in [(0, 256), (3, 256), (6, 64), (7, 96), (8, 132), (9, 64), (10, 64), (11, 32), (12, 48), (13, 64)]:
    write("verify", f"alg{sel}-raw", bytes([sel, 1]) + os.urandom(n))
write("verify", "es256-der", bytes([6 + 14, 1]) + keys["p256"].sign(b"x", ec.ECDSA(hashes.SHA256())))
write("verify", "es512-der", bytes([8 + 14, 1]) + keys["p521"].sign(b"x", ec.ECDSA(hashes.SHA512())))
write("verify", "es256k-der", bytes([9 + 14, 1]) + keys["p256k"].sign(b"x", ec.ECDSA(hashes.SHA256())))

# unwrap: [algorithm, wrapped...]
for sel, n in [(0, 24), (2, 40), (3, 16), (5, 40), (6, 256), (7, 256)]:
    write("unwrap", f"alg{sel}", bytes([sel]) + os.urandom(n))

# c_abi: [call, key and algorithm, flags, input...]
for call in range(12):
    for flags in (0x02, 0x00, 0x01, 0x20):
        write("c_abi", f"call{call}-flags{flags:02x}", bytes([call, 0x21, flags]) + b"some input bytes")
write("c_abi", "import-pem", bytes([10, 0, 2]) + keys["p256"].private_bytes(E.PEM, PF.PKCS8, NONE))
write("c_abi", "describe-rsa", bytes([9, 0, 2]) + b"rsa")

# jws_parse: tokens from PyJWT with the fuzz target's fixed keys (kid NAME/1), and some
# that must be refused. The RSA key is a fixed test key (jws_parse_rsa.pem), never used
# elsewhere.
import jwt as pyjwt

jws_keys = {
    "p256": ec.derive_private_key(
        int.from_bytes(__import__("base64").urlsafe_b64decode("jpsQnnGQmL-YBIffH1136cLNMY6XrcBgaY-t0Tp1wYw="), "big"),
        ec.SECP256R1(),
    ),
    "ed25519": ed25519.Ed25519PrivateKey.from_private_bytes(bytes([7] * 32)),
    "hmac": bytes([0x5C] * 64),
    "rsa": serialization.load_pem_private_key((root / "jws_parse_rsa.pem").read_bytes(), None),
}
for name, algs in [("p256", ["ES256"]), ("ed25519", ["EdDSA"]), ("hmac", ["HS256", "HS512"]), ("rsa", ["RS256", "PS384"])]:
    for alg in algs:
        claims = {"sub": "fuzz", "aud": "fuzz", "exp": 4102444800, "nbf": 0}
        tok = pyjwt.encode(claims, jws_keys[name], algorithm=alg, headers={"kid": f"{name}/1"})
        write("jws_parse", f"{name}-{alg}", tok.encode())
        write("jws_parse", f"{name}-{alg}-crit", pyjwt.encode(claims, jws_keys[name], algorithm=alg, headers={"kid": f"{name}/1", "crit": ["exp"]}).encode())
write("jws_parse", "none", pyjwt.encode({"a": 1}, None, algorithm="none", headers={"kid": "p256/1"}).encode())
write("jws_parse", "confused", pyjwt.encode({"a": 1}, "x" * 32, algorithm="HS256", headers={"kid": "rsa/1"}).encode())

# x509_parse: certificates and requests (DER and PEM) of every key type and signature
# padding hsmkit reads, from pyca/cryptography.
import datetime
import ipaddress

from cryptography import x509 as cx509
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.oid import NameOID

now = datetime.datetime.now(datetime.timezone.utc)
name = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, "seed"), cx509.NameAttribute(NameOID.ORGANIZATION_NAME, "hsmkit")])
san = cx509.SubjectAlternativeName([cx509.DNSName("seed.example"), cx509.IPAddress(ipaddress.ip_address("10.0.0.1"))])
for label, key, h, pad in [
    ("rsa", keys["rsa"], hashes.SHA256(), None),
    ("pss", keys["rsa"], hashes.SHA256(), padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)),
    ("p256", keys["p256"], hashes.SHA256(), None),
    ("p521", keys["p521"], hashes.SHA512(), None),
    ("ed25519", ed25519.Ed25519PrivateKey.generate(), None, None),
]:
    kw = {"rsa_padding": pad} if pad is not None else {}
    cert = (
        cx509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(cx509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30)).add_extension(san, critical=False)
        .add_extension(cx509.BasicConstraints(ca=True, path_length=1), critical=True)
        .sign(key, h, **kw)
    )
    csr = cx509.CertificateSigningRequestBuilder().subject_name(name).add_extension(san, critical=False).sign(key, h, **kw)
    write("x509_parse", f"cert-{label}.der", cert.public_bytes(E.DER))
    write("x509_parse", f"cert-{label}.pem", cert.public_bytes(E.PEM))
    write("x509_parse", f"csr-{label}.der", csr.public_bytes(E.DER))
    write("x509_parse", f"csr-{label}.pem", csr.public_bytes(E.PEM))
# pkcs12_parse: PKCS#12 files with the password "pw" (few KDF rounds, so each input is fast),
# AES (PBES2) with SHA-256 and SHA-1 MACs, unencrypted, and legacy 3DES (refused).
from cryptography.hazmat.primitives.serialization import pkcs12

PBES = pkcs12.PBES
for label, key in [("rsa", keys["rsa"]), ("p256", keys["p256"])]:
    cert = (
        cx509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(cx509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256())
    )
    for enc_label, alg, mac in [
        ("aes-sha256", PBES.PBESv2SHA256AndAES256CBC, hashes.SHA256()),
        ("aes-sha1mac", PBES.PBESv2SHA256AndAES256CBC, hashes.SHA1()),
        ("3des", PBES.PBESv1SHA1And3KeyTripleDESCBC, hashes.SHA1()),
    ]:
        enc = PF.PKCS12.encryption_builder().kdf_rounds(1).key_cert_algorithm(alg).hmac_hash(mac).build(b"pw")
        write("pkcs12_parse", f"{label}-{enc_label}.p12", pkcs12.serialize_key_and_certificates(b"seed", key, cert, [cert], enc))
    write("pkcs12_parse", f"{label}-clear.p12", pkcs12.serialize_key_and_certificates(b"seed", key, cert, None, NONE))
