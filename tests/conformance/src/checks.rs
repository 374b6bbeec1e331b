//! Behavioural checks every backend must pass.

use std::time::{Duration, SystemTime};

use hsmkit::{
    Denied, EncryptionAlgorithm, Error, ErrorKind, Key, KeyAttributes, KeyMaterial, KeyOp, KeySpec,
    KeyWrapAlgorithm, SignInput, SignatureAlgorithm, SignatureFormat, SignatureScheme, Store, WrapScheme,
};

/// Asserts that `r` failed with `kind`.
#[track_caller]
pub fn expect_kind<T: std::fmt::Debug>(r: hsmkit::Result<T>, kind: ErrorKind) -> Error {
    match r {
        Err(e) if e.kind() == kind => e,
        other => panic!("expected {kind:?}, got {other:?}"),
    }
}

/// The smallest spec that fits a signature algorithm.
pub fn spec_for_sig(alg: SignatureAlgorithm) -> KeySpec {
    match alg.scheme() {
        SignatureScheme::Ecdsa(c) => KeySpec::Ec(c),
        SignatureScheme::Ed25519 => KeySpec::Ed25519,
        SignatureScheme::Hmac => KeySpec::Hmac { bits: u32::try_from(alg.hash().output_len() * 8).unwrap() },
        SignatureScheme::RsaPkcs1v15 | SignatureScheme::RsaPss => KeySpec::RSA_2048,
    }
}

/// The spec that fits a wrap algorithm.
pub fn spec_for_wrap(alg: KeyWrapAlgorithm) -> KeySpec {
    match alg.scheme() {
        WrapScheme::AesKw(b) | WrapScheme::AesKwp(b) => {
            KeySpec::Aes(hsmkit::AesSize::from_bits(u32::from(b)).expect("AES size"))
        }
        _ => KeySpec::RSA_2048,
    }
}

/// Creates a key allowing exactly `ops`.
pub fn create(store: &Store, name: &str, spec: KeySpec, ops: &[KeyOp]) -> Key {
    store
        .create_key(name, spec, KeyAttributes::with_ops(ops))
        .unwrap_or_else(|e| panic!("create {name} {spec}: {e}"))
}

/// Creates a key allowing exactly `ops`; where the capabilities say the backend cannot
/// generate `spec`, asserts the typed `Unsupported` instead and returns `None`.
pub fn create_or_unsupported(store: &Store, name: &str, spec: KeySpec, ops: &[KeyOp]) -> Option<Key> {
    if store.capabilities().generate.contains(&spec) {
        return Some(create(store, name, spec, ops));
    }
    expect_kind(store.create_key(name, spec, KeyAttributes::with_ops(ops)), ErrorKind::Unsupported);
    None
}

/// Imports `material`; where the capabilities say the backend imports nothing, asserts
/// the typed `Unsupported` instead and returns `None`.
pub fn import_or_unsupported(
    store: &Store,
    name: &str,
    material: KeyMaterial,
    attributes: KeyAttributes,
) -> Option<Key> {
    let r = store.import_key(name, material, attributes);
    if store.capabilities().import {
        return Some(r.unwrap_or_else(|e| panic!("import {name}: {e}")));
    }
    expect_kind(r, ErrorKind::Unsupported);
    None
}

/// What importing invalid material answers: `InvalidInput`, or `Unsupported` on a
/// backend whose capabilities say it imports nothing.
pub fn invalid_import(store: &Store) -> ErrorKind {
    if store.capabilities().import { ErrorKind::InvalidInput } else { ErrorKind::Unsupported }
}

const MSG: &[u8] = b"The quick brown fox jumps over the lazy dog";

pub fn generate_every_spec(store: &Store) {
    let caps = store.capabilities();
    for (i, spec) in KeySpec::GENERATABLE.iter().enumerate() {
        let name = format!("gen-{i}");
        let r = store.create_key(&name, *spec, KeyAttributes::default());
        if !caps.generate.contains(spec) {
            expect_kind(r, ErrorKind::Unsupported);
            continue;
        }
        let key = r.unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(key.spec(), *spec);
        assert_eq!(key.name(), name);
        assert_eq!(key.version(), 1);
        assert!(key.info().has_private);
        let again = store.get_key(&name).unwrap();
        assert_eq!(again.info().spec, *spec);
        assert_eq!(again.info().attributes, key.info().attributes);
        match spec {
            KeySpec::Aes(_) | KeySpec::Hmac { .. } => {
                expect_kind(key.public_key(), ErrorKind::Unsupported);
            }
            _ => {
                let public = key.public_key().unwrap();
                assert_eq!(public.spec(), *spec, "public key spec of {spec}");
                assert_eq!(again.public_key().unwrap(), public);
            }
        }
    }
}

