#!/usr/bin/python3
"""What a PKCS#11 token can do, one line per probe: `name | ok/CKR_... | detail`.

    eval "$(tests/tpm2/token.sh start DIR | sed 's/^/export /')"
    /usr/bin/python3 tests/tpm2/survey.py [LABEL]      # needs python3-pykcs11, python3-cryptography

Written for tpm2-pkcs11 on swtpm, works on any module (HSMKIT_TPM2_MODULE or PKCS11_MODULE).
`survey.py --read-data LABEL` is the second process of the CKO_DATA persistence probe.
"""
import os
import subprocess
import sys
import time

import PyKCS11
from PyKCS11 import LowLevel as LL
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

MODULE = os.environ.get("HSMKIT_TPM2_MODULE") or os.environ["PKCS11_MODULE"]
PIN = "1234"

lib = PyKCS11.PyKCS11Lib()
lib.load(MODULE)


def err(e):
    if isinstance(e, PyKCS11.PyKCS11Error):
        return PyKCS11.CKR.get(e.value, hex(e.value))
    return f"{type(e).__name__}: {e}"


ROWS = []


def probe_once(name, fn):
    t = time.monotonic()
    try:
        detail = fn()
        res = "ok"
    except Exception as e:  # noqa: BLE001 - every failure is a row
        res, detail = err(e), ""
    ms = (time.monotonic() - t) * 1000
    ROWS.append((name, res, detail or ""))
    print(f"{name} | {res} | {detail or ''} | {ms:.0f} ms", flush=True)
    return res == "ok"


def session(label):
    for slot in lib.getSlotList(tokenPresent=True):
        if lib.getTokenInfo(slot).label.strip() == label:
            s = lib.openSession(slot, PyKCS11.CKF_RW_SESSION)
            try:
                s.login(PIN)
            except PyKCS11.PyKCS11Error as e:
                if e.value != PyKCS11.CKR_USER_ALREADY_LOGGED_IN:
                    raise
            return slot, s
    raise SystemExit(f"no token {label}")


def merged(base, extra):
    """`base` with the attributes of `extra` replacing those of the same type."""
    types = {t for t, _ in extra}
    return [a for a in base if a[0] not in types] + list(extra)


def rsa_pair(s, bits, token=True, extra_pub=(), extra_priv=(), label="rsa"):
    pub = [
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_RSA),
        (PyKCS11.CKA_TOKEN, token), (PyKCS11.CKA_VERIFY, True), (PyKCS11.CKA_ENCRYPT, True),
        (PyKCS11.CKA_MODULUS_BITS, bits), (PyKCS11.CKA_PUBLIC_EXPONENT, (0x01, 0x00, 0x01)),
        (PyKCS11.CKA_LABEL, label), (PyKCS11.CKA_ID, label.encode()),
    ]
    pub = merged(pub, extra_pub)
    priv = [
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_RSA),
        (PyKCS11.CKA_TOKEN, token), (PyKCS11.CKA_PRIVATE, True), (PyKCS11.CKA_SENSITIVE, True),
        (PyKCS11.CKA_SIGN, True), (PyKCS11.CKA_DECRYPT, True),
        (PyKCS11.CKA_LABEL, label), (PyKCS11.CKA_ID, label.encode()),
    ]
    priv = merged(priv, extra_priv)
    return s.generateKeyPair(pub, priv, PyKCS11.MechanismRSAGENERATEKEYPAIR)


CURVES = {  # DER OIDs
    "P-256": (bytes.fromhex("06082a8648ce3d030107"), ec.SECP256R1()),
    "P-384": (bytes.fromhex("06052b81040022"), ec.SECP384R1()),
    "P-521": (bytes.fromhex("06052b81040023"), ec.SECP521R1()),
}


def ec_pair(s, curve, token=True, extra_pub=(), extra_priv=(), label="ec"):
    pub = [
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC),
        (PyKCS11.CKA_TOKEN, token), (PyKCS11.CKA_VERIFY, True),
        (PyKCS11.CKA_EC_PARAMS, CURVES[curve][0]), (PyKCS11.CKA_LABEL, label), (PyKCS11.CKA_ID, label.encode()),
    ]
    pub = merged(pub, extra_pub)
    priv = [
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC),
        (PyKCS11.CKA_TOKEN, token), (PyKCS11.CKA_PRIVATE, True), (PyKCS11.CKA_SENSITIVE, True),
        (PyKCS11.CKA_SIGN, True), (PyKCS11.CKA_LABEL, label), (PyKCS11.CKA_ID, label.encode()),
    ]
    priv = merged(priv, extra_priv)
    return s.generateKeyPair(pub, priv, PyKCS11.Mechanism(PyKCS11.CKM_EC_KEY_PAIR_GEN))


