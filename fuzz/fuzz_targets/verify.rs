//! Signature verification of arbitrary signatures (raw and DER) with fixed keys of every
//! type: never panics, a refusal is VerificationFailed or InvalidInput, and the
//! RustCrypto and aws-lc engines give the same answer. The first byte picks the
//! algorithm and encoding, the second the message; the rest is the signature.
#![no_main]

use std::sync::OnceLock;

use hsmkit::{
    ErrorKind, Key, KeyAttributes, KeyOp, KeySpec, SignInput, SignatureAlgorithm as A, SignatureFormat, Store,
};
use hsmkit_soft::{SoftBackend, SoftEngine};
use libfuzzer_sys::fuzz_target;

const ALGS: [(A, KeySpec); 9] = [
    (A::Rs256, KeySpec::Rsa { bits: 2048 }),
    (A::Rs384, KeySpec::Rsa { bits: 2048 }),
    (A::Rs512, KeySpec::Rsa { bits: 2048 }),
    (A::Ps256, KeySpec::Rsa { bits: 2048 }),
    (A::Ps384, KeySpec::Rsa { bits: 2048 }),
    (A::Ps512, KeySpec::Rsa { bits: 2048 }),
    (A::Es256, KeySpec::Ec(hsmkit::EcCurve::P256)),
    (A::Es384, KeySpec::Ec(hsmkit::EcCurve::P384)),
    (A::Es512, KeySpec::Ec(hsmkit::EcCurve::P521)),
];

/// One key per spec, the same material under both engines.
fn keys() -> &'static Vec<(Key, Key)> {
    static KEYS: OnceLock<Vec<(Key, Key)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rc = Store::new(SoftBackend::new().with_engine(SoftEngine::RustCrypto));
        let aws = Store::new(SoftBackend::new().with_engine(SoftEngine::AwsLc));
        let attrs = KeyAttributes { exportable: true, ..KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify]) };
        ALGS.iter()
            .enumerate()
            .map(|(i, (_, spec))| {
                let name = format!("k{i}");
                let a = rc.create_key(&name, *spec, attrs.clone()).unwrap();
                let b = aws.import_key(&name, a.export().unwrap(), attrs.clone()).unwrap();
                (a, b)
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let &[sel, msg, ref sig @ ..] = data else { return };
    let (alg, spec) = ALGS[usize::from(sel % 9)];
    let der = (sel / 9) % 2 == 1 && matches!(spec, KeySpec::Ec(_));
    let message = [msg; 3];
    let (rc, aws) = &keys()[usize::from(sel % 9)];
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
