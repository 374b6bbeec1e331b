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