def aes_key(s, nbytes, token=True, extra=(), label="aes"):
    t = [
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_AES),
        (PyKCS11.CKA_TOKEN, token), (PyKCS11.CKA_PRIVATE, True), (PyKCS11.CKA_SENSITIVE, True),
        (PyKCS11.CKA_ENCRYPT, True), (PyKCS11.CKA_DECRYPT, True), (PyKCS11.CKA_VALUE_LEN, nbytes),
        (PyKCS11.CKA_LABEL, label),
    ]
    t = merged(t, extra)
    return s.generateKey(t, PyKCS11.Mechanism(PyKCS11.CKM_AES_KEY_GEN))


def rsa_public(s, pub):
    n, e = s.getAttributeValue(pub, [PyKCS11.CKA_MODULUS, PyKCS11.CKA_PUBLIC_EXPONENT])
    return rsa.RSAPublicNumbers(int.from_bytes(bytes(e), "big"), int.from_bytes(bytes(n), "big")).public_key()


HASHES = {
    "SHA-1": (PyKCS11.CKM_SHA_1, PyKCS11.CKG_MGF1_SHA1, hashes.SHA1()),
    "SHA-256": (PyKCS11.CKM_SHA256, PyKCS11.CKG_MGF1_SHA256, hashes.SHA256()),
    "SHA-384": (PyKCS11.CKM_SHA384, PyKCS11.CKG_MGF1_SHA384, hashes.SHA384()),
    "SHA-512": (PyKCS11.CKM_SHA512, PyKCS11.CKG_MGF1_SHA512, hashes.SHA512()),
}
PSS_MECH = {"SHA-256": PyKCS11.CKM_SHA256_RSA_PKCS_PSS, "SHA-384": PyKCS11.CKM_SHA384_RSA_PKCS_PSS,
            "SHA-512": PyKCS11.CKM_SHA512_RSA_PKCS_PSS}


def read_data(label):
    _, s = session(label)
    objs = s.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_DATA), (PyKCS11.CKA_LABEL, "meta")])
    vals = [(bytes(s.getAttributeValue(o, [PyKCS11.CKA_VALUE])[0]), s.getAttributeValue(o, [PyKCS11.CKA_APPLICATION])[0])
            for o in objs]
    print(repr(vals))