pub fn sign_verify_every_algorithm(store: &Store) {
    let caps = store.capabilities();
    for alg in SignatureAlgorithm::ALL {
        let Some(key) = create_or_unsupported(
            store,
            &format!("sig-{alg}"),
            spec_for_sig(*alg),
            &[KeyOp::Sign, KeyOp::Verify],
        ) else {
            continue;
        };
        let r = key.sign(*alg, MSG);
        if !caps.sign.contains(alg) {
            let e = expect_kind(r, ErrorKind::Unsupported);
            assert!(e.to_string().contains(alg.name()), "Unsupported must name {alg}: {e}");
            continue;
        }
        let sig = r.unwrap_or_else(|e| panic!("{alg}: {e}"));
        let len = match alg.scheme() {
            SignatureScheme::Ecdsa(c) => 2 * c.field_len(),
            SignatureScheme::Ed25519 => 64,
            SignatureScheme::Hmac => alg.hash().output_len(),
            SignatureScheme::RsaPkcs1v15 | SignatureScheme::RsaPss => 256,
        };
        assert_eq!(sig.len(), len, "{alg} signature length");
        assert_eq!(Some(sig.len()), alg.signature_len(key.spec()), "{alg}: the core's signature_len");
        // Deterministic schemes give the same bytes twice; ECDSA and PSS are randomised.
        match alg.scheme() {
            SignatureScheme::RsaPkcs1v15 | SignatureScheme::Ed25519 | SignatureScheme::Hmac => {
                assert_eq!(key.sign(*alg, MSG).unwrap(), sig, "{alg} is deterministic");
            }
            SignatureScheme::RsaPss | SignatureScheme::Ecdsa(_) => {}
        }
        key.verify(*alg, MSG, &sig).unwrap_or_else(|e| panic!("{alg} verify: {e}"));
        expect_kind(key.verify(*alg, b"another message", &sig), ErrorKind::VerificationFailed);
        let mut bad = sig.clone();
        bad[10] ^= 1;
        expect_kind(key.verify(*alg, MSG, &bad), ErrorKind::VerificationFailed);
        expect_kind(key.verify(*alg, MSG, &sig[1..]), ErrorKind::VerificationFailed);
        expect_kind(key.verify(*alg, MSG, &[]), ErrorKind::VerificationFailed);
    }
}

pub fn sign_digest_matches_sign_message(store: &Store) {
    let caps = store.capabilities();
    for alg in SignatureAlgorithm::ALL.iter().filter(|a| caps.sign.contains(a)) {
        let key = create(store, &format!("dig-{alg}"), spec_for_sig(*alg), &[KeyOp::Sign, KeyOp::Verify]);
        let digest = store.crypto().digest(alg.hash(), MSG);
        if alg.prehash().is_none() {
            // EdDSA and HMAC sign the whole message: a digest is refused, typed.
            expect_kind(key.sign_digest(*alg, &digest), ErrorKind::InvalidInput);
            let sig = key.sign(*alg, MSG).unwrap();
            expect_kind(key.verify_digest(*alg, &digest, &sig), ErrorKind::InvalidInput);
            // One encoding: DER is the same bytes (both schemes are deterministic).
            assert_eq!(key.sign_with(*alg, SignInput::Message(MSG), SignatureFormat::Der).unwrap(), sig);
            continue;
        }
        let sig = key.sign_digest(*alg, &digest).unwrap();
        key.verify(*alg, MSG, &sig)
            .unwrap_or_else(|e| panic!("{alg}: digest-signed fails message verify: {e}"));
        let sig2 = key.sign(*alg, MSG).unwrap();
        key.verify_digest(*alg, &digest, &sig2).unwrap();
        // A digest of the wrong length is the caller's mistake, not a bad signature.
        expect_kind(key.sign_digest(*alg, &digest[1..]), ErrorKind::InvalidInput);
        expect_kind(key.verify_digest(*alg, &digest[1..], &sig), ErrorKind::InvalidInput);
        // RSASSA-PKCS1-v1_5 is deterministic: both paths give the same bytes.
        if alg.scheme() == SignatureScheme::RsaPkcs1v15 {
            assert_eq!(sig, sig2, "{alg} must be deterministic");
        }
    }
}

pub fn ecdsa_der_and_raw_encodings(store: &Store) {
    let caps = store.capabilities();
    for alg in [
        SignatureAlgorithm::Es256,
        SignatureAlgorithm::Es384,
        SignatureAlgorithm::Es512,
        SignatureAlgorithm::Es256k,
    ] {
        if !caps.sign.contains(&alg) {
            continue;
        }
        let key = create(store, &format!("enc-{alg}"), spec_for_sig(alg), &[KeyOp::Sign, KeyOp::Verify]);
        let der = key.sign_with(alg, SignInput::Message(MSG), SignatureFormat::Der).unwrap();
        assert_eq!(der[0], 0x30, "DER signature is a SEQUENCE");
        key.verify_with(alg, SignInput::Message(MSG), &der, SignatureFormat::Der).unwrap();
        // The raw form of the DER signature verifies as raw, and the DER does not verify as raw.
        let SignatureScheme::Ecdsa(curve) = alg.scheme() else { unreachable!() };
        let raw = hsmkit::ecdsa_sig::der_to_raw(curve, &der).unwrap();
        key.verify(alg, MSG, &raw).unwrap();
        expect_kind(key.verify(alg, MSG, &der), ErrorKind::VerificationFailed);
        assert_eq!(hsmkit::ecdsa_sig::raw_to_der(curve, &raw).unwrap(), der);
        // Trailing garbage after the DER is rejected.
        let mut long = der.clone();
        long.push(0);
        expect_kind(
            key.verify_with(alg, SignInput::Message(MSG), &long, SignatureFormat::Der),
            ErrorKind::VerificationFailed,
        );
    }
    // RSA signatures have one encoding: DER (what OpenSSL reads) is the same bytes.
    if caps.sign.contains(&SignatureAlgorithm::Rs256) {
        let key = create(store, "enc-rsa", KeySpec::RSA_2048, &[KeyOp::Sign, KeyOp::Verify]);
        let der =
            key.sign_with(SignatureAlgorithm::Rs256, SignInput::Message(MSG), SignatureFormat::Der).unwrap();
        assert_eq!(der, key.sign(SignatureAlgorithm::Rs256, MSG).unwrap());
        key.verify_with(SignatureAlgorithm::Rs256, SignInput::Message(MSG), &der, SignatureFormat::Der)
            .unwrap();
    }
}

