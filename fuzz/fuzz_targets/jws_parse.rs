//! Compact JWS and JWT verification of arbitrary text with store keys of every type: never
//! panics; a refusal is typed (InvalidInput, VerificationFailed, NotFound,
//! PermissionDenied); the RustCrypto and aws-lc engines give the same answer; and a
//! token that verifies re-verifies with its key named by `kid`. Seeds are real tokens
//! (fuzz/seeds/make_seeds.py writes them with the keys below).
#![no_main]

use std::sync::OnceLock;

use hsmkit::jose::{self, JwsOptions, JwtValidation};
use hsmkit::{ErrorKind, KeyAttributes, KeyMaterial, KeyOp, Store};
use hsmkit_soft::{SoftBackend, SoftEngine};
use libfuzzer_sys::fuzz_target;

/// The same keys in two stores, one per engine: named `rsa`, `p256`, `ed25519`, `hmac`
/// (fixed material, so the seeds stay valid across runs).
fn stores() -> &'static (Store, Store) {
    static S: OnceLock<(Store, Store)> = OnceLock::new();
    S.get_or_init(|| {
        let rc = Store::new(SoftBackend::new().with_engine(SoftEngine::RustCrypto));
        let aws = Store::new(SoftBackend::new().with_engine(SoftEngine::AwsLc));
        let ops = KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify]);
        let keys: [(&str, KeyMaterial); 4] = [
            ("p256", KeyMaterial::ec_private(hsmkit::EcCurve::P256, &P256_D, None).unwrap()),
            ("ed25519", KeyMaterial::ed25519_private(&[7u8; 32], None).unwrap()),
            ("hmac", KeyMaterial::hmac(&[0x5c; 64]).unwrap()),
            ("rsa", KeyMaterial::from_pem(RSA_PEM).unwrap()),
        ];
        for (name, m) in keys {
            rc.import_key(name, m.clone(), ops.clone()).unwrap();
            aws.import_key(name, m, ops.clone()).unwrap();
        }
        (rc, aws)
    })
}

/// A fixed P-256 private scalar (make_seeds.py signs the seeds with it).
const P256_D: [u8; 32] = [0x8e, 0x9b, 0x10, 0x9e, 0x71, 0x90, 0x98, 0xbf, 0x98, 0x04, 0x87, 0xdf, 0x1f, 0x5d, 0x77, 0xe9, 0xc2, 0xcd, 0x31, 0x8e, 0x97, 0xad, 0xc0, 0x60, 0x69, 0x8f, 0xad, 0xd1, 0x3a, 0x75, 0xc1, 0x8c];
const RSA_PEM: &str = include_str!("../seeds/jws_parse_rsa.pem");

fn typed(r: &hsmkit::Result<impl std::fmt::Debug>) {
    if let Err(e) = r {
        assert!(
            matches!(
                e.kind(),
                ErrorKind::InvalidInput | ErrorKind::VerificationFailed | ErrorKind::NotFound | ErrorKind::PermissionDenied
            ),
            "untyped refusal: {e:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let (rc, aws) = stores();
    let a = jose::jws_verify(rc, token, &JwsOptions::new());
    let b = jose::jws_verify(aws, token, &JwsOptions::new());
    typed(&a);
    typed(&b);
    match (&a, &b) {
        (Ok(x), Ok(y)) => {
            assert_eq!(x.payload, y.payload);
            let key = rc.get_key_version(&x.key_name, x.key_version).unwrap();
            jose::jws_verify_with_key(&key, token, &JwsOptions::new()).unwrap();
        }
        (Err(x), Err(y)) => assert_eq!(x.kind(), y.kind(), "engines disagree: {x} / {y}"),
        _ => panic!("engines disagree: {a:?} / {b:?}"),
    }
    // As a JWT: claims checks on top, with no exp required (fuzzed tokens rarely have one).
    let v = JwtValidation::new().require_exp(false).audience("fuzz");
    let (a, b) = (jose::jwt_verify(rc, token, &v), jose::jwt_verify(aws, token, &v));
    typed(&a);
    typed(&b);
    assert_eq!(a.is_ok(), b.is_ok(), "engines disagree on the JWT: {a:?} / {b:?}");
});