def main(label):
    slot, s = session(label)
    msg = b"hsmkit survey message"

    def probe(name, fn):
        # A failed operation can leave the session's operation active (tpm2-pkcs11 does
        # after a failed C_Decrypt): every failure gets a new session.
        nonlocal s
        ok = probe_once(name, fn)
        if not ok:
            # The new one first: closing a slot's last session logs the user out.
            old = s
            _, s = session(label)
            old.closeSession()
        return ok

    probe("C_GetTokenInfo", lambda: str(lib.getTokenInfo(slot)).replace("\n", "; ")[:300])
    probe("C_GetMechanismList", lambda: ", ".join(PyKCS11.CKM.get(m, hex(m)) if isinstance(m, int) else m
                                                 for m in lib.getMechanismList(slot)))
    for m in ("CKM_RSA_PKCS_KEY_PAIR_GEN", "CKM_EC_KEY_PAIR_GEN", "CKM_AES_KEY_GEN"):
        probe(f"C_GetMechanismInfo {m}", lambda m=m: str(lib.getMechanismInfo(slot, m)).replace("\n", "; "))

    keys = {}
    for bits in (1024, 2048, 3072, 4096):
        def gen(bits=bits):
            keys[f"rsa{bits}"] = rsa_pair(s, bits, label=f"rsa{bits}")
        probe(f"generate RSA-{bits} token keypair (C_GenerateKeyPair)", gen)
    for curve in CURVES:
        def gen(curve=curve):
            keys[curve] = ec_pair(s, curve, label=curve)
        probe(f"generate EC {curve} token keypair", gen)
    for n in (16, 24, 32):
        def gen(n=n):
            keys[f"aes{n}"] = aes_key(s, n, label=f"aes{n * 8}")
        probe(f"generate AES-{n * 8} token key (C_GenerateKey)", gen)

    rsa_key = keys.get("rsa2048") or keys.get("rsa3072")
    if rsa_key:
        pub, priv = rsa_key
        spub = rsa_public(s, pub)

        def pkcs1():
            sig = bytes(s.sign(priv, msg, PyKCS11.Mechanism(PyKCS11.CKM_SHA256_RSA_PKCS)))
            spub.verify(sig, msg, padding.PKCS1v15(), hashes.SHA256())
            return "verified in software"
        probe("RSA PKCS#1 v1.5 sign CKM_SHA256_RSA_PKCS", pkcs1)

        def pkcs1_raw():
            from cryptography.hazmat.primitives.asymmetric.utils import Prehashed  # noqa: F401
            di = bytes.fromhex("3031300d060960864801650304020105000420") + hash_of(msg, hashes.SHA256())
            sig = bytes(s.sign(priv, di, PyKCS11.Mechanism(PyKCS11.CKM_RSA_PKCS)))
            spub.verify(sig, msg, padding.PKCS1v15(), hashes.SHA256())
            return "verified in software"
        probe("RSA PKCS#1 v1.5 sign CKM_RSA_PKCS on DigestInfo", pkcs1_raw)

        for h in ("SHA-256", "SHA-384", "SHA-512"):
            hm, mgf, ch = HASHES[h]

            def pss(h=h, hm=hm, mgf=mgf, ch=ch):
                sig = bytes(s.sign(priv, msg, PyKCS11.RSA_PSS_Mechanism(PSS_MECH[h], hm, mgf, ch.digest_size)))
                spub.verify(sig, msg, padding.PSS(padding.MGF1(ch), ch.digest_size), ch)
                return "verified in software"
            probe(f"RSA PSS sign {h} (CKM_{h.replace('-', '')}_RSA_PKCS_PSS, sLen=hLen)", pss)

            def pss_raw(h=h, hm=hm, mgf=mgf, ch=ch):
                d = hash_of(msg, ch)
                sig = bytes(s.sign(priv, d, PyKCS11.RSA_PSS_Mechanism(PyKCS11.CKM_RSA_PKCS_PSS, hm, mgf, ch.digest_size)))
                spub.verify(sig, msg, padding.PSS(padding.MGF1(ch), ch.digest_size), ch)
                return "verified in software"
            probe(f"RSA PSS sign {h} (CKM_RSA_PKCS_PSS on digest)", pss_raw)

        for h, lbl in (("SHA-1", None), ("SHA-256", None), ("SHA-256", b"hsmkit-label"), ("SHA-1", b"hsmkit-label")):
            hm, mgf, ch = HASHES[h]

            def oaep(hm=hm, mgf=mgf, ch=ch, lbl=lbl):
                ct = spub.encrypt(msg, padding.OAEP(padding.MGF1(ch), ch, lbl))
                mech = PyKCS11.RSAOAEPMechanism(hm, mgf, lbl)
                pt = bytes(s.decrypt(priv, ct, mech))
                assert pt == msg, "wrong plaintext"
                return "software-encrypted, token-decrypted"
            probe(f"RSA OAEP decrypt {h}{' label' if lbl else ''}", oaep)

        def oaep_enc():
            ct = bytes(s.encrypt(pub, msg, PyKCS11.RSAOAEPMechanism(PyKCS11.CKM_SHA256, PyKCS11.CKG_MGF1_SHA256)))
            return f"{len(ct)} bytes"
        probe("RSA OAEP encrypt SHA-256 on token public key", oaep_enc)

    for curve in CURVES:
        if curve not in keys:
            continue
        pub, priv = keys[curve]
        ch = {"P-256": hashes.SHA256(), "P-384": hashes.SHA384(), "P-521": hashes.SHA512()}[curve]

        def ecdsa(priv=priv, ch=ch, curve=curve):
            sig = bytes(s.sign(priv, hash_of(msg, ch), PyKCS11.Mechanism(PyKCS11.CKM_ECDSA)))
            return f"{len(sig)}-byte raw r||s"
        probe(f"ECDSA sign {curve} CKM_ECDSA on digest", ecdsa)

        def ecdsa_h(priv=priv):
            sig = bytes(s.sign(priv, msg, PyKCS11.Mechanism(PyKCS11.CKM_ECDSA_SHA256)))
            return f"{len(sig)} bytes"
        probe(f"ECDSA sign {curve} CKM_ECDSA_SHA256", ecdsa_h)

    # Key wrapping.
    def wrap_kek():
        return aes_key(s, 32, extra=[(PyKCS11.CKA_WRAP, True), (PyKCS11.CKA_UNWRAP, True)], label="kek")
    have_kek = probe("generate AES-256 with CKA_WRAP/CKA_UNWRAP", lambda: keys.__setitem__("kek", wrap_kek()))
    probe("generate AES-256 CKA_EXTRACTABLE=true CKA_SENSITIVE=false",
          lambda: keys.__setitem__("target", aes_key(s, 32, extra=[(PyKCS11.CKA_EXTRACTABLE, True),
                                                                  (PyKCS11.CKA_SENSITIVE, False)], label="tgt")))
    probe("generate AES-256 CKA_EXTRACTABLE=true (sensitive)",
          lambda: aes_key(s, 32, extra=[(PyKCS11.CKA_EXTRACTABLE, True)], label="tgt2"))
    # C_GenerateKey is not implemented by tpm2-pkcs11: an AES key made by
    # `tpm2_ptool addkey --key-label=ptaes --algorithm=aes256` before the run, if any.
    found = s.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY), (PyKCS11.CKA_LABEL, "ptaes")])
    if found:
        keys["aes32"] = found[0]
        probe("tpm2_ptool-made AES-256 attributes", lambda: repr(s.getAttributeValue(found[0], [
            PyKCS11.CKA_ENCRYPT, PyKCS11.CKA_DECRYPT, PyKCS11.CKA_WRAP, PyKCS11.CKA_UNWRAP, PyKCS11.CKA_EXTRACTABLE,
            PyKCS11.CKA_SENSITIVE, PyKCS11.CKA_TOKEN])))
        probe("AES-256 (ptool) CBC-PAD encrypt", lambda: len(s.encrypt(found[0], msg, PyKCS11.Mechanism(PyKCS11.CKM_AES_CBC_PAD, bytes(16)))))
        probe("AES-256 (ptool) GCM encrypt", lambda: len(s.encrypt(found[0], msg, PyKCS11.AES_GCM_Mechanism(bytes(12), b"", 128))))
    kek = keys.get("kek") or keys.get("aes32")
    target = keys.get("target") or keys.get("aes16")
    for mname in ("CKM_AES_KEY_WRAP", "CKM_AES_KEY_WRAP_PAD"):
        mech = getattr(PyKCS11, mname, None) or {"CKM_AES_KEY_WRAP": 0x2109, "CKM_AES_KEY_WRAP_PAD": 0x210A}[mname]
        if kek and target:
            probe(f"C_WrapKey {mname}", lambda mech=mech: f"{len(s.wrapKey(kek, target, PyKCS11.Mechanism(mech)))} bytes")
        if kek:
            probe(f"C_UnwrapKey {mname} (24 junk bytes)", lambda mech=mech: s.unwrapKey(
                kek, bytes(24), [(PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_AES),
                                 (PyKCS11.CKA_TOKEN, False)], PyKCS11.Mechanism(mech)))
            probe(f"C_EncryptInit {mname} on AES key", lambda mech=mech: bytes(s.encrypt(kek, bytes(32), PyKCS11.Mechanism(mech))).hex()[:16])
    if rsa_key and kek:
        probe("C_WrapKey RSA-OAEP SHA-256 (ptool AES key under RSA public key)", lambda: len(s.wrapKey(
            rsa_key[0], kek, PyKCS11.RSAOAEPMechanism(PyKCS11.CKM_SHA256, PyKCS11.CKG_MGF1_SHA256))))
    if rsa_key and "rsa3072" in keys:
        probe("C_WrapKey RSA-OAEP SHA-256 (RSA private key under RSA public key)", lambda: len(s.wrapKey(
            rsa_key[0], keys["rsa3072"][1], PyKCS11.RSAOAEPMechanism(PyKCS11.CKM_SHA256, PyKCS11.CKG_MGF1_SHA256))))
    if rsa_key and target:
        probe("C_WrapKey RSA-OAEP SHA-256 (AES key under RSA public key)", lambda: len(s.wrapKey(
            rsa_key[0], target, PyKCS11.RSAOAEPMechanism(PyKCS11.CKM_SHA256, PyKCS11.CKG_MGF1_SHA256))))
    if rsa_key:
        spub = rsa_public(s, rsa_key[0])
        ct = spub.encrypt(bytes(range(32)), padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
        probe("C_UnwrapKey RSA-OAEP SHA-256 -> AES-256", lambda: s.unwrapKey(rsa_key[1], ct, [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_AES),
            (PyKCS11.CKA_TOKEN, True), (PyKCS11.CKA_ENCRYPT, True), (PyKCS11.CKA_DECRYPT, True)],
            PyKCS11.RSAOAEPMechanism(PyKCS11.CKM_SHA256, PyKCS11.CKG_MGF1_SHA256)))
        probe("generate RSA-2048 with CKA_WRAP (pub) / CKA_UNWRAP (priv)", lambda: rsa_pair(
            s, 2048, extra_pub=[(PyKCS11.CKA_WRAP, True)], extra_priv=[(PyKCS11.CKA_UNWRAP, True)], label="rsawrap"))

    # CKO_DATA.
    data = {}

    def mkdata():
        data["h"] = s.createObject([
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_DATA), (PyKCS11.CKA_TOKEN, True), (PyKCS11.CKA_PRIVATE, True),
            (PyKCS11.CKA_LABEL, "meta"), (PyKCS11.CKA_APPLICATION, "hsmkit"), (PyKCS11.CKA_VALUE, b"v1"),
        ])
    if probe("C_CreateObject CKO_DATA token+private", mkdata):
        probe("C_CreateObject CKO_DATA CKA_MODIFIABLE=true",
              lambda: s.createObject([(PyKCS11.CKA_CLASS, PyKCS11.CKO_DATA), (PyKCS11.CKA_TOKEN, True),
                                      (PyKCS11.CKA_PRIVATE, True), (PyKCS11.CKA_MODIFIABLE, True),
                                      (PyKCS11.CKA_LABEL, "meta2"), (PyKCS11.CKA_VALUE, b"x")]))
        probe("C_GetAttributeValue CKO_DATA CKA_VALUE/CKA_MODIFIABLE",
              lambda: repr(s.getAttributeValue(data["h"], [PyKCS11.CKA_VALUE, PyKCS11.CKA_MODIFIABLE, PyKCS11.CKA_APPLICATION])))
        probe("C_SetAttributeValue CKO_DATA CKA_VALUE",
              lambda: s.setAttributeValue(data["h"], [(PyKCS11.CKA_VALUE, b"version-two")]))
        probe("C_SetAttributeValue CKO_DATA CKA_APPLICATION",
              lambda: s.setAttributeValue(data["h"], [(PyKCS11.CKA_APPLICATION, "hsmkit2")]))
        probe("  read back, same session", lambda: repr(s.getAttributeValue(data["h"], [PyKCS11.CKA_VALUE, PyKCS11.CKA_APPLICATION])))

        def fresh_session():
            s2 = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
            o = s2.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_DATA), (PyKCS11.CKA_LABEL, "meta")])
            return repr([bytes(s2.getAttributeValue(x, [PyKCS11.CKA_VALUE])[0]) for x in o])
        probe("  read back, fresh session same process", fresh_session)

        def fresh_process():
            r = subprocess.run([sys.executable, __file__, "--read-data", label], capture_output=True, text=True, timeout=60)
            if r.returncode:
                raise RuntimeError(r.stderr.strip()[-300:])
            return r.stdout.strip()
        probe("  read back, fresh process", fresh_process)
        probe("C_SetAttributeValue CKA_LABEL on RSA private key",
              lambda: s.setAttributeValue(rsa_key[1], [(PyKCS11.CKA_LABEL, "renamed")]) if rsa_key else None)
        probe("C_SetAttributeValue CKA_END_DATE on RSA private key",
              lambda: s.setAttributeValue(rsa_key[1], [(PyKCS11.CKA_END_DATE, b"20300101")]) if rsa_key else None)

    # Session objects.
    probe("generate RSA-2048 session keypair (CKA_TOKEN=false)", lambda: rsa_pair(s, 2048, token=False, label="srsa"))
    probe("generate RSA-1024 session keypair (CKA_TOKEN=false)", lambda: rsa_pair(s, 1024, token=False, label="srsa1"))
    probe("generate EC P-256 session keypair", lambda: ec_pair(s, "P-256", token=False, label="sec"))
    probe("generate AES-256 session key", lambda: aes_key(s, 32, token=False, label="saes"))
    probe("C_CreateObject CKO_DATA session (CKA_TOKEN=false)", lambda: s.createObject([
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_DATA), (PyKCS11.CKA_TOKEN, False), (PyKCS11.CKA_VALUE, b"x")]))

    # Import.
    rk = rsa.generate_private_key(65537, 2048)
    n = rk.private_numbers()

    def b(i):
        return i.to_bytes((i.bit_length() + 7) // 8, "big")
    probe("C_CreateObject RSA-2048 private key", lambda: s.createObject([
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_RSA),
        (PyKCS11.CKA_TOKEN, True), (PyKCS11.CKA_PRIVATE, True), (PyKCS11.CKA_SENSITIVE, True), (PyKCS11.CKA_SIGN, True),
        (PyKCS11.CKA_MODULUS, b(n.public_numbers.n)), (PyKCS11.CKA_PUBLIC_EXPONENT, b(n.public_numbers.e)),
        (PyKCS11.CKA_PRIVATE_EXPONENT, b(n.d)), (PyKCS11.CKA_PRIME_1, b(n.p)), (PyKCS11.CKA_PRIME_2, b(n.q)),
        (PyKCS11.CKA_EXPONENT_1, b(n.dmp1)), (PyKCS11.CKA_EXPONENT_2, b(n.dmq1)), (PyKCS11.CKA_COEFFICIENT, b(n.iqmp))]))
    probe("C_CreateObject RSA-2048 public key", lambda: s.createObject([
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_RSA), (PyKCS11.CKA_TOKEN, True),
        (PyKCS11.CKA_VERIFY, True), (PyKCS11.CKA_MODULUS, b(n.public_numbers.n)),
        (PyKCS11.CKA_PUBLIC_EXPONENT, b(n.public_numbers.e))]))
    ek = ec.generate_private_key(ec.SECP256R1())
    pt = ek.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    probe("C_CreateObject EC P-256 private key", lambda: s.createObject([
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC), (PyKCS11.CKA_TOKEN, True),
        (PyKCS11.CKA_PRIVATE, True), (PyKCS11.CKA_SIGN, True), (PyKCS11.CKA_EC_PARAMS, CURVES["P-256"][0]),
        (PyKCS11.CKA_VALUE, ek.private_numbers().private_value.to_bytes(32, "big"))]))
    probe("C_CreateObject EC P-256 public key", lambda: s.createObject([
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC), (PyKCS11.CKA_TOKEN, True),
        (PyKCS11.CKA_VERIFY, True), (PyKCS11.CKA_EC_PARAMS, CURVES["P-256"][0]),
        (PyKCS11.CKA_EC_POINT, b"\x04\x41" + pt)]))
    probe("C_CreateObject AES-256 secret key", lambda: s.createObject([
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_AES), (PyKCS11.CKA_TOKEN, True),
        (PyKCS11.CKA_ENCRYPT, True), (PyKCS11.CKA_DECRYPT, True), (PyKCS11.CKA_VALUE, bytes(32))]))

    # Template attributes.
    probe("EC P-256 pub with CKA_ENCRYPT=true", lambda: ec_pair(s, "P-256", extra_pub=[(PyKCS11.CKA_ENCRYPT, True)], label="x1"))
    probe("EC P-256 priv with CKA_DECRYPT=true", lambda: ec_pair(s, "P-256", extra_priv=[(PyKCS11.CKA_DECRYPT, True)], label="x2"))
    probe("EC P-256 priv with CKA_DERIVE=true", lambda: ec_pair(s, "P-256", extra_priv=[(PyKCS11.CKA_DERIVE, True)], label="x3"))
    probe("EC P-256 priv with CKA_DERIVE=false", lambda: ec_pair(s, "P-256", extra_priv=[(PyKCS11.CKA_DERIVE, False)], label="x3b"))
    probe("EC P-256 pub with CKA_ENCRYPT=false", lambda: ec_pair(s, "P-256", extra_pub=[(PyKCS11.CKA_ENCRYPT, False)], label="x1b"))
    probe("RSA-2048 pub CKA_WRAP=true", lambda: rsa_pair(s, 2048, extra_pub=[(PyKCS11.CKA_WRAP, True)], label="x4"))
    probe("RSA-2048 priv CKA_UNWRAP=true", lambda: rsa_pair(s, 2048, extra_priv=[(PyKCS11.CKA_UNWRAP, True)], label="x5"))
    probe("RSA-2048 pub CKA_WRAP=false priv CKA_UNWRAP=false", lambda: rsa_pair(
        s, 2048, extra_pub=[(PyKCS11.CKA_WRAP, False)], extra_priv=[(PyKCS11.CKA_UNWRAP, False)], label="x5b"))
    probe("RSA-2048 sign-only (CKA_DECRYPT=false, CKA_ENCRYPT=false)", lambda: rsa_pair(
        s, 2048, extra_pub=[(PyKCS11.CKA_ENCRYPT, False)], extra_priv=[(PyKCS11.CKA_DECRYPT, False)], label="x5c"))
    probe("RSA-2048 priv CKA_START_DATE/CKA_END_DATE", lambda: rsa_pair(
        s, 2048, extra_priv=[(PyKCS11.CKA_START_DATE, b"20200101"), (PyKCS11.CKA_END_DATE, b"20990101")], label="x6"))
    probe("RSA-2048 priv CKA_START_DATE empty", lambda: rsa_pair(s, 2048, extra_priv=[(PyKCS11.CKA_START_DATE, b"")], label="x6b"))
    probe("RSA-2048 priv CKA_EXTRACTABLE=false", lambda: rsa_pair(s, 2048, extra_priv=[(PyKCS11.CKA_EXTRACTABLE, False)], label="x7"))
    probe("RSA-2048 priv CKA_SIGN_RECOVER=false", lambda: rsa_pair(s, 2048, extra_priv=[(PyKCS11.CKA_SIGN_RECOVER, False)], label="x8"))
    probe("AES-256 CKA_SIGN=false CKA_VERIFY=false", lambda: aes_key(
        s, 32, extra=[(PyKCS11.CKA_SIGN, False), (PyKCS11.CKA_VERIFY, False)], label="x9"))
    probe("AES-256 CKA_START_DATE/CKA_END_DATE", lambda: aes_key(
        s, 32, extra=[(PyKCS11.CKA_START_DATE, b"20200101"), (PyKCS11.CKA_END_DATE, b"20990101")], label="x10"))
    probe("AES-256 encrypt-only (CKA_DECRYPT=false)", lambda: aes_key(s, 32, extra=[(PyKCS11.CKA_DECRYPT, False)], label="x11"))

    if "aes32" in keys:
        iv = bytes(16)
        probe("AES-256 CBC-PAD encrypt", lambda: len(s.encrypt(keys["aes32"], msg, PyKCS11.Mechanism(PyKCS11.CKM_AES_CBC_PAD, iv))))
        probe("AES-256 GCM encrypt", lambda: len(s.encrypt(keys["aes32"], msg, PyKCS11.AES_GCM_Mechanism(bytes(12), b"", 128))))


