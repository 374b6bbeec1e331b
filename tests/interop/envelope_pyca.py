#!/usr/bin/env python3
"""An independent reader of the hsmkit envelope format, written from
docs/envelope-format.md with pyca/cryptography only (no hsmkit code).

It opens every frozen vector in tests/vectors/envelope/v1.json (suite 1) and
v1-suite2.json (suite 2) with every recipient's KEK, checks the commitment and header
tag, and compares the plaintext; then checks that a flipped byte anywhere and a dropped
final chunk are rejected. Exit status 0 only if all of that holds.

    python3 tests/interop/envelope_pyca.py [VECTORS.json ...]
"""
import json
import struct
import sys
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_unwrap_with_padding

# Suite byte -> the key schedule's hash (docs/envelope-format.md, "Suites").
SUITES = {1: hashes.SHA512, 2: hashes.SHA256}


class Reject(Exception):
    pass


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise Reject("truncated header")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]


def hkdf(hash_cls, salt, ikm, info, length):
    # RFC 5869 written out, so that the schedule is checked step by step.
    h = HMAC(salt, hash_cls())
    h.update(ikm)
    prk = h.finalize()
    out, t, i = b"", b"", 1
    while len(out) < length:
        h = HMAC(prk, hash_cls())
        h.update(t + info + bytes([i]))
        t = h.finalize()
        out += t
        i += 1
    return out[:length]


def parse_header(data):
    r = Reader(data)
    if r.take(4) != b"HKEV" or r.u8() != 1:
        raise Reject("magic/version")
    suite = r.u8()
    if suite not in SUITES:
        raise Reject("suite")
    message_id = r.take(32)
    chunk_size = r.u32()
    if not 256 <= chunk_size <= 1 << 24:
        raise Reject("chunk size")
    context, last = {}, None
    for _ in range(r.u16()):
        k = r.take(r.u16()).decode()
        v = r.take(r.u16()).decode()
        if last is not None and k.encode() <= last:
            raise Reject("context order")
        last = k.encode()
        context[k] = v
    recipients = []
    for _ in range(r.u8()):
        name = r.take(r.u8()).decode()
        version = r.u32()
        alg = r.u8()
        wrapped = r.take(r.u16())
        recipients.append((name, version, alg, wrapped))
    commitment = r.take(32)
    authenticated = data[: r.pos]
    tag = r.take(16)
    return dict(
        suite=suite,
        message_id=message_id,
        chunk_size=chunk_size,
        context=context,
        recipients=recipients,
        commitment=commitment,
        authenticated=authenticated,
        tag=tag,
        body=data[r.pos :],
    )


def unwrap(alg, kek, wrapped):
    if alg in (0x01, 0x02, 0x03):
        return aes_key_unwrap(kek, wrapped)
    if alg in (0x04, 0x05, 0x06):
        return aes_key_unwrap_with_padding(kek, wrapped)
    h = hashes.SHA1() if alg == 0x11 else hashes.SHA256()
    return kek.decrypt(wrapped, padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None))


def open_envelope(data, keks, context):
    h = parse_header(data)
    if h["context"] != context:
        raise Reject("context")
    for name, version, alg, wrapped in h["recipients"]:
        kek = keks.get((name, version))
        if kek is None:
            continue
        try:
            dek = unwrap(alg, kek, wrapped)
        except Exception:
            raise Reject("unwrap")
        if len(dek) != 32:
            raise Reject("dek length")
        break
    else:
        raise Reject("no recipient")
    s, hash_cls = bytes([h["suite"]]), SUITES[h["suite"]]
    mid = h["message_id"]
    commitment = hkdf(hash_cls, mid, dek, b"hsmkit-envelope/1 commitment" + s, 32)
    header_key = hkdf(hash_cls, mid, dek, b"hsmkit-envelope/1 header" + s, 32)
    body_key = hkdf(hash_cls, mid, dek, b"hsmkit-envelope/1 body" + s, 32)
    if commitment != h["commitment"]:
        raise Reject("commitment")
    try:
        AESGCM(header_key).decrypt(bytes(12), h["tag"], h["authenticated"])
    except InvalidTag:
        raise Reject("header tag")
    body, size, out, i = h["body"], h["chunk_size"] + 16, b"", 0
    gcm = AESGCM(body_key)
    while True:
        last = len(body) <= size
        chunk, body = (body, b"") if last else (body[:size], body[size:])
        if len(chunk) < 16 or (last and len(chunk) == 16 and i > 0):
            raise Reject("short chunk")
        nonce = bytes(7) + struct.pack(">I", i) + bytes([1 if last else 0])
        try:
            out += gcm.decrypt(nonce, chunk, b"")
        except InvalidTag:
            raise Reject("chunk %d" % i)
        i += 1
        if last:
            return out


def main():
    here = Path(__file__).parents[1] / "vectors/envelope"
    paths = [Path(p) for p in sys.argv[1:]] or [here / "v1.json", here / "v1-suite2.json"]
    for path in paths:
        check_file(path)


def check_file(path):
    doc = json.loads(path.read_text())
    want_suite = doc.get("suite", 1)
    keks = {}
    for k in doc["keks"]:
        if k["type"] == "aes":
            keks[(k["name"], k["version"])] = bytes.fromhex(k["key_hex"])
        else:
            keks[(k["name"], k["version"])] = serialization.load_pem_private_key(k["pkcs8_pem"].encode(), None)
    opened = rejected = 0
    for v in doc["vectors"]:
        env = bytes.fromhex(v["envelope_hex"])
        want = bytes.fromhex(v["plaintext_hex"])
        if parse_header(env)["suite"] != want_suite:
            raise SystemExit("%s: suite %d, not %d" % (v["name"], parse_header(env)["suite"], want_suite))
        for r in v["recipients"]:
            one = {(r["name"], r["version"]): keks[(r["name"], r["version"])]}
            got = open_envelope(env, one, v["context"])
            assert got == want, "%s: plaintext differs" % v["name"]
            opened += 1
        all_keks = {(r["name"], r["version"]): keks[(r["name"], r["version"])] for r in v["recipients"]}
        tampered = [env[:i] + bytes([env[i] ^ 0x01]) + env[i + 1 :] for i in range(len(env))]
        size = v["chunk_size"] + 16
        header_len = len(env) - len(parse_header(env)["body"])
        if len(env) - header_len > size:
            tampered.append(env[: header_len + size])  # final chunk dropped
        for t in tampered:
            try:
                open_envelope(t, all_keks, v["context"])
            except (Reject, UnicodeDecodeError, ValueError):
                rejected += 1
                continue
            raise AssertionError("%s: a tampered envelope opened" % v["name"])
    print(
        "%s (suite %d): pyca/cryptography opened %d vector/recipient pairs and rejected %d tampered envelopes"
        % (path.name, want_suite, opened, rejected)
    )
    if opened != 7 or rejected == 0:  # not `assert`: checked under `python -O` too
        raise SystemExit("%s: expected 7 openings and some rejections" % path.name)


if __name__ == "__main__":
    main()
