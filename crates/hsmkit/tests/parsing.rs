//! Names, specs and encodings parse and print consistently; garbage never panics.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use hsmkit::{
    Algorithm, EcCurve, EncryptionAlgorithm, ErrorKind, KeyMaterial, KeyOp, KeyOps, KeySpec,
    KeyWrapAlgorithm, SignatureAlgorithm,
};
use proptest::prelude::*;

#[test]
fn algorithm_names_round_trip() {
    for a in SignatureAlgorithm::ALL {
        assert_eq!(a.name().parse::<SignatureAlgorithm>().unwrap(), *a);
        assert_eq!(a.name().parse::<Algorithm>().unwrap(), Algorithm::Signature(*a));
    }
    for a in EncryptionAlgorithm::ALL {
        assert_eq!(a.to_string().parse::<EncryptionAlgorithm>().unwrap(), *a);
    }
    for a in KeyWrapAlgorithm::ALL {
        assert_eq!(a.to_string().parse::<KeyWrapAlgorithm>().unwrap(), *a);
    }
    // RSA-OAEP names both an encryption and a wrap algorithm; the union picks encryption.
    assert_eq!("RSA-OAEP".parse::<Algorithm>().unwrap(), Algorithm::Encryption(EncryptionAlgorithm::RsaOaep));
    assert_eq!("HS1".parse::<Algorithm>().unwrap_err().kind(), ErrorKind::InvalidInput);
    // JOSE spellings, case-insensitive as every name.
    assert_eq!("hs384".parse::<SignatureAlgorithm>().unwrap(), SignatureAlgorithm::Hs384);
    assert_eq!("EDDSA".parse::<SignatureAlgorithm>().unwrap(), SignatureAlgorithm::EdDsa);
    assert_eq!("es256k".parse::<SignatureAlgorithm>().unwrap(), SignatureAlgorithm::Es256k);
}

#[test]
fn key_specs_round_trip() {
    for s in KeySpec::GENERATABLE {
        assert_eq!(s.to_string().parse::<KeySpec>().unwrap(), *s, "{s}");
    }
    assert_eq!("P-384".parse::<KeySpec>().unwrap(), KeySpec::P384);
    assert_eq!(KeySpec::from_parts("rsa", None).unwrap(), KeySpec::RSA_2048);
    assert_eq!(KeySpec::from_parts("ec", Some("secp521r1")).unwrap(), KeySpec::P521);
    assert_eq!(KeySpec::from_parts("aes", Some("192")).unwrap(), KeySpec::AES_192);
    assert!(KeySpec::from_parts("aes", Some("100")).is_err());
    assert!(KeySpec::from_parts("dsa", None).is_err());
    assert!("EC-P-999".parse::<KeySpec>().is_err());
    assert_eq!(EcCurve::from_oid(&EcCurve::P256.oid()).unwrap(), EcCurve::P256);
    // secp256k1: the key vaults' P-256K, RFC 8812's secp256k1, SEC 2's OID.
    for s in ["P-256K", "secp256k1", "EC-P-256K"] {
        assert_eq!(s.parse::<KeySpec>().unwrap(), KeySpec::P256K, "{s}");
    }
    assert_eq!(EcCurve::P256K.oid().to_string(), "1.3.132.0.10");
    assert_eq!(EcCurve::from_oid(&EcCurve::P256K.oid()).unwrap(), EcCurve::P256K);
    assert_eq!(KeySpec::from_parts("ed25519", None).unwrap(), KeySpec::ED25519);
    assert_eq!(KeySpec::from_parts("hmac", None).unwrap(), KeySpec::HMAC_256);
    assert_eq!("HMAC-384".parse::<KeySpec>().unwrap(), KeySpec::HMAC_384);
    assert!(KeySpec::from_parts("hmac", Some("128")).is_err(), "shorter than HS256's hash");
    assert!(KeySpec::from_parts("hmac", Some("520")).is_err(), "longer than 512 bits");
    assert!(KeySpec::from_parts("ed25519", Some("256")).is_err());
    // The front ends' options: a curve only for EC keys, a size not for Ed25519 keys.
    assert_eq!(KeySpec::from_options("ec", None, Some("P-256K")).unwrap(), KeySpec::P256K);
    assert_eq!(KeySpec::from_options("hmac", Some(512), None).unwrap(), KeySpec::HMAC_512);
    assert_eq!(KeySpec::from_options("rsa", None, None).unwrap(), KeySpec::RSA_2048);
    assert!(KeySpec::from_options("ec", Some(256), None).is_err());
    assert!(KeySpec::from_options("rsa", None, Some("P-256")).is_err());
    assert!(KeySpec::from_options("ed25519", Some(256), None).is_err());
}

