#!/usr/bin/env python3
"""JWT interop between hsmkit and two independent JOSE implementations, PyJWT and joserfc.

Run by crates/hsmkit-cli/tests/cli.rs (tests named jwt_*), which drives the hsmkit side:

    python3 tests/interop/jwt_interop.py verify CASES.json JWKS.json
        CASES.json: {"issuer": ISS, "audience": AUD, "hmac_secret": BASE64URL,
                     "tokens": [{"alg": ALG, "kid": KID, "token": JWT}, ...]}
        JWKS.json: what `hsmkit jwks` printed.
        Verifies every token hsmkit signed with PyJWT and with joserfc: asymmetric ones with
        the key the JWKS holds for their kid (PyJWT both through PyJWKClient, fetching the
        JWKS over HTTP from a loopback server, and from the file; joserfc from the file), HS*
        ones with the shared secret; checks iss, aud, exp, iat; and checks that both refuse
        each token with its payload or signature altered.

    python3 tests/interop/jwt_interop.py sign OUTDIR
        Makes one key per key type (RSA 2048, P-256, P-384, P-521, secp256k1, Ed25519 with
        pyca/cryptography; a 64-byte HMAC secret), writes each to OUTDIR/NAME.pem (PKCS#8)
        or OUTDIR/NAME.jwk (oct JWK), and OUTDIR/tokens.json: [{"lib", "alg", "key",
        "token"}], a token per algorithm and library with kid "NAME/1" and claims
        {"iss": "python", "aud": "hsmkit", "sub": "LIB ALG", "iat", "exp": in an hour}.

Exit status 0 only if every check passed; 2 if PyJWT or joserfc is missing.
"""
import base64
import http.server
import json
import sys
import threading
import time
import warnings
from pathlib import Path

try:
    import jwt
    from joserfc import jwt as jjwt
    from joserfc.jwk import ECKey, KeySet, OctKey, OKPKey, RSAKey
except ImportError as e:  # never a skip: the test that runs this fails
    print(
        f"jwt_interop.py needs PyJWT and joserfc ({e}): python3 -m pip install pyjwt joserfc "
        "(tests/run-all.sh installs them)",
        file=sys.stderr,
    )
    sys.exit(2)

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

# joserfc flags EdDSA (superseded by Ed25519, RFC 9864) and other algorithms it does not
# recommend; they are asked for explicitly here.
warnings.simplefilter("ignore")

