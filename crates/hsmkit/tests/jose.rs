//! JWS, JWT and JWKS over store keys (`hsmkit::jose`): round trips with every signature
//! algorithm, the refusals (tampering, `alg: none`, algorithm confusion, `crit`, malformed
//! tokens, key state), version selection by `kid`, the JWT claim checks, the JWKS contents,
//! and the known-answer tokens of RFC 7515 A.1 and A.3 and RFC 8037 A.4.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64ct::{Base64UrlUnpadded, Encoding};
use hmac::{KeyInit, Mac};
use hsmkit::jose::{
    ClaimError, JwsOptions, JwtSignOptions, JwtValidation, jwks, jws_sign, jws_verify, jws_verify_with_key,
    jwt_sign, jwt_verify, jwt_verify_detailed, jwt_verify_with_key,
};
use hsmkit::{
    EcCurve, Error, ErrorKind, InvalidReason, Key, KeyAttributes, KeyMaterial, KeyOp, KeySpec, KeyUpdate,
    SignatureAlgorithm as Alg, SignatureScheme, Store,
};
use serde_json::{Map, Value, json};

fn store() -> Store {
    Store::new(hsmkit_soft::SoftBackend::new())
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    Base64UrlUnpadded::decode_vec(s).unwrap()
}

/// The key name and spec each algorithm is tested with.
fn key_for(alg: Alg) -> (&'static str, KeySpec) {
    match alg.scheme() {
        SignatureScheme::RsaPkcs1v15 | SignatureScheme::RsaPss => ("rsa", KeySpec::RSA_2048),
        SignatureScheme::Ecdsa(EcCurve::P256) => ("p256", KeySpec::P256),
        SignatureScheme::Ecdsa(EcCurve::P384) => ("p384", KeySpec::P384),
        SignatureScheme::Ecdsa(EcCurve::P521) => ("p521", KeySpec::P521),
        SignatureScheme::Ecdsa(EcCurve::P256K) => ("p256k", KeySpec::P256K),
        SignatureScheme::Ed25519 => ("ed", KeySpec::ED25519),
        SignatureScheme::Hmac => ("hmac", KeySpec::HMAC_512),
    }
}

/// The key for `alg` in `store`, created on first use.
fn key(store: &Store, alg: Alg) -> Key {
    let (name, spec) = key_for(alg);
    store.get_key(name).or_else(|_| store.create_key(name, spec, KeyAttributes::default())).unwrap()
}

/// A token with exactly this header JSON, signed by `key` with `alg` (whatever the header
/// says): what an attacker, or a careless signer, can make.
fn forge(key: &Key, alg: Alg, header: &str, payload: &[u8]) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload));
    let sig = key.sign(alg, input.as_bytes()).unwrap();
    format!("{input}.{}", b64(&sig))
}

/// `token` with one bit flipped in the decoded bytes of part `i` (0 header, 1 payload,
/// 2 signature), re-encoded: still well-formed base64url.
fn flip(token: &str, i: usize, byte: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut bytes = unb64(&parts[i]);
    let n = bytes.len();
    bytes[byte % n] ^= 0x01;
    parts[i] = b64(&bytes);
    parts.join(".")
}

fn header_of(token: &str) -> Map<String, Value> {
    serde_json::from_slice(&unb64(token.split('.').next().unwrap())).unwrap()
}

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(r: hsmkit::Result<T>, reason: InvalidReason, needle: &str) {
    match r {
        Err(Error::InvalidInput { reason: got, message }) => {
            assert_eq!(got, reason, "{message}");
            assert!(message.contains(needle), "message {message:?} lacks {needle:?}");
        }
        other => panic!("expected InvalidInput({reason:?}) with {needle:?}, got {other:?}"),
    }
}

#[track_caller]
fn assert_kind<T: std::fmt::Debug>(r: hsmkit::Result<T>, kind: ErrorKind) {
    match r {
        Err(e) => assert_eq!(e.kind(), kind, "{e}"),
        Ok(v) => panic!("expected {kind:?}, got Ok({v:?})"),
    }
}

fn any() -> JwsOptions {
    JwsOptions::new()
}

// --------------------------------------------------------------------------- JWS

