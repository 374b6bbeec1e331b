//! Signature verification of arbitrary signatures (raw and DER) with fixed keys of every
//! type (RSA, ECDSA on four curves, Ed25519, HMAC): never panics, a refusal is VerificationFailed or InvalidInput, and the
//! RustCrypto and aws-lc engines give the same answer. The first byte picks the
//! algorithm and encoding, the second the message; the rest is the signature.
#![no_main]

use std::sync::OnceLock;

use hsmkit::{
    ErrorKind, Key, KeyAttributes, KeyMaterial, KeyOp, KeySpec, SignInput, SignatureAlgorithm as A, SignatureFormat,
    Store,
};
use hsmkit_soft::{SoftBackend, SoftEngine};
use libfuzzer_sys::fuzz_target;

const ALGS: [(A, KeySpec); 14] = [
    (A::Rs256, KeySpec::Rsa { bits: 2048 }),
    (A::Rs384, KeySpec::Rsa { bits: 2048 }),
    (A::Rs512, KeySpec::Rsa { bits: 2048 }),
    (A::Ps256, KeySpec::Rsa { bits: 2048 }),
    (A::Ps384, KeySpec::Rsa { bits: 2048 }),
    (A::Ps512, KeySpec::Rsa { bits: 2048 }),
    (A::Es256, KeySpec::Ec(hsmkit::EcCurve::P256)),
    (A::Es384, KeySpec::Ec(hsmkit::EcCurve::P384)),
    (A::Es512, KeySpec::Ec(hsmkit::EcCurve::P521)),
    (A::Es256k, KeySpec::Ec(hsmkit::EcCurve::P256K)),
    (A::EdDsa, KeySpec::Ed25519),
    (A::Hs256, KeySpec::Hmac { bits: 512 }),
    (A::Hs384, KeySpec::Hmac { bits: 512 }),
    (A::Hs512, KeySpec::Hmac { bits: 512 }),
];

/// One key per spec, the same material under both engines (HMAC keys never export: the
/// same fixed secret is imported into both).
fn keys() -> &'static Vec<(Key, Key)> {
    static KEYS: OnceLock<Vec<(Key, Key)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rc = Store::new(SoftBackend::new().with_engine(SoftEngine::RustCrypto));
        let aws = Store::new(SoftBackend::new().with_engine(SoftEngine::AwsLc));
        let ops = KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify]);
        let attrs = KeyAttributes { exportable: true, ..ops.clone() };
        ALGS.iter()
            .enumerate()
            .map(|(i, (_, spec))| {
                let name = format!("k{i}");
                if let KeySpec::Hmac { .. } = spec {
                    let secret = KeyMaterial::hmac(&[0x5c; 64]).unwrap();
                    let a = rc.import_key(&name, secret.clone(), ops.clone()).unwrap();
                    return (a, aws.import_key(&name, secret, ops.clone()).unwrap());
                }
                let a = rc.create_key(&name, *spec, attrs.clone()).unwrap();
                let b = aws.import_key(&name, a.export().unwrap(), attrs.clone()).unwrap();
                (a, b)
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let &[sel, msg, ref sig @ ..] = data else { return };
    let n = u8::try_from(ALGS.len()).unwrap();
    let (alg, spec) = ALGS[usize::from(sel % n)];
    let der = (sel / n) % 2 == 1 && matches!(spec, KeySpec::Ec(_));
    let message = [msg; 3];
    let (rc, aws) = &keys()[usize::from(sel % n)];
    let verify = |k: &Key| {
        let format = if der { SignatureFormat::Der } else { SignatureFormat::Raw };
        k.verify_with(alg, SignInput::Message(&message), sig, format)
    };
    let (a, b) = (verify(rc), verify(aws));
    for r in [&a, &b] {
        if let Err(e) = r {
            assert!(matches!(e.kind(), ErrorKind::VerificationFailed | ErrorKind::InvalidInput), "{alg}: {e:?}");
        }
    }
    assert_eq!(a.is_ok(), b.is_ok(), "{alg} der={der}: engines disagree: {a:?} / {b:?}");
});
