//! PKCS#12 decoding of arbitrary bytes with the RustCrypto and aws-lc providers: never
//! panics; a refusal is typed (InvalidInput, Authentication for a wrong password or an
//! altered file, Unsupported for encryption hsmkit does not read); both providers give
//! the same answer. Seeds are files OpenSSL and pyca/cryptography wrote with the password
//! `pw` (fuzz/seeds/make_seeds.py).
#![no_main]

use std::sync::OnceLock;

use hsmkit::{CryptoProvider, ErrorKind, Store};
use hsmkit_soft::{SoftBackend, SoftEngine};
use libfuzzer_sys::fuzz_target;

fn providers() -> &'static (&'static dyn CryptoProvider, &'static dyn CryptoProvider) {
    static P: OnceLock<(&'static dyn CryptoProvider, &'static dyn CryptoProvider)> = OnceLock::new();
    P.get_or_init(|| {
        let rc = Store::new(SoftBackend::new().with_engine(SoftEngine::RustCrypto)).crypto();
        let aws = Store::new(SoftBackend::new().with_engine(SoftEngine::AwsLc)).crypto();
        (rc, aws)
    })
}

fuzz_target!(|data: &[u8]| {
    let (rc, aws) = providers();
    for password in ["pw", ""] {
        let a = hsmkit::pkcs12::decode(*rc, data, password);
        let b = hsmkit::pkcs12::decode(*aws, data, password);
        match (&a, &b) {
            (Ok(x), Ok(y)) => {
                assert_eq!(x.key.as_deref(), y.key.as_deref(), "the providers decrypt the key alike");
                assert_eq!(x.certificates, y.certificates);
            }
            (Err(x), Err(y)) => {
                assert_eq!(x.kind(), y.kind(), "the providers refuse alike: {x} / {y}");
                assert!(
                    matches!(x.kind(), ErrorKind::InvalidInput | ErrorKind::Authentication | ErrorKind::Unsupported),
                    "untyped refusal: {x:?}"
                );
            }
            (x, y) => panic!("the providers disagree: {x:?} / {y:?}"),
        }
    }
});