pub fn encrypt_decrypt_every_algorithm(store: &Store) {
    let caps = store.capabilities();
    let key = create(store, "oaep", KeySpec::RSA_2048, &[KeyOp::Encrypt, KeyOp::Decrypt]);
    for alg in EncryptionAlgorithm::ALL {
        for label in [&b""[..], b"a label"] {
            let ct = key.encrypt_with_label(*alg, MSG, label).unwrap();
            assert_eq!(ct.len(), 256);
            let r = key.decrypt_with_label(*alg, &ct, label);
            if !caps.decrypt.contains(alg) || (!label.is_empty() && !caps.oaep_label) {
                expect_kind(r, ErrorKind::Unsupported);
                continue;
            }
            assert_eq!(&r.unwrap()[..], MSG, "{alg} label {label:?}");
            // OAEP is randomised.
            assert_ne!(ct, key.encrypt_with_label(*alg, MSG, label).unwrap());
        }
        // The longest plaintext fits, one more byte does not.
        let max = alg.max_plaintext_len(256);
        let ct = key.encrypt(*alg, &vec![7u8; max]).unwrap();
        if caps.decrypt.contains(alg) {
            assert_eq!(key.decrypt(*alg, &ct).unwrap().len(), max);
        }
        expect_kind(key.encrypt(*alg, &vec![7u8; max + 1]), ErrorKind::InvalidInput);
    }
}

pub fn wrap_unwrap_every_algorithm(store: &Store) {
    let caps = store.capabilities();
    let dek: Vec<u8> = (0u8..32).collect();
    for alg in KeyWrapAlgorithm::ALL {
        let Some(key) = create_or_unsupported(
            store,
            &format!("wrap-{alg}"),
            spec_for_wrap(*alg),
            &[KeyOp::WrapKey, KeyOp::UnwrapKey],
        ) else {
            continue;
        };
        let r = key.wrap_key(*alg, &dek);
        if !caps.wrap.contains(alg) {
            let e = expect_kind(r, ErrorKind::Unsupported);
            assert!(e.to_string().contains(alg.name()) && e.to_string().contains("CKM_"), "{e}");
            // Unwrap says Unsupported too, whatever the input.
            expect_kind(key.unwrap_key(*alg, &[0; 40]), ErrorKind::Unsupported);
            expect_kind(key.unwrap_key(*alg, &[0; 3]), ErrorKind::Unsupported);
            continue;
        }
        let wrapped = r.unwrap_or_else(|e| panic!("{alg}: {e}"));
        let r = key.unwrap_key(*alg, &wrapped);
        if !caps.unwrap.contains(alg) {
            let e = expect_kind(r, ErrorKind::Unsupported);
            assert!(e.to_string().contains(alg.name()) || e.to_string().contains("CKM_"), "{e}");
            continue;
        }
        assert_eq!(&r.unwrap()[..], &dek[..], "{alg}");
        match alg.scheme() {
            WrapScheme::AesKw(_) => {
                assert_eq!(wrapped.len(), 40);
                // KW is deterministic.
                assert_eq!(wrapped, key.wrap_key(*alg, &dek).unwrap());
                expect_kind(key.wrap_key(*alg, &dek[..20]), ErrorKind::InvalidInput);
                expect_kind(key.wrap_key(*alg, &dek[..8]), ErrorKind::InvalidInput);
            }
            WrapScheme::AesKwp(_) => {
                // KWP takes any length from 1 byte.
                for n in [1usize, 7, 8, 9, 20, 31] {
                    let w = key.wrap_key(*alg, &dek[..n]).unwrap();
                    assert_eq!(&key.unwrap_key(*alg, &w).unwrap()[..], &dek[..n], "{alg} len {n}");
                }
                expect_kind(key.wrap_key(*alg, &[]), ErrorKind::InvalidInput);
            }
            _ => {}
        }
        let mut bad = wrapped.clone();
        bad[3] ^= 0x40;
        expect_kind(key.unwrap_key(*alg, &bad), ErrorKind::DecryptionFailed);
        expect_kind(key.unwrap_key(*alg, &wrapped[..wrapped.len() - 8]), ErrorKind::DecryptionFailed);
        expect_kind(key.unwrap_key(*alg, &[]), ErrorKind::DecryptionFailed);
    }
}