def hash_of(m, h):
    d = hashes.Hash(h)
    d.update(m)
    return d.finalize()


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--read-data":
        read_data(sys.argv[2])
    elif len(sys.argv) > 2 and sys.argv[1] == "--matrix":
        pass  # below, once matrix() is defined
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("HSMKIT_TPM2_LABEL", "hsmkit-tpm2"))


def matrix(label):
    """Which boolean in a key-pair template tpm2-pkcs11 refuses, one attribute at a time."""
    _, s = session(label)
    A = PyKCS11
    for kind in ("RSA-2048", "EC-P-256"):
        for side in ("pub", "priv"):
            names = (["CKA_VERIFY", "CKA_ENCRYPT", "CKA_WRAP", "CKA_VERIFY_RECOVER", "CKA_DERIVE", "CKA_PRIVATE"]
                     if side == "pub" else
                     ["CKA_SIGN", "CKA_DECRYPT", "CKA_UNWRAP", "CKA_SIGN_RECOVER", "CKA_DERIVE", "CKA_EXTRACTABLE",
                      "CKA_SENSITIVE"])
            for name in names:
                for val in (False, True):
                    extra = [(getattr(A, name), val)]
                    kw = {"extra_pub": extra} if side == "pub" else {"extra_priv": extra}
                    try:
                        if kind.startswith("RSA"):
                            rsa_pair(s, 2048, label="m", **kw)
                        else:
                            ec_pair(s, "P-256", label="m", **kw)
                        res = "ok"
                    except PyKCS11.PyKCS11Error as e:
                        res = err(e)
                    print(f"{kind} {side} {name}={val} | {res}", flush=True)


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--matrix":
    matrix(sys.argv[2])