#[test]
fn jws_round_trip_with_every_algorithm_and_tampering_fails() {
    let s = store();
    for &alg in Alg::ALL {
        let k = key(&s, alg);
        let payload = format!("payload for {alg}");
        let token = jws_sign(&k, alg, None, payload.as_bytes()).unwrap();
        assert_eq!(token.split('.').count(), 3, "{alg}");
        assert!(!token.contains('='), "{alg}: padded");

        let header = header_of(&token);
        let want: Map<String, Value> =
            serde_json::from_value(json!({"alg": alg.name(), "kid": format!("{}/1", k.name())})).unwrap();
        assert_eq!(header, want, "{alg}");
        // ECDSA in JOSE is r || s, not DER.
        let sig = unb64(token.rsplit('.').next().unwrap());
        assert_eq!(Some(sig.len()), alg.signature_len(k.spec()), "{alg}");

        let v = jws_verify(&s, &token, &any()).unwrap();
        assert_eq!(v.payload, payload.as_bytes(), "{alg}");
        assert_eq!((v.alg, v.key_name.as_str(), v.key_version), (alg, k.name(), 1));
        assert_eq!(v.header, want);
        assert_eq!(jws_verify_with_key(&k, &token, &any()).unwrap().payload, payload.as_bytes());

        // Any change to what is signed, or to the signature, is caught.
        for byte in [0, 5, 1000] {
            assert_kind(jws_verify(&s, &flip(&token, 1, byte), &any()), ErrorKind::VerificationFailed);
            assert_kind(jws_verify(&s, &flip(&token, 2, byte), &any()), ErrorKind::VerificationFailed);
        }
        // A header with one more member and the old signature.
        let mut h = header.clone();
        h.insert("typ".into(), "JWT".into());
        let mut parts: Vec<&str> = token.split('.').collect();
        let relabelled = b64(&serde_json::to_vec(&h).unwrap());
        parts[0] = &relabelled;
        assert_kind(jws_verify(&s, &parts.join("."), &any()), ErrorKind::VerificationFailed);
        // An empty signature.
        let unsigned = format!("{}.", token.rsplit_once('.').unwrap().0);
        assert_kind(jws_verify(&s, &unsigned, &any()), ErrorKind::VerificationFailed);
    }
}

#[test]
fn jws_extra_header_members_and_reserved_ones() {
    let s = store();
    let k = key(&s, Alg::Es256);
    let mut h = Map::new();
    h.insert("typ".into(), "example+jws".into());
    h.insert("cty".into(), "text/plain".into());
    let token = jws_sign(&k, Alg::Es256, Some(&h), b"x").unwrap();
    let v = jws_verify(&s, &token, &any()).unwrap();
    assert_eq!(v.header["typ"], "example+jws");
    assert_eq!(v.header["cty"], "text/plain");
    assert_eq!(v.header["kid"], "p256/1");

    for (name, value) in
        [("alg", json!("ES256")), ("kid", json!("other/1")), ("crit", json!(["x"])), ("b64", json!(false))]
    {
        let mut h = Map::new();
        h.insert(name.into(), value);
        assert_invalid(jws_sign(&k, Alg::Es256, Some(&h), b"x"), InvalidReason::Parameter, name);
    }
    // The algorithm must fit the key when signing, too.
    assert_invalid(jws_sign(&k, Alg::Es384, None, b"x"), InvalidReason::KeyMismatch, "ES384");
    assert_invalid(jws_sign(&k, Alg::Hs256, None, b"x"), InvalidReason::KeyMismatch, "HS256");
}

#[test]
fn jws_alg_none_and_unknown_algorithms_are_refused() {
    let s = store();
    let k = key(&s, Alg::Es256);
    let payload = b64(b"{\"admin\":true}");
    for alg in ["none", "None", "NONE", "es256", "ES256 ", "HS1", ""] {
        let header = b64(json!({"alg": alg, "kid": "p256/1"}).to_string().as_bytes());
        for sig in ["", "AAAA"] {
            let token = format!("{header}.{payload}.{sig}");
            assert_invalid(jws_verify(&s, &token, &any()), InvalidReason::Parameter, "alg");
            assert_invalid(jws_verify_with_key(&k, &token, &any()), InvalidReason::Parameter, "alg");
        }
    }
    // alg missing or not a string.
    for header in [json!({"kid": "p256/1"}), json!({"alg": 256, "kid": "p256/1"}), json!({"alg": null})] {
        let token = format!("{}.{payload}.", b64(header.to_string().as_bytes()));
        assert_invalid(jws_verify(&s, &token, &any()), InvalidReason::Malformed, "alg");
    }
}