pub fn algorithm_must_fit_key(store: &Store) {
    use hsmkit::{InvalidReason as R, UnsupportedReason as U};
    let ec = create(store, "fit-ec", KeySpec::P256, &[KeyOp::Sign, KeyOp::Verify]);
    // Every backend gives the same typed reason, not just the same kind.
    let reason = |r: hsmkit::Result<Vec<u8>>| expect_kind(r, ErrorKind::InvalidInput).invalid_reason();
    assert_eq!(reason(ec.sign(SignatureAlgorithm::Es384, MSG)), Some(R::KeyMismatch));
    assert_eq!(reason(ec.sign(SignatureAlgorithm::Rs256, MSG)), Some(R::KeyMismatch));
    assert_eq!(reason(ec.sign_digest(SignatureAlgorithm::Es256, &[0; 31])), Some(R::Length));
    let bad_name = store.create_key("fit bad", KeySpec::P256, KeyAttributes::default());
    assert_eq!(expect_kind(bad_name, ErrorKind::InvalidInput).invalid_reason(), Some(R::Name));
    let garbage = KeyMaterial::from_pem("-----BEGIN GARBAGE-----\n-----END GARBAGE-----\n");
    assert_eq!(garbage.err().and_then(|e| e.invalid_reason()), Some(R::Malformed));
    let rsa = create(store, "fit-rsa", KeySpec::RSA_2048, &[KeyOp::Sign, KeyOp::Verify, KeyOp::WrapKey]);
    expect_kind(rsa.sign(SignatureAlgorithm::Es256, MSG), ErrorKind::InvalidInput);
    expect_kind(rsa.wrap_key(KeyWrapAlgorithm::A256Kw, &[0; 32]), ErrorKind::InvalidInput);
    if let Some(aes) =
        create_or_unsupported(store, "fit-aes", KeySpec::AES_128, &[KeyOp::WrapKey, KeyOp::UnwrapKey])
    {
        let none = expect_kind(aes.public_key(), ErrorKind::Unsupported);
        assert_eq!(none.unsupported_reason(), Some(U::Operation), "{none}");
        expect_kind(aes.wrap_key(KeyWrapAlgorithm::A256Kw, &[0; 32]), ErrorKind::InvalidInput);
        expect_kind(aes.wrap_key(KeyWrapAlgorithm::RsaOaep256, &[0; 32]), ErrorKind::InvalidInput);
    }
    // Key-role separation: never both encrypt/decrypt and wrapKey/unwrapKey.
    let e = expect_kind(
        store.create_key("fit-bad", KeySpec::RSA_2048, KeyAttributes::with_ops(KeyOp::ALL)),
        ErrorKind::InvalidInput,
    );
    assert!(e.to_string().contains("key-role separation"), "{e}");
    expect_kind(
        store.create_key(
            "fit-bad",
            KeySpec::RSA_2048,
            KeyAttributes::with_ops(&[KeyOp::Decrypt, KeyOp::UnwrapKey]),
        ),
        ErrorKind::InvalidInput,
    );
    // Operations a key type cannot do at all are refused when creating it.
    expect_kind(
        store.create_key("fit-bad", KeySpec::P256, KeyAttributes::with_ops(&[KeyOp::Decrypt])),
        ErrorKind::InvalidInput,
    );
    // Input first: InvalidInput even where the backend makes no AES keys at all.
    expect_kind(
        store.create_key("fit-bad", KeySpec::AES_256, KeyAttributes::with_ops(&[KeyOp::Sign])),
        ErrorKind::InvalidInput,
    );
}