#[test]
fn key_ops_parse() {
    let ops: KeyOps = "sign, verify,wrapKey".parse().unwrap();
    assert!(ops.contains(KeyOp::Sign) && ops.contains(KeyOp::WrapKey) && !ops.contains(KeyOp::Decrypt));
    assert_eq!(ops.to_string(), "sign,verify,wrapKey");
    assert_eq!("unwrap".parse::<KeyOp>().unwrap(), KeyOp::UnwrapKey);
    assert!("frobnicate".parse::<KeyOps>().is_err());
}

#[test]
fn ecdsa_der_is_strict() {
    let raw = [1u8; 64];
    let der = hsmkit::ecdsa_sig::raw_to_der(EcCurve::P256, &raw).unwrap();
    assert_eq!(hsmkit::ecdsa_sig::der_to_raw(EcCurve::P256, &der).unwrap(), raw);
    // Non-minimal length encoding (BER) is refused.
    let mut ber = vec![0x30, 0x81, u8::try_from(der.len() - 2).unwrap()];
    ber.extend_from_slice(&der[2..]);
    assert_eq!(
        hsmkit::ecdsa_sig::der_to_raw(EcCurve::P256, &ber).unwrap_err().kind(),
        ErrorKind::VerificationFailed
    );
    // An integer wider than the curve is refused.
    let wide = hsmkit::ecdsa_sig::raw_to_der(EcCurve::P384, &[0xff; 96]).unwrap();
    assert!(hsmkit::ecdsa_sig::der_to_raw(EcCurve::P256, &wide).is_err());
}

#[test]
fn key_material_debug_is_redacted() {
    let m = KeyMaterial::aes(&[0xAB; 32]).unwrap();
    let dbg = format!("{m:?}");
    assert!(dbg.contains("REDACTED") && !dbg.contains("ab") && !dbg.contains("171"), "{dbg}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn import_parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = KeyMaterial::from_bytes(&data);
        let _ = KeyMaterial::from_der(&data);
        if let Ok(s) = std::str::from_utf8(&data) {
            let _ = KeyMaterial::from_pem(s);
            let _ = KeyMaterial::from_jwk_str(s);
        }
        for c in EcCurve::ALL {
            let _ = hsmkit::ecdsa_sig::der_to_raw(*c, &data);
            let _ = hsmkit::ecdsa_sig::raw_to_der(*c, &data);
        }
    }

    #[test]
    fn pem_wrapped_garbage_never_panics(body in "[A-Za-z0-9+/=\n]{0,400}", label in "(PUBLIC KEY|PRIVATE KEY|EC PRIVATE KEY|RSA PRIVATE KEY|X)") {
        let pem = format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n");
        let _ = KeyMaterial::from_pem(&pem);
    }

    #[test]
    fn raw_der_round_trip(r in proptest::collection::vec(any::<u8>(), 32), s in proptest::collection::vec(any::<u8>(), 32)) {
        let raw = [r, s].concat();
        let der = hsmkit::ecdsa_sig::raw_to_der(EcCurve::P256, &raw).unwrap();
        prop_assert_eq!(hsmkit::ecdsa_sig::der_to_raw(EcCurve::P256, &der).unwrap(), raw);
    }
}