#[test]
fn jws_algorithm_confusion_is_refused() {
    let s = store();
    let rsa = key(&s, Alg::Rs256);
    let ec = key(&s, Alg::Es256);
    let payload = br#"{"sub":"mallory","admin":true}"#;

    // The classic attack: an RS256 verifier handed an HS256 token MACed with the public
    // key's PEM (or DER) as the HMAC secret. An RSA key never does HMAC.
    for (k, name) in [(&rsa, "rsa"), (&ec, "p256")] {
        for secret in [k.public_key_pem().unwrap().into_bytes(), k.public_key_der().unwrap()] {
            for alg in ["HS256", "HS384", "HS512"] {
                let header = b64(json!({"alg": alg, "kid": format!("{name}/1")}).to_string().as_bytes());
                let input = format!("{header}.{}", b64(payload));
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&secret).unwrap();
                mac.update(input.as_bytes());
                let token = format!("{input}.{}", b64(&mac.finalize().into_bytes()));
                assert_invalid(jws_verify(&s, &token, &any()), InvalidReason::KeyMismatch, alg);
                assert_invalid(jws_verify_with_key(k, &token, &any()), InvalidReason::KeyMismatch, alg);
            }
        }
    }
    // An ES256 signature relabelled ES384, and an EC token relabelled RS256.
    let es256 = jws_sign(&ec, Alg::Es256, None, payload).unwrap();
    let sig = es256.rsplit('.').next().unwrap();
    for alg in ["ES384", "ES512", "ES256K", "RS256", "PS256", "EdDSA"] {
        let header = b64(json!({"alg": alg, "kid": "p256/1"}).to_string().as_bytes());
        let token = format!("{header}.{}.{sig}", b64(payload));
        assert_invalid(jws_verify(&s, &token, &any()), InvalidReason::KeyMismatch, alg);
    }
    // Within one key's family: a PKCS#1 v1.5 signature presented as PSS does not verify.
    let token = forge(&rsa, Alg::Rs256, r#"{"alg":"PS256","kid":"rsa/1"}"#, payload);
    assert_kind(jws_verify(&s, &token, &any()), ErrorKind::VerificationFailed);
    let token = forge(&rsa, Alg::Ps256, r#"{"alg":"PS384","kid":"rsa/1"}"#, payload);
    assert_kind(jws_verify(&s, &token, &any()), ErrorKind::VerificationFailed);
}

#[test]
fn jws_crit_is_refused_even_when_signed() {
    let s = store();
    let k = key(&s, Alg::Es256);
    for header in [
        r#"{"alg":"ES256","kid":"p256/1","crit":["exp"],"exp":1363284000}"#,
        r#"{"alg":"ES256","kid":"p256/1","crit":["b64"],"b64":false}"#,
        r#"{"alg":"ES256","kid":"p256/1","crit":[]}"#,
        r#"{"alg":"ES256","kid":"p256/1","crit":"exp"}"#,
    ] {
        let token = forge(&k, Alg::Es256, header, b"x");
        assert_invalid(jws_verify(&s, &token, &any()), InvalidReason::Parameter, "crit");
        assert_invalid(jws_verify_with_key(&k, &token, &any()), InvalidReason::Parameter, "crit");
    }
    // The same header without crit verifies: it was crit that was refused.
    let token = forge(&k, Alg::Es256, r#"{"alg":"ES256","kid":"p256/1","exp":1363284000}"#, b"x");
    jws_verify(&s, &token, &any()).unwrap();
}

#[test]
fn jws_malformed_tokens_are_refused() {
    let s = store();
    let k = key(&s, Alg::Es256);
    let good = jws_sign(&k, Alg::Es256, None, b"hello").unwrap();
    let [h, p, sig]: [&str; 3] = good.split('.').collect::<Vec<_>>().try_into().unwrap();
    let malformed = [
        String::new(),
        ".".into(),
        "..".into(),
        format!("{h}.{p}"),
        format!("{h}.{p}.{sig}.{sig}"),
        format!("{h}=.{p}.{sig}"),
        format!("{h}.{p}=.{sig}"),
        format!("{h}.{p}.{sig}=="),
        format!("{h}.{p}.{sig} "),
        format!(" {h}.{p}.{sig}"),
        format!("{h}.{p}.{}", sig.replace('_', "/").replace('-', "+") + "+/"),
        format!("{h}\n.{p}.{sig}"),
        // Not JSON, not an object, not UTF-8, trailing data.
        format!("{}.{p}.{sig}", b64(b"alg=ES256")),
        format!("{}.{p}.{sig}", b64(b"[\"ES256\"]")),
        format!("{}.{p}.{sig}", b64(b"\"ES256\"")),
        format!("{}.{p}.{sig}", b64(b"{\"alg\":\"ES256\",\"kid\":\"p256/1\"}x")),
        format!("{}.{p}.{sig}", b64(&[0xff, 0xfe, b'{', b'}'])),
        format!(".{p}.{sig}"),
    ];
    for token in &malformed {
        assert_invalid(jws_verify(&s, token, &any()), InvalidReason::Malformed, "");
        assert_invalid(jws_verify_with_key(&k, token, &any()), InvalidReason::Malformed, "");
    }
    // Non-canonical base64url (non-zero unused bits) is refused, not silently accepted.
    let last = sig.chars().last().unwrap();
    let canonical_sig = unb64(sig);
    assert_eq!(canonical_sig.len() % 3, 1, "a 64-byte signature ends in 2 characters carrying 4 unused bits");
    // B, C, D carry no data bits (those are A's) and non-zero unused bits.
    let other = ['B', 'C', 'D'].into_iter().find(|c| *c != last).unwrap();
    let noncanonical = format!("{h}.{p}.{}{other}", &sig[..sig.len() - 1]);
    assert_invalid(jws_verify(&s, &noncanonical, &any()), InvalidReason::Malformed, "base64url");

    // A header that says alg twice is refused, even signed (a parser keeping the first
    // member and one keeping the last would disagree).
    for header in [
        r#"{"alg":"ES256","kid":"p256/1","alg":"ES256"}"#,
        r#"{"alg":"ES256","kid":"p256/1","kid":"p256/1"}"#,
        r#"{"alg":"ES256","kid":"p256/1","typ":"JWT","typ":"JWT"}"#,
    ] {
        let token = forge(&k, Alg::Es256, header, b"x");
        assert_invalid(jws_verify(&s, &token, &any()), InvalidReason::Malformed, "twice");
    }
}

#[test]
fn jws_kid_picks_the_version_and_must_name_one() {
    let s = store();
    let v1 = s.create_key("k", KeySpec::P256, KeyAttributes::default()).unwrap();
    let t1 = jws_sign(&v1, Alg::Es256, None, b"one").unwrap();
    let v2 = s.rotate_key("k").unwrap();
    let t2 = jws_sign(&v2, Alg::Es256, None, b"two").unwrap();
    assert_eq!(header_of(&t2)["kid"], "k/2");

    let r1 = jws_verify(&s, &t1, &any()).unwrap();
    assert_eq!((r1.key_version, r1.payload.as_slice()), (1, &b"one"[..]));
    let r2 = jws_verify(&s, &t2, &any()).unwrap();
    assert_eq!((r2.key_version, r2.payload.as_slice()), (2, &b"two"[..]));
    // The version in kid is the one used: v1's signature under a header naming v2 fails,
    // and the same header signed by v2 verifies.
    let forged = forge(&v1, Alg::Es256, r#"{"alg":"ES256","kid":"k/2"}"#, b"x");
    assert_kind(jws_verify(&s, &forged, &any()), ErrorKind::VerificationFailed);
    let genuine = forge(&v2, Alg::Es256, r#"{"alg":"ES256","kid":"k/2"}"#, b"x");
    assert_eq!(jws_verify(&s, &genuine, &any()).unwrap().key_version, 2);
    // With a key given, kid is not looked at.
    assert_eq!(jws_verify_with_key(&v1, &t1, &any()).unwrap().key_version, 1);
    assert_kind(jws_verify_with_key(&v2, &t1, &any()), ErrorKind::VerificationFailed);

    // kid must be NAME/VERSION: the current version is never guessed.
    let no_kid = forge(&v2, Alg::Es256, r#"{"alg":"ES256"}"#, b"x");
    assert_invalid(jws_verify(&s, &no_kid, &any()), InvalidReason::Malformed, "kid");
    jws_verify_with_key(&v2, &no_kid, &any()).unwrap();
    for kid in [
        json!("k"),
        json!("k/"),
        json!("/2"),
        json!("k/02"),
        json!("k/+2"),
        json!("k/-2"),
        json!("k/2.0"),
        json!("k/ 2"),
        json!("k/4294967296"),
        json!("a/b/1"),
        json!(2),
        json!(["k/2"]),
    ] {
        let header = json!({"alg": "ES256", "kid": kid}).to_string();
        let token = forge(&v2, Alg::Es256, &header, b"x");
        assert_invalid(jws_verify(&s, &token, &any()), InvalidReason::Malformed, "kid");
    }
    for kid in ["k/3", "k/0", "nokey/1"] {
        let header = json!({"alg": "ES256", "kid": kid}).to_string();
        let token = forge(&v2, Alg::Es256, &header, b"x");
        let r = jws_verify(&s, &token, &any());
        assert!(
            matches!(
                r,
                Err(Error::NotFound { .. } | Error::InvalidInput { reason: InvalidReason::Name, .. })
            ),
            "{kid}: {r:?}"
        );
    }
}

#[test]
fn jws_key_state_and_allowed_algorithms() {
    let s = store();
    let k = key(&s, Alg::Es256);
    let token = jws_sign(&k, Alg::Es256, None, b"x").unwrap();

    jws_verify(&s, &token, &JwsOptions::new().algorithms(&[Alg::Es256, Alg::Rs256])).unwrap();
    assert_invalid(
        jws_verify(&s, &token, &JwsOptions::new().algorithms(&[Alg::Es384])),
        InvalidReason::Parameter,
        "ES256",
    );
    assert_invalid(
        jws_verify(&s, &token, &JwsOptions::new().algorithms(&[])),
        InvalidReason::Parameter,
        "ES256",
    );

    // An expired version still verifies (it no longer signs), as key vaults have it.
    let past = SystemTime::now() - Duration::from_secs(3600);
    let update = KeyUpdate {
        not_before: Some(Some(past - Duration::from_secs(3600))),
        expires: Some(Some(past)),
        ..Default::default()
    };
    s.update_key("p256", 1, &update).unwrap();
    jws_verify(&s, &token, &any()).unwrap();
    assert_kind(jws_sign(&s.get_key("p256").unwrap(), Alg::Es256, None, b"x"), ErrorKind::PermissionDenied);

    // A disabled version verifies nothing.
    s.update_key("p256", 1, &KeyUpdate::enabled(false)).unwrap();
    assert_kind(jws_verify(&s, &token, &any()), ErrorKind::PermissionDenied);
    s.update_key("p256", 1, &KeyUpdate::enabled(true)).unwrap();
    jws_verify(&s, &token, &any()).unwrap();
    // Nor does one whose operations exclude verify.
    let sign_only = KeyUpdate { ops: Some(hsmkit::KeyOps::from_ops(&[KeyOp::Sign])), ..Default::default() };
    s.update_key("p256", 1, &sign_only).unwrap();
    assert_kind(jws_verify(&s, &token, &any()), ErrorKind::PermissionDenied);
    // Deleted keys are not found.
    s.update_key(
        "p256",
        1,
        &KeyUpdate {
            ops: Some(hsmkit::KeyOps::from_ops(&[KeyOp::Sign, KeyOp::Verify])),
            ..Default::default()
        },
    )
    .unwrap();
    s.delete_key("p256").unwrap();
    assert_kind(jws_verify(&s, &token, &any()), ErrorKind::NotFound);
}

// ------------------------------------------------------------- RFC known answers

/// RFC 7515 A.1: HS256 with the RFC's key, JWS compact serialization of the RFC.
const RFC7515_A1_KEY: &str = r#"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow","alg":"HS256"}"#;
const RFC7515_A1_TOKEN: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// RFC 7515 A.3: ES256 with the RFC's P-256 key (public part).
const RFC7515_A3_KEY: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
const RFC7515_A3_TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
/// The payload of both (RFC 7515 A.1.1, CR LF line breaks included).
const RFC7515_PAYLOAD: &[u8] =
    b"{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";
/// RFC 8037 A.1/A.4: Ed25519.
const RFC8037_KEY: &str = r#"{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
const RFC8037_TOKEN: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn rfc7515_a1_hs256_known_answer() {
    let s = store();
    let k = s
        .import_key("rfc-hs", KeyMaterial::from_jwk_str(RFC7515_A1_KEY).unwrap(), KeyAttributes::default())
        .unwrap();
    assert_eq!(k.spec(), KeySpec::HMAC_512);
    let v = jws_verify_with_key(&k, RFC7515_A1_TOKEN, &any()).unwrap();
    assert_eq!(v.payload, RFC7515_PAYLOAD);
    assert_eq!((v.alg, v.header["typ"].as_str()), (Alg::Hs256, Some("JWT")));
    // As a JWT: valid just before its exp, expired after it (plus the leeway).
    let claims =
        jwt_verify_with_key(&k, RFC7515_A1_TOKEN, &JwtValidation::new().issuer("joe").now(at(1_300_819_000)))
            .unwrap();
    assert_eq!(claims["http://example.com/is_root"], true);
    let late = JwtValidation::new().now(at(1_300_819_380 + 60));
    assert_invalid(jwt_verify_with_key(&k, RFC7515_A1_TOKEN, &late), InvalidReason::Parameter, "expired");
    jwt_verify_with_key(&k, RFC7515_A1_TOKEN, &JwtValidation::new().now(at(1_300_819_380 + 59))).unwrap();
    assert_invalid(
        jwt_verify_with_key(
            &k,
            RFC7515_A1_TOKEN,
            &JwtValidation::new().issuer("jane").now(at(1_300_819_000)),
        ),
        InvalidReason::Parameter,
        "issuer",
    );
    // One bit off anywhere, and the MAC fails.
    for part in 0..3 {
        let r = jws_verify_with_key(&k, &flip(RFC7515_A1_TOKEN, part, 3), &any());
        assert!(matches!(r, Err(Error::VerificationFailed | Error::InvalidInput { .. })), "{r:?}");
    }
    assert_kind(
        jws_verify_with_key(&k, &flip(RFC7515_A1_TOKEN, 2, 3), &any()),
        ErrorKind::VerificationFailed,
    );
    // Through the store the token is refused: it has no kid to choose the key by.
    assert_invalid(jws_verify(&s, RFC7515_A1_TOKEN, &any()), InvalidReason::Malformed, "kid");
    // hsmkit's own HS256 MAC over the RFC's signing input is the RFC's.
    let input = RFC7515_A1_TOKEN.rsplit_once('.').unwrap().0;
    assert_eq!(
        b64(&k.sign(Alg::Hs256, input.as_bytes()).unwrap()),
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    );
}

#[test]
fn rfc7515_a3_es256_and_rfc8037_ed25519_known_answers() {
    let s = store();
    let ec = s
        .import_key("rfc-es", KeyMaterial::from_jwk_str(RFC7515_A3_KEY).unwrap(), KeyAttributes::default())
        .unwrap();
    let v = jws_verify_with_key(&ec, RFC7515_A3_TOKEN, &any()).unwrap();
    assert_eq!((v.alg, v.payload.as_slice()), (Alg::Es256, RFC7515_PAYLOAD));
    for byte in [0, 31, 32, 63] {
        assert_kind(
            jws_verify_with_key(&ec, &flip(RFC7515_A3_TOKEN, 2, byte), &any()),
            ErrorKind::VerificationFailed,
        );
    }
    assert_invalid(
        jws_verify_with_key(&ec, RFC7515_A3_TOKEN, &JwsOptions::new().algorithms(&[Alg::Rs256])),
        InvalidReason::Parameter,
        "ES256",
    );

    let ed = s
        .import_key("rfc-ed", KeyMaterial::from_jwk_str(RFC8037_KEY).unwrap(), KeyAttributes::default())
        .unwrap();
    let v = jws_verify_with_key(&ed, RFC8037_TOKEN, &any()).unwrap();
    assert_eq!((v.alg, v.payload.as_slice()), (Alg::EdDsa, &b"Example of Ed25519 signing"[..]));
    assert_kind(jws_verify_with_key(&ed, &flip(RFC8037_TOKEN, 1, 0), &any()), ErrorKind::VerificationFailed);
    // Ed25519 is deterministic: signing the RFC's input gives the RFC's signature.
    let (input, sig) = RFC8037_TOKEN.rsplit_once('.').unwrap();
    assert_eq!(b64(&ed.sign(Alg::EdDsa, input.as_bytes()).unwrap()), sig);
}

// ---------------------------------------------------------------------------- JWT

const T0: u64 = 1_700_000_000;

fn claims(v: Value) -> Map<String, Value> {
    serde_json::from_value(v).unwrap()
}

fn check(v: &JwtValidation, c: Value, now: u64) -> Result<(), ClaimError> {
    v.check_claims(&claims(c), at(now))
}

#[test]
fn jwt_round_trip_with_every_algorithm() {
    let s = store();
    for &alg in Alg::ALL {
        let k = key(&s, alg);
        let opts = JwtSignOptions::new().expires_in(Duration::from_secs(600)).now(at(T0));
        let token = jwt_sign(&k, alg, &claims(json!({"sub": "alice", "aud": ["a", "b"]})), &opts).unwrap();
        let t = jwt_verify_detailed(&s, &token, &JwtValidation::new().audience("b").now(at(T0 + 1))).unwrap();
        assert_eq!(
            t.claims,
            claims(json!({"sub": "alice", "aud": ["a", "b"], "iat": T0, "exp": T0 + 600})),
            "{alg}"
        );
        assert_eq!(t.header["typ"], "JWT");
        assert_eq!((t.alg, t.key_version), (alg, 1));
        assert_eq!(
            jwt_verify_with_key(&k, &token, &JwtValidation::new().audience("a").now(at(T0))).unwrap(),
            t.claims
        );
        assert_kind(
            jwt_verify(&s, &flip(&token, 1, 2), &JwtValidation::new().audience("a").now(at(T0))),
            ErrorKind::VerificationFailed,
        );
    }
}

#[test]
fn jwt_sign_options_and_conflicts() {
    let s = store();
    let k = key(&s, Alg::Es256);
    let now = at(T0);
    let get = |token: &str| -> Map<String, Value> {
        serde_json::from_slice(&unb64(token.split('.').nth(1).unwrap())).unwrap()
    };
    let t = jwt_sign(&k, Alg::Es256, &Map::new(), &JwtSignOptions::new().now(now)).unwrap();
    assert_eq!(get(&t), claims(json!({"iat": T0})));
    let t = jwt_sign(
        &k,
        Alg::Es256,
        &claims(json!({"iss": "me"})),
        &JwtSignOptions::new()
            .now(now)
            .issued_at(false)
            .not_before(at(T0 + 5))
            .expires_in(Duration::from_secs(10))
            .header("typ", "at+jwt"),
    )
    .unwrap();
    assert_eq!(get(&t), claims(json!({"iss": "me", "nbf": T0 + 5, "exp": T0 + 10})));
    assert_eq!(header_of(&t)["typ"], "at+jwt");

    let opts = JwtSignOptions::new().expires_in(Duration::from_secs(10)).not_before(now);
    for (c, what) in [(json!({"exp": 1}), "exp"), (json!({"nbf": 1}), "nbf"), (json!({"iat": 1}), "iat")] {
        assert_invalid(jwt_sign(&k, Alg::Es256, &claims(c), &opts), InvalidReason::Parameter, what);
    }
    jwt_sign(&k, Alg::Es256, &claims(json!({"iat": 1})), &JwtSignOptions::new().issued_at(false)).unwrap();
    for (c, what) in [
        (json!({"exp": "tomorrow"}), "exp"),
        (json!({"nbf": null}), "nbf"),
        (json!({"iat": true}), "iat"),
        (json!({"iss": 7}), "iss"),
        (json!({"sub": ["a"]}), "sub"),
        (json!({"aud": 1}), "aud"),
        (json!({"aud": ["a", 1]}), "aud"),
    ] {
        assert_invalid(
            jwt_sign(&k, Alg::Es256, &claims(c), &JwtSignOptions::new().issued_at(false)),
            InvalidReason::Malformed,
            what,
        );
    }
    for name in ["alg", "kid", "crit"] {
        assert_invalid(
            jwt_sign(&k, Alg::Es256, &Map::new(), &JwtSignOptions::new().header(name, "x")),
            InvalidReason::Parameter,
            name,
        );
    }
}

#[test]
fn jwt_time_claims_with_leeway() {
    let v = JwtValidation::new();
    // exp: refused from exp + leeway on.
    check(&v, json!({"exp": T0}), T0 + 59).unwrap();
    assert_eq!(check(&v, json!({"exp": T0}), T0 + 60), Err(ClaimError::Expired { exp: 1_700_000_000.0 }));
    let strict = JwtValidation::new().leeway(Duration::ZERO);
    check(&strict, json!({"exp": T0}), T0 - 1).unwrap();
    assert!(matches!(check(&strict, json!({"exp": T0}), T0), Err(ClaimError::Expired { .. })));
    // Fractional NumericDates are numbers too.
    check(&strict, json!({"exp": 1_700_000_000.5}), T0).unwrap();
    // nbf: accepted from nbf - leeway on.
    check(&v, json!({"exp": T0 + 999, "nbf": T0 + 100}), T0 + 40).unwrap();
    assert!(matches!(
        check(&v, json!({"exp": T0 + 999, "nbf": T0 + 100}), T0 + 39),
        Err(ClaimError::NotYetValid { .. })
    ));
    // iat in the future.
    assert!(matches!(
        check(&v, json!({"exp": T0 + 999, "iat": T0 + 61}), T0),
        Err(ClaimError::IssuedInFuture { .. })
    ));
    check(&v, json!({"exp": T0 + 999, "iat": T0 + 60}), T0).unwrap();
    check(&v.clone().reject_future_iat(false), json!({"exp": T0 + 999, "iat": T0 + 9999}), T0).unwrap();
    // exp is required by default.
    assert_eq!(check(&v, json!({"sub": "a"}), T0), Err(ClaimError::Missing("exp".into())));
    check(&v.clone().require_exp(false), json!({"sub": "a"}), T0).unwrap();
    assert_eq!(
        check(&v.clone().require("sub"), json!({"exp": T0 + 9}), T0),
        Err(ClaimError::Missing("sub".into()))
    );
    // Types.
    for c in [
        json!({"exp": "1"}),
        json!({"exp": null}),
        json!({"exp": T0 + 9, "nbf": [1]}),
        json!({"exp": T0 + 9, "iat": {}}),
    ] {
        assert!(matches!(check(&v, c.clone(), T0), Err(ClaimError::Malformed(_))), "{c}");
    }
}

#[test]
fn jwt_issuer_and_audience() {
    let v = JwtValidation::new().require_exp(false);
    // Issuer: only checked when expected; then required and exact.
    check(&v, json!({"iss": "anyone"}), T0).unwrap();
    let iss = v.clone().issuer("https://issuer.example");
    check(&iss, json!({"iss": "https://issuer.example"}), T0).unwrap();
    assert_eq!(check(&iss, json!({"iss": "https://issuer.example/"}), T0), Err(ClaimError::Issuer));
    assert_eq!(check(&iss, json!({"iss": "HTTPS://ISSUER.EXAMPLE"}), T0), Err(ClaimError::Issuer));
    assert_eq!(check(&iss, json!({}), T0), Err(ClaimError::Missing("iss".into())));
    // Audience: a string or an array that contains an expected one.
    let aud = v.clone().audience("api").audience("api2");
    check(&aud, json!({"aud": "api"}), T0).unwrap();
    check(&aud, json!({"aud": ["other", "api2"]}), T0).unwrap();
    assert_eq!(check(&aud, json!({"aud": "Api"}), T0), Err(ClaimError::Audience));
    assert_eq!(check(&aud, json!({"aud": ["other"]}), T0), Err(ClaimError::Audience));
    assert_eq!(check(&aud, json!({"aud": []}), T0), Err(ClaimError::Audience));
    assert_eq!(check(&aud, json!({}), T0), Err(ClaimError::Missing("aud".into())));
    // A token for some audience is refused by a verifier that names none (as PyJWT).
    assert_eq!(check(&v, json!({"aud": "api"}), T0), Err(ClaimError::Audience));
    assert_eq!(check(&v, json!({"aud": ["api"]}), T0), Err(ClaimError::Audience));
    assert!(matches!(check(&aud, json!({"aud": ["api", 3]}), T0), Err(ClaimError::Malformed(_))));
    assert!(matches!(check(&aud, json!({"aud": {"api": true}}), T0), Err(ClaimError::Malformed(_))));
}

#[test]
fn jwt_claims_set_must_be_a_unique_object_and_errors_are_typed() {
    let s = store();
    let k = key(&s, Alg::Es256);
    let v = JwtValidation::new().now(at(T0));
    for payload in [
        &b"[]"[..],
        b"\"claims\"",
        b"",
        b"{\"exp\":1,}",
        br#"{"exp":1700000999,"exp":1}"#,
        br#"{"aud":"a","aud":"b","exp":1700000999}"#,
    ] {
        let token = jws_sign(&k, Alg::Es256, None, payload).unwrap();
        assert_invalid(jwt_verify(&s, &token, &v), InvalidReason::Malformed, "claims");
    }
    // Wrong claim types in a signed token: Malformed; failed checks: Parameter.
    let token = jws_sign(&k, Alg::Es256, None, br#"{"exp":"soon"}"#).unwrap();
    assert_invalid(jwt_verify(&s, &token, &v), InvalidReason::Malformed, "'exp'");
    let token = jws_sign(&k, Alg::Es256, None, br#"{"exp":1}"#).unwrap();
    assert_invalid(jwt_verify(&s, &token, &v), InvalidReason::Parameter, "expired");
    // The error converts from ClaimError as jwt_verify reports it.
    let e: Error = ClaimError::Audience.into();
    assert_eq!(e.invalid_reason(), Some(InvalidReason::Parameter));
    let e: Error = ClaimError::Malformed("exp".into()).into();
    assert_eq!(e.invalid_reason(), Some(InvalidReason::Malformed));
}

#[test]
fn jwt_verify_uses_the_store_clock() {
    let clock = Arc::new(AtomicU64::new(T0));
    let c = Arc::clone(&clock);
    let s = store().with_clock(move || at(c.load(Ordering::SeqCst)));
    let k = key(&s, Alg::Es256);
    let token = jwt_sign(
        &k,
        Alg::Es256,
        &Map::new(),
        &JwtSignOptions::new().now(at(T0)).expires_in(Duration::from_secs(3600)),
    )
    .unwrap();
    jwt_verify(&s, &token, &JwtValidation::new()).unwrap();
    clock.store(T0 + 3600 + 60, Ordering::SeqCst);
    assert_invalid(jwt_verify(&s, &token, &JwtValidation::new()), InvalidReason::Parameter, "expired");
    // An explicit time wins over the store's.
    jwt_verify(&s, &token, &JwtValidation::new().now(at(T0))).unwrap();
    // A token signed without `now` takes its times from the store's clock too (the key's
    // store), not from the system clock.
    let fresh =
        jwt_sign(&k, Alg::Es256, &Map::new(), &JwtSignOptions::new().expires_in(Duration::from_secs(60)))
            .unwrap();
    jwt_verify(&s, &fresh, &JwtValidation::new()).unwrap();
    assert_invalid(
        jwt_verify(&s, &fresh, &JwtValidation::new().now(SystemTime::now())),
        InvalidReason::Parameter,
        "expired",
    );
}

// --------------------------------------------------------------------------- JWKS

fn kids(doc: &Value) -> Vec<&str> {
    doc["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect()
}

#[test]
fn jwks_holds_exactly_the_enabled_valid_versions() {
    let clock = Arc::new(AtomicU64::new(T0));
    let c = Arc::clone(&clock);
    let s = store().with_clock(move || at(c.load(Ordering::SeqCst)));
    for (name, spec) in
        [("rsa", KeySpec::RSA_2048), ("ec", KeySpec::P384), ("k1", KeySpec::P256K), ("ed", KeySpec::ED25519)]
    {
        s.create_key(name, spec, KeyAttributes::default()).unwrap();
    }
    let doc = jwks(&s, &["rsa", "ec", "k1", "ed", "ec"]).unwrap();
    assert_eq!(kids(&doc), ["rsa/1", "ec/1", "k1/1", "ed/1"]);
    let keys = doc["keys"].as_array().unwrap();
    for k in keys {
        assert_eq!(k["use"], "sig");
        assert!(k.get("d").is_none() && k.get("p").is_none(), "private member in {k}");
    }
    assert_eq!(keys[0]["kty"], "RSA");
    assert!(keys[0].get("alg").is_none(), "an RSA key signs RS* and PS*: no one alg");
    assert_eq!(
        (keys[1]["kty"].as_str(), keys[1]["crv"].as_str(), keys[1]["alg"].as_str()),
        (Some("EC"), Some("P-384"), Some("ES384"))
    );
    assert_eq!((keys[2]["crv"].as_str(), keys[2]["alg"].as_str()), (Some("secp256k1"), Some("ES256K")));
    assert_eq!(
        (keys[3]["kty"].as_str(), keys[3]["crv"].as_str(), keys[3]["alg"].as_str()),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );

    // Each JWK is the key that verifies that version's tokens.
    let other = store();
    for (name, alg) in [("rsa", Alg::Ps256), ("ec", Alg::Es384), ("k1", Alg::Es256k), ("ed", Alg::EdDsa)] {
        let token = jws_sign(&s.get_key(name).unwrap(), alg, None, b"x").unwrap();
        let jwk = keys.iter().find(|k| k["kid"] == format!("{name}/1")).unwrap();
        let public =
            other.import_key(name, KeyMaterial::from_jwk(jwk).unwrap(), KeyAttributes::default()).unwrap();
        jws_verify_with_key(&public, &token, &any()).unwrap();
    }

    // Versions: 1 disabled, 2 not valid yet, 3 expired (by the store's clock), 4 sign only,
    // 5 valid.
    for _ in 2..=5 {
        s.rotate_key("ec").unwrap();
    }
    s.update_key("ec", 1, &KeyUpdate::enabled(false)).unwrap();
    s.update_key("ec", 2, &KeyUpdate { not_before: Some(Some(at(T0 + 100))), ..Default::default() }).unwrap();
    s.update_key("ec", 3, &KeyUpdate { expires: Some(Some(at(T0 + 50))), ..Default::default() }).unwrap();
    s.update_key(
        "ec",
        4,
        &KeyUpdate { ops: Some(hsmkit::KeyOps::from_ops(&[KeyOp::Sign])), ..Default::default() },
    )
    .unwrap();
    assert_eq!(kids(&jwks(&s, &["ec"]).unwrap()), ["ec/3", "ec/5"]);
    clock.store(T0 + 100, Ordering::SeqCst);
    assert_eq!(kids(&jwks(&s, &["ec"]).unwrap()), ["ec/2", "ec/5"]);
    s.update_key("ec", 1, &KeyUpdate::enabled(true)).unwrap();
    assert_eq!(kids(&jwks(&s, &["ec"]).unwrap()), ["ec/1", "ec/2", "ec/5"]);
    assert_eq!(kids(&jwks(&s, &[]).unwrap()), Vec::<&str>::new());
}

#[test]
fn jwks_refuses_secret_keys_and_unknown_names() {
    let s = store();
    s.create_key("mac", KeySpec::HMAC_256, KeyAttributes::default()).unwrap();
    s.create_key("kek", KeySpec::AES_256, KeyAttributes::default()).unwrap();
    s.create_key("ec", KeySpec::P256, KeyAttributes::default()).unwrap();
    assert_invalid(jwks(&s, &["ec", "mac"]), InvalidReason::KeyMismatch, "'mac'");
    assert_invalid(jwks(&s, &["kek"]), InvalidReason::KeyMismatch, "'kek'");
    assert_kind(jwks(&s, &["ec", "missing"]), ErrorKind::NotFound);
    assert_kind(jwks(&s, &[hsmkit::backup::BACKUP_KEY_NAME]), ErrorKind::PermissionDenied);
    s.delete_key("ec").unwrap();
    assert_kind(jwks(&s, &["ec"]), ErrorKind::NotFound);
}