fn denied(e: Error) -> Denied {
    match e {
        Error::PermissionDenied { reason, .. } => reason,
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
}

pub fn sign_only_key_refuses_decrypt(store: &Store) {
    let key = create(store, "sign-only", KeySpec::RSA_2048, &[KeyOp::Sign]);
    let other = create(store, "enc", KeySpec::RSA_2048, &[KeyOp::Encrypt, KeyOp::Decrypt]);
    let ct = other.encrypt(EncryptionAlgorithm::RsaOaep256, MSG).unwrap();
    let e = expect_kind(key.decrypt(EncryptionAlgorithm::RsaOaep256, &ct), ErrorKind::PermissionDenied);
    assert_eq!(denied(e), Denied::OperationNotAllowed(KeyOp::Decrypt));
    let e = expect_kind(key.encrypt(EncryptionAlgorithm::RsaOaep256, MSG), ErrorKind::PermissionDenied);
    assert_eq!(denied(e), Denied::OperationNotAllowed(KeyOp::Encrypt));
    // PS256 where the backend signs with it, else RS256 (tpm2-pkcs11 lists no RSA-PSS).
    let caps = store.capabilities();
    let alg = if caps.sign.contains(&SignatureAlgorithm::Ps256) {
        SignatureAlgorithm::Ps256
    } else {
        SignatureAlgorithm::Rs256
    };
    let sig = key.sign(alg, MSG).unwrap();
    let e = expect_kind(key.verify(alg, MSG, &sig), ErrorKind::PermissionDenied);
    assert_eq!(denied(e), Denied::OperationNotAllowed(KeyOp::Verify));
    let e = expect_kind(key.wrap_key(KeyWrapAlgorithm::RsaOaep256, &[1; 32]), ErrorKind::PermissionDenied);
    assert_eq!(denied(e), Denied::OperationNotAllowed(KeyOp::WrapKey));
    // Default RSA keys never get both decrypt and unwrap (key-role separation).
    let dflt = store.create_key("dflt", KeySpec::RSA_2048, KeyAttributes::default()).unwrap();
    let ops = dflt.info().attributes.allowed();
    assert!(ops.contains(KeyOp::Decrypt) && !ops.contains(KeyOp::UnwrapKey));
}

const CRYPT_OPS: &[KeyOp] = &[KeyOp::Sign, KeyOp::Verify, KeyOp::Encrypt, KeyOp::Decrypt];
const WRAP_OPS: &[KeyOp] = &[KeyOp::Sign, KeyOp::Verify, KeyOp::WrapKey, KeyOp::UnwrapKey];

pub fn disabled_key_refuses_everything(store: &Store) {
    let attrs = |ops| KeyAttributes { enabled: false, ..KeyAttributes::with_ops(ops) };
    let key = store.create_key("disabled", KeySpec::RSA_2048, attrs(CRYPT_OPS)).unwrap();
    let wkey = store.create_key("disabled-w", KeySpec::RSA_2048, attrs(WRAP_OPS)).unwrap();
    let checks: Vec<hsmkit::Result<()>> = vec![
        key.sign(SignatureAlgorithm::Rs256, MSG).map(drop),
        key.verify(SignatureAlgorithm::Rs256, MSG, &[0; 256]),
        key.encrypt(EncryptionAlgorithm::RsaOaep256, MSG).map(drop),
        key.decrypt(EncryptionAlgorithm::RsaOaep256, &[0; 256]).map(drop),
        wkey.wrap_key(KeyWrapAlgorithm::RsaOaep256, &[1; 32]).map(drop),
        wkey.unwrap_key(KeyWrapAlgorithm::RsaOaep256, &[0; 256]).map(drop),
    ];
    for r in checks {
        assert_eq!(denied(expect_kind(r, ErrorKind::PermissionDenied)), Denied::Disabled);
    }
}

pub fn expired_key_refuses_private_operations(store: &Store) {
    let past = SystemTime::now() - Duration::from_secs(3600);
    let attrs = |ops| KeyAttributes {
        expires: Some(past),
        not_before: Some(past - Duration::from_secs(3600)),
        ..KeyAttributes::with_ops(ops)
    };
    let key = store.create_key("expired", KeySpec::RSA_2048, attrs(CRYPT_OPS)).unwrap();
    let wkey = store.create_key("expired-w", KeySpec::RSA_2048, attrs(WRAP_OPS)).unwrap();
    for r in [
        key.sign(SignatureAlgorithm::Rs256, MSG).map(drop),
        key.decrypt(EncryptionAlgorithm::RsaOaep256, &[0; 256]).map(drop),
        wkey.unwrap_key(KeyWrapAlgorithm::RsaOaep256, &[0; 256]).map(drop),
        key.encrypt(EncryptionAlgorithm::RsaOaep256, MSG).map(drop),
        wkey.wrap_key(KeyWrapAlgorithm::RsaOaep256, &[1; 32]).map(drop),
    ] {
        assert_eq!(denied(expect_kind(r, ErrorKind::PermissionDenied)), Denied::Expired);
    }
    // Verification of old signatures stays possible: a bad signature is still just bad.
    expect_kind(key.verify(SignatureAlgorithm::Rs256, MSG, &[0; 256]), ErrorKind::VerificationFailed);
    let ec = store
        .create_key(
            "expired-ec",
            KeySpec::P256,
            KeyAttributes { expires: Some(past), ..KeyAttributes::default() },
        )
        .unwrap();
    assert_eq!(
        denied(expect_kind(ec.sign(SignatureAlgorithm::Es256, MSG), ErrorKind::PermissionDenied)),
        Denied::Expired
    );
}

pub fn not_yet_valid_key_refuses(store: &Store) {
    let future = SystemTime::now() + Duration::from_secs(3600);
    let attrs = KeyAttributes { not_before: Some(future), ..KeyAttributes::default() };
    let key = store.create_key("future", KeySpec::P256, attrs).unwrap();
    assert_eq!(
        denied(expect_kind(key.sign(SignatureAlgorithm::Es256, MSG), ErrorKind::PermissionDenied)),
        Denied::NotYetValid
    );
    let aes = store.create_key(
        "future-aes",
        KeySpec::AES_256,
        KeyAttributes { not_before: Some(future), ..KeyAttributes::default() },
    );
    if store.capabilities().generate.contains(&KeySpec::AES_256) {
        let aes = aes.unwrap();
        assert_eq!(
            denied(expect_kind(
                aes.wrap_key(KeyWrapAlgorithm::A256Kw, &[0; 32]),
                ErrorKind::PermissionDenied
            )),
            Denied::NotYetValid
        );
    } else {
        expect_kind(aes, ErrorKind::Unsupported);
    }
    expect_kind(
        store.create_key(
            "bad-window",
            KeySpec::P256,
            KeyAttributes {
                expires: Some(future - Duration::from_secs(7200)),
                not_before: Some(future),
                ..KeyAttributes::default()
            },
        ),
        ErrorKind::InvalidInput,
    );
}

pub fn decryption_failures_are_indistinguishable(store: &Store) {
    let caps = store.capabilities();
    let rsa = create(store, "ind-rsa", KeySpec::RSA_2048, &[KeyOp::Encrypt, KeyOp::Decrypt]);
    let aes = create_or_unsupported(store, "ind-aes", KeySpec::AES_256, &[KeyOp::WrapKey, KeyOp::UnwrapKey]);
    let alg = if caps.decrypt.contains(&EncryptionAlgorithm::RsaOaep256) {
        EncryptionAlgorithm::RsaOaep256
    } else {
        EncryptionAlgorithm::RsaOaep
    };
    let ct = rsa.encrypt(alg, MSG).unwrap();
    let mut corrupted = ct.clone();
    corrupted[100] ^= 1;
    let mut errors = vec![
        rsa.decrypt(alg, &corrupted).unwrap_err(),
        rsa.decrypt(alg, &ct[..255]).unwrap_err(),
        rsa.decrypt(alg, &[0xff; 256]).unwrap_err(),
        rsa.decrypt(alg, &[]).unwrap_err(),
    ];
    if let Some(aes) = aes.filter(|_| caps.wrap.contains(&KeyWrapAlgorithm::A256Kw)) {
        let wrapped = aes.wrap_key(KeyWrapAlgorithm::A256Kw, &[9; 32]).unwrap();
        let mut bad_wrap = wrapped.clone();
        bad_wrap[0] ^= 1;
        errors.push(aes.unwrap_key(KeyWrapAlgorithm::A256Kw, &bad_wrap).unwrap_err());
        errors.push(aes.unwrap_key(KeyWrapAlgorithm::A256Kw, &wrapped[..16]).unwrap_err());
    }
    if caps.oaep_label && caps.decrypt.contains(&alg) {
        errors.push(rsa.decrypt_with_label(alg, &ct, b"wrong label").unwrap_err());
    }
    for e in &errors {
        assert_eq!(*e, Error::DecryptionFailed, "every failure is the one error");
        assert_eq!(e.to_string(), "decryption failed");
    }
}

fn signing_algs(spec: KeySpec) -> SignatureAlgorithm {
    match spec {
        KeySpec::Ec(hsmkit::EcCurve::P384) => SignatureAlgorithm::Es384,
        KeySpec::Ec(hsmkit::EcCurve::P521) => SignatureAlgorithm::Es512,
        KeySpec::Ec(hsmkit::EcCurve::P256K) => SignatureAlgorithm::Es256k,
        KeySpec::Ec(_) => SignatureAlgorithm::Es256,
        KeySpec::Ed25519 => SignatureAlgorithm::EdDsa,
        _ => SignatureAlgorithm::Rs256,
    }
}

pub fn public_key_export_import_round_trips(store: &Store) {
    for spec in
        [KeySpec::RSA_2048, KeySpec::P256, KeySpec::P384, KeySpec::P521, KeySpec::P256K, KeySpec::ED25519]
    {
        let alg = signing_algs(spec);
        let Some(key) = create_or_unsupported(
            store,
            &format!("pub-{}", spec.to_string().to_lowercase()),
            spec,
            &[KeyOp::Sign, KeyOp::Verify],
        ) else {
            continue;
        };
        let sig = key.sign(alg, MSG).unwrap();
        let der = key.public_key_der().unwrap();
        let pem = key.public_key_pem().unwrap();
        let jwk = key.public_key_jwk().unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(jwk["kid"], format!("{}/1", key.name()));
        let kty = match spec {
            KeySpec::Rsa { .. } => "RSA",
            KeySpec::Ed25519 => "OKP",
            _ => "EC",
        };
        assert_eq!(jwk["kty"], kty);
        for (i, material) in [
            KeyMaterial::from_der(&der).unwrap(),
            KeyMaterial::from_pem(&pem).unwrap(),
            KeyMaterial::from_jwk(&jwk).unwrap(),
            KeyMaterial::from_bytes(pem.as_bytes()).unwrap(),
        ]
        .into_iter()
        .enumerate()
        {
            assert!(material.is_public_only());
            let name = format!("{}-imp{i}", key.name());
            let Some(imported) = import_or_unsupported(store, &name, material, KeyAttributes::default())
            else {
                continue;
            };
            assert_eq!(imported.spec(), spec);
            assert!(!imported.info().has_private);
            imported.verify(alg, MSG, &sig).unwrap();
            expect_kind(imported.verify(alg, b"x", &sig), ErrorKind::VerificationFailed);
            assert_eq!(imported.public_key_der().unwrap(), der);
            let mut j = imported.public_key_jwk().unwrap();
            j["kid"] = jwk["kid"].clone();
            assert_eq!(j, jwk);
        }
        assert_eq!(key.jwk_thumbprint().unwrap().len(), 43);
    }
}

pub fn private_key_import_round_trips(store: &Store) {
    let caps = store.capabilities();
    let soft = hsmkit::Store::new(hsmkit_soft::SoftBackend::new());
    for spec in
        [KeySpec::RSA_2048, KeySpec::P256, KeySpec::P384, KeySpec::P521, KeySpec::P256K, KeySpec::ED25519]
    {
        let alg = signing_algs(spec);
        // Made exportable in a software store, so its PKCS#8 and JWK forms are known.
        let source = soft
            .create_key("src", spec, KeyAttributes { exportable: true, ..KeyAttributes::default() })
            .unwrap();
        let material = source.export().unwrap();
        let pkcs8 = material.to_pkcs8_der().unwrap();
        let pem = material.to_pkcs8_pem().unwrap();
        for (i, m) in [KeyMaterial::from_der(&pkcs8).unwrap(), KeyMaterial::from_pem(&pem).unwrap()]
            .into_iter()
            .enumerate()
        {
            let name = format!("priv-{}-{i}", spec.to_string().to_lowercase());
            let r = store.import_key(&name, m, KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify]));
            if !caps.import {
                expect_kind(r, ErrorKind::Unsupported);
                continue;
            }
            let imported = r.unwrap();
            assert!(imported.info().has_private);
            assert_eq!(imported.public_key().unwrap(), source.public_key().unwrap());
            let sig = imported.sign(alg, MSG).unwrap();
            source.verify(alg, MSG, &sig).unwrap();
        }
        soft.destroy_key("src").unwrap();
    }
    // An RSA JWK without the optional CRT members imports, and (where export exists) the
    // exported PKCS#8 is complete: it loads and signs like the original.
    if caps.import {
        let src = soft
            .create_key(
                "crt",
                KeySpec::RSA_2048,
                KeyAttributes { exportable: true, ..KeyAttributes::default() },
            )
            .unwrap();
        let KeyMaterial::RsaPrivate(k) = src.export().unwrap() else { panic!("RSA material") };
        let jwk = serde_json::json!({"kty": "RSA", "n": base64url(&k.n), "e": base64url(&k.e),
            "d": base64url(&k.d), "p": base64url(&k.p), "q": base64url(&k.q)});
        let attrs = KeyAttributes {
            exportable: caps.export,
            ..KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify])
        };
        let imported = store.import_key("from-jwk", KeyMaterial::from_jwk(&jwk).unwrap(), attrs).unwrap();
        let sig = imported.sign(SignatureAlgorithm::Rs256, MSG).unwrap();
        src.verify(SignatureAlgorithm::Rs256, MSG, &sig).unwrap();
        if caps.export {
            let KeyMaterial::RsaPrivate(e) = imported.export().unwrap() else { panic!("RSA material") };
            assert_eq!((&e.dp, &e.dq, &e.qinv), (&k.dp, &k.dq, &k.qinv), "CRT values restored");
        }
    }
    // A private key whose embedded public point is not its own is rejected.
    let a = soft
        .create_key("a", KeySpec::P256, KeyAttributes { exportable: true, ..KeyAttributes::default() })
        .unwrap();
    let b = soft.create_key("b", KeySpec::P256, KeyAttributes::default()).unwrap();
    let KeyMaterial::EcPrivate(mut ec) = a.export().unwrap() else { panic!("EC material") };
    let hsmkit::PublicKey::Ec(bp) = b.public_key().unwrap() else { panic!("EC public") };
    ec.public_point = Some(bp.point().to_vec());
    expect_kind(
        store.import_key("mismatch", KeyMaterial::EcPrivate(ec), KeyAttributes::default()),
        invalid_import(store),
    );
}

