//! Certificate and certificate-request parsing (DER and PEM) of arbitrary bytes: never
//! panics; whatever parses answers every accessor, and its signature check (a request's
//! own, a certificate's as self-signed) gives the same answer on the RustCrypto and
//! aws-lc engines, a refusal being a typed error.
#![no_main]

use std::sync::OnceLock;

use hsmkit::x509::{Certificate, CertificateRequest};
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

fn same(a: hsmkit::Result<()>, b: hsmkit::Result<()>) {
    match (&a, &b) {
        (Ok(()), Ok(())) => {}
        (Err(x), Err(y)) => {
            assert_eq!(x.kind(), y.kind(), "engines disagree: {x} / {y}");
            assert!(
                matches!(x.kind(), ErrorKind::VerificationFailed | ErrorKind::InvalidInput | ErrorKind::Unsupported),
                "unexpected refusal {x}"
            );
        }
        _ => panic!("engines disagree: {a:?} / {b:?}"),
    }
}

fn certificate(c: &Certificate) {
    let (rc, aws) = *providers();
    let _ = (c.subject(), c.issuer(), c.serial_hex(), c.validity(), c.sha256_fingerprint(rc));
    let _ = (c.public_key(), c.subject_alt_names(), c.key_usage(), c.basic_constraints());
    same(c.verify_issued_by(c, rc), c.verify_issued_by(c, aws));
    let again = Certificate::from_pem(&c.to_pem().expect("a parsed certificate encodes")).expect("re-parses");
    assert_eq!(&again, c);
}

fn request(r: &CertificateRequest) {
    let (rc, aws) = *providers();
    let _ = (r.subject(), r.subject_alt_names(), r.public_key());
    same(r.verify(rc), r.verify(aws));
    let again = CertificateRequest::from_pem(&r.to_pem().expect("a parsed request encodes")).expect("re-parses");
    assert_eq!(&again, r);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Certificate::from_der(data) {
        certificate(&c);
    }
    if let Ok(r) = CertificateRequest::from_der(data) {
        request(&r);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(chain) = Certificate::from_pem_chain(text) {
            chain.iter().for_each(certificate);
        }
        if let Ok(r) = CertificateRequest::from_pem(text) {
            request(&r);
        }
    }
});
