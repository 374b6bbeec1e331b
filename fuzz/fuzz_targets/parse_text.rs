//! The text parsers: PKCS#11 URIs (RFC 7512), store URIs, key names, JWK JSON and the
//! ECDSA signature encodings. Never panics; DER signatures round-trip exactly (strict
//! DER in, canonical DER out).
#![no_main]

use hsmkit::{EcCurve, ErrorKind, KeyMaterial};
use hsmkit_pkcs11::uri::{Pkcs11Uri, percent_decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(uri) = Pkcs11Uri::parse(s) {
            let _ = uri.module();
            let _ = uri.pin();
        }
        if let Ok(d) = percent_decode(s) {
            assert!(d.len() <= s.len());
        }
        if let Err(e) = hsmkit_open::Location::parse(s) {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e:?}");
        }
        if hsmkit::validate_name(s).is_ok() {
            assert!(!s.is_empty() && s.len() <= hsmkit::MAX_NAME_LEN);
        }
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(s) {
            let _ = KeyMaterial::from_jwk(&v);
        }
    }
    for curve in [EcCurve::P256, EcCurve::P384, EcCurve::P521] {
        if let Ok(raw) = hsmkit::ecdsa_sig::der_to_raw(curve, data) {
            assert_eq!(raw.len(), 2 * curve.field_len());
            let der = hsmkit::ecdsa_sig::raw_to_der(curve, &raw).unwrap();
            assert_eq!(der, data, "DER signature accepted but not canonical");
        }
        if let Ok(der) = hsmkit::ecdsa_sig::raw_to_der(curve, data) {
            assert_eq!(hsmkit::ecdsa_sig::der_to_raw(curve, &der).unwrap(), data);
        }
    }
});