/// HMAC keys: never exportable; imported from a JWK `oct` key with sign/verify `key_ops`
/// (an `oct` key without them is AES); the same key gives the same MAC as the software
/// store, and a tag of another key or message does not verify.
pub fn hmac_keys(store: &Store) {
    let caps = store.capabilities();
    expect_kind(
        store.create_key(
            "hmac-exp",
            KeySpec::HMAC_256,
            KeyAttributes { exportable: true, ..KeyAttributes::default() },
        ),
        ErrorKind::InvalidInput,
    );
    let raw: Vec<u8> = (7u8..55).collect(); // 384 bits
    let jwk = serde_json::json!({"kty": "oct", "k": base64url(&raw), "key_ops": ["sign", "verify"]});
    let material = KeyMaterial::from_jwk(&jwk).unwrap();
    assert_eq!(material.spec().unwrap(), KeySpec::HMAC_384);
    let aes = serde_json::json!({"kty": "oct", "k": base64url(&raw[..32])});
    assert_eq!(KeyMaterial::from_jwk(&aes).unwrap().spec().unwrap(), KeySpec::AES_256);
    let Some(key) = import_or_unsupported(store, "hmac-jwk", material.clone(), KeyAttributes::default())
    else {
        return;
    };
    assert_eq!(key.spec(), KeySpec::HMAC_384);
    expect_kind(key.public_key(), ErrorKind::Unsupported);
    let e = expect_kind(key.export(), ErrorKind::PermissionDenied);
    assert_eq!(denied(e), Denied::NotExportable);
    let soft = hsmkit::Store::new(hsmkit_soft::SoftBackend::new());
    let reference = soft.import_key("ref", material, KeyAttributes::default()).unwrap();
    for alg in [SignatureAlgorithm::Hs256, SignatureAlgorithm::Hs384] {
        let r = key.sign(alg, MSG);
        if !caps.sign.contains(&alg) {
            expect_kind(r, ErrorKind::Unsupported);
            continue;
        }
        let tag = r.unwrap();
        assert_eq!(tag, reference.sign(alg, MSG).unwrap(), "{alg}: the software store's MAC");
        key.verify(alg, MSG, &tag).unwrap();
        expect_kind(key.verify(alg, b"another message", &tag), ErrorKind::VerificationFailed);
        expect_kind(key.verify(alg, MSG, &tag[..tag.len() - 1]), ErrorKind::VerificationFailed);
    }
    // HS512 needs a key as long as its hash (RFC 7518 section 3.2).
    expect_kind(key.sign(SignatureAlgorithm::Hs512, MSG), ErrorKind::InvalidInput);
}