FAILURES = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        FAILURES.append(what)


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def tampered(token):
    """The token with its payload altered, and with its signature altered."""
    h, p, s = token.split(".")
    claims = json.loads(b64url_decode(p))
    claims["sub"] = "mallory"
    p2 = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    sig = bytearray(b64url_decode(s))
    sig[len(sig) // 2] ^= 1
    s2 = base64.urlsafe_b64encode(bytes(sig)).rstrip(b"=").decode()
    return [f"{h}.{p2}.{s}", f"{h}.{p}.{s2}"]


def refused(fn):
    try:
        fn()
    except Exception:  # any refusal will do; acceptance is the failure
        return True
    return False


def serve(directory):
    """An HTTP server on a loopback port chosen by the OS, serving `directory`."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(directory), **kw)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def verify(cases_path, jwks_path):
    cases = json.loads(Path(cases_path).read_text())
    jwks = json.loads(Path(jwks_path).read_text())
    iss, aud = cases["issuer"], cases["audience"]
    secret = b64url_decode(cases["hmac_secret"])

    server = serve(Path(jwks_path).parent)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{Path(jwks_path).name}"
        client = jwt.PyJWKClient(url)
        served = sorted(k.key_id for k in client.get_signing_keys())
        check(served == sorted(k["kid"] for k in jwks["keys"]), f"PyJWKClient reads every key of {url}: {served}")
        pyjwt_set = jwt.PyJWKSet.from_dict(jwks)
        jose_set = KeySet.import_key_set(jwks)
        jose_secret = OctKey.import_key(secret)

        for case in cases["tokens"]:
            alg, kid, token = case["alg"], case["kid"], case["token"]
            header = jwt.get_unverified_header(token)
            check(header.get("alg") == alg and header.get("kid") == kid, f"{alg}: header {header}")
            hmac = alg.startswith("HS")
            opts = {"require": ["exp", "iat", "iss", "aud"]}

            def pyjwt_decode(t, key):
                return jwt.decode(t, key, algorithms=[alg], audience=aud, issuer=iss, options=opts)

            def joserfc_decode(t):
                tok = jjwt.decode(t, jose_secret if hmac else jose_set, algorithms=[alg])
                jjwt.JWTClaimsRegistry(
                    iss={"essential": True, "value": iss},
                    aud={"essential": True, "value": aud},
                    exp={"essential": True},
                    iat={"essential": True},
                ).validate(tok.claims)
                return tok.claims

            keys = {"secret": secret} if hmac else {
                "PyJWKClient": client.get_signing_key_from_jwt(token).key,
                "JWKS file": pyjwt_set[kid].key,
            }
            for source, key in keys.items():
                try:
                    claims = pyjwt_decode(token, key)
                    check(claims.get("sub") == case.get("sub"), f"PyJWT verifies hsmkit's {alg} ({source})")
                except Exception as e:
                    check(False, f"PyJWT verifies hsmkit's {alg} ({source}): {type(e).__name__}: {e}")
                for bad in tampered(token):
                    check(refused(lambda: pyjwt_decode(bad, key)), f"PyJWT refuses an altered {alg} token ({source})")
            try:
                claims = joserfc_decode(token)
                check(claims.get("sub") == case.get("sub"), f"joserfc verifies hsmkit's {alg}")
            except Exception as e:
                check(False, f"joserfc verifies hsmkit's {alg}: {type(e).__name__}: {e}")
            for bad in tampered(token):
                check(refused(lambda: joserfc_decode(bad)), f"joserfc refuses an altered {alg} token")
    finally:
        server.shutdown()


# name -> (private key maker, algorithms)
KEYS = {
    "py-rsa": (lambda: rsa.generate_private_key(65537, 2048), ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]),
    "py-p256": (lambda: ec.generate_private_key(ec.SECP256R1()), ["ES256"]),
    "py-p384": (lambda: ec.generate_private_key(ec.SECP384R1()), ["ES384"]),
    "py-p521": (lambda: ec.generate_private_key(ec.SECP521R1()), ["ES512"]),
    "py-k1": (lambda: ec.generate_private_key(ec.SECP256K1()), ["ES256K"]),
    "py-ed": (lambda: ed25519.Ed25519PrivateKey.generate(), ["EdDSA"]),
}


def sign(outdir):
    out = Path(outdir)
    now = int(time.time())
    tokens = []

    def claims(lib, alg):
        return {"iss": "python", "aud": "hsmkit", "sub": f"{lib} {alg}", "iat": now, "exp": now + 3600}

    for name, (make, algs) in KEYS.items():
        key = make()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        (out / f"{name}.pem").write_bytes(pem)
        jose_key = {"py-rsa": RSAKey, "py-ed": OKPKey}.get(name, ECKey).import_key(pem)
        for alg in algs:
            kid = f"{name}/1"
            t = jwt.encode(claims("pyjwt", alg), key, algorithm=alg, headers={"kid": kid})
            tokens.append({"lib": "pyjwt", "alg": alg, "key": name, "token": t})
            t = jjwt.encode({"alg": alg, "kid": kid}, claims("joserfc", alg), jose_key, algorithms=[alg])
            tokens.append({"lib": "joserfc", "alg": alg, "key": name, "token": t})

    secret = bytes(range(1, 65))
    k = base64.urlsafe_b64encode(secret).rstrip(b"=").decode()
    (out / "py-hmac.jwk").write_text(json.dumps({"kty": "oct", "k": k, "alg": "HS256"}))
    jose_secret = OctKey.import_key(secret)
    for alg in ["HS256", "HS384", "HS512"]:
        kid = "py-hmac/1"
        t = jwt.encode(claims("pyjwt", alg), secret, algorithm=alg, headers={"kid": kid})
        tokens.append({"lib": "pyjwt", "alg": alg, "key": "py-hmac", "token": t})
        t = jjwt.encode({"alg": alg, "kid": kid}, claims("joserfc", alg), jose_secret, algorithms=[alg])
        tokens.append({"lib": "joserfc", "alg": alg, "key": "py-hmac", "token": t})

    (out / "tokens.json").write_text(json.dumps(tokens, indent=1))
    print(f"wrote {len(tokens)} tokens and {len(KEYS) + 1} keys to {out}")


def main(argv):
    if len(argv) == 4 and argv[1] == "verify":
        verify(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "sign":
        sign(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed:\n  " + "\n  ".join(FAILURES), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