pub fn aes_key_import(store: &Store) {
    let raw: Vec<u8> = (100u8..132).collect();
    expect_kind(KeyMaterial::aes(&raw[..20]), ErrorKind::InvalidInput);
    let Some(k1) =
        import_or_unsupported(store, "aes-imp", KeyMaterial::aes(&raw).unwrap(), KeyAttributes::default())
    else {
        return;
    };
    assert_eq!(k1.spec(), KeySpec::AES_256);
    let jwk = serde_json::json!({"kty": "oct", "k": base64url(&raw)});
    let k2 =
        store.import_key("aes-jwk", KeyMaterial::from_jwk(&jwk).unwrap(), KeyAttributes::default()).unwrap();
    let w = k1.wrap_key(KeyWrapAlgorithm::A256Kw, &[5; 32]).unwrap();
    assert_eq!(&k2.unwrap_key(KeyWrapAlgorithm::A256Kw, &w).unwrap()[..], &[5; 32]);
    // RFC 3394 section 4.6 known answer: 256-bit KEK, 256-bit key data.
    let kek = hex::decode("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F").unwrap();
    let data = hex::decode("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F").unwrap();
    let k3 = store.import_key("rfc3394", KeyMaterial::aes(&kek).unwrap(), KeyAttributes::default()).unwrap();
    assert_eq!(
        hex::encode_upper(k3.wrap_key(KeyWrapAlgorithm::A256Kw, &data).unwrap()),
        "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"
    );
    expect_kind(KeyMaterial::aes(&raw[..20]), ErrorKind::InvalidInput);
}

fn base64url(b: &[u8]) -> String {
    use base64ct::Encoding;
    base64ct::Base64UrlUnpadded::encode_string(b)
}

pub fn public_only_key_refuses_private_operations(store: &Store) {
    let key = create(store, "po-src", KeySpec::RSA_2048, &[KeyOp::Sign, KeyOp::Decrypt, KeyOp::Encrypt]);
    let public = KeyMaterial::from_der(&key.public_key_der().unwrap()).unwrap();
    let Some(imported) = import_or_unsupported(store, "po", public, KeyAttributes::with_ops(CRYPT_OPS))
    else {
        return;
    };
    // Private operations are dropped from a public key's allowed set at import.
    let ops = imported.info().attributes.allowed();
    assert!(!ops.contains(KeyOp::Sign) && ops.contains(KeyOp::Verify) && ops.contains(KeyOp::Encrypt));
    expect_kind(imported.sign(SignatureAlgorithm::Rs256, MSG), ErrorKind::PermissionDenied);
    let ct = imported.encrypt(EncryptionAlgorithm::RsaOaep, MSG).unwrap();
    assert_eq!(&key.decrypt(EncryptionAlgorithm::RsaOaep, &ct).unwrap()[..], MSG);
}

pub fn non_exportable_key_refuses_export(store: &Store) {
    let key = store.create_key("noexp", KeySpec::P256, KeyAttributes::default()).unwrap();
    let e = expect_kind(key.export(), ErrorKind::PermissionDenied);
    assert_eq!(denied(e), Denied::NotExportable);
}

pub fn names_list_get_destroy(store: &Store) {
    assert!(store.list_keys().unwrap().is_empty(), "a fresh store is empty");
    for bad in ["", ".hidden", "a/b", "a b", "ключ", &"x".repeat(128)] {
        expect_kind(store.create_key(bad, KeySpec::P256, KeyAttributes::default()), ErrorKind::InvalidInput);
    }
    store.create_key("b-key", KeySpec::P256, KeyAttributes::default()).unwrap();
    // An AES key where the backend makes them (tpm2-pkcs11 does not).
    let second = if store.capabilities().generate.contains(&KeySpec::AES_128) {
        KeySpec::AES_128
    } else {
        KeySpec::P384
    };
    store.create_key("a-key", second, KeyAttributes::default()).unwrap();
    expect_kind(store.create_key("a-key", KeySpec::P256, KeyAttributes::default()), ErrorKind::AlreadyExists);
    let names: Vec<_> = store.list_keys().unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(names, ["a-key", "b-key"]);
    expect_kind(store.get_key("nope"), ErrorKind::NotFound);
    store.destroy_key("a-key").unwrap();
    expect_kind(store.get_key("a-key"), ErrorKind::NotFound);
    expect_kind(store.destroy_key("a-key"), ErrorKind::NotFound);
    assert_eq!(store.list_keys().unwrap().len(), 1);
    // The name is free again.
    store.create_key("a-key", KeySpec::P256, KeyAttributes::default()).unwrap();
}

pub fn bad_input_is_typed_error(store: &Store) {
    expect_kind(
        store.create_key("r", KeySpec::Rsa { bits: 1024 }, KeyAttributes::default()),
        ErrorKind::InvalidInput,
    );
    for garbage in [
        &b""[..],
        b"\x30\x03\x02\x01\x01",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        b"{\"kty\":\"RSA\"}",
        &[0xffu8; 300],
    ] {
        assert!(KeyMaterial::from_bytes(garbage).is_err());
    }
    expect_kind(
        KeyMaterial::from_jwk_str("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}"),
        ErrorKind::InvalidInput,
    );
    expect_kind(
        KeyMaterial::from_jwk_str("{\"kty\":\"OKP\",\"crv\":\"X448\",\"x\":\"AA\"}"),
        ErrorKind::Unsupported,
    );
    expect_kind(
        KeyMaterial::from_jwk_str("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA\"}"),
        ErrorKind::InvalidInput,
    );
    expect_kind(
        KeyMaterial::from_jwk_str("{\"kty\":\"oct\",\"k\":\"AAAA\",\"key_ops\":[\"sign\"]}"),
        ErrorKind::InvalidInput,
    );
    expect_kind(KeyMaterial::from_jwk_str("{\"kty\":\"LWE\"}"), ErrorKind::Unsupported);
    // A point not on the curve is rejected at import.
    let mut point = vec![4u8];
    point.extend([1u8; 64]);
    let off_curve = KeyMaterial::Public(hsmkit::PublicKey::Ec(
        hsmkit::EcPublicKey::new(hsmkit::EcCurve::P256, &point).unwrap(),
    ));
    expect_kind(store.import_key("off", off_curve, KeyAttributes::default()), invalid_import(store));
    assert!("RS999".parse::<SignatureAlgorithm>().is_err());
    assert_eq!("ps256".parse::<SignatureAlgorithm>().unwrap(), SignatureAlgorithm::Ps256);
    assert_eq!("RSA-OAEP-256".parse::<hsmkit::Algorithm>().unwrap().to_string(), "RSA-OAEP-256");
    assert_eq!("A256KWP".parse::<KeyWrapAlgorithm>().unwrap(), KeyWrapAlgorithm::A256Kwp);
}
