//! Probes, templates and wrapping on SoftHSM2: what the token is given and what it makes,
//! and the KEK attack of the Clulow family (a KEK without wrap templates exports other
//! applications' sensitive keys to anyone with the PIN).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use hsmkit::{ErrorKind, KeyAttributes, KeyOp, KeySpec, KeyWrapAlgorithm as W};
use hsmkit_pkcs11::cryptoki::mechanism::Mechanism;
use hsmkit_pkcs11::cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use hsmkit_pkcs11::cryptoki::session::Session;
use hsmkit_pkcs11::testing::SoftHsmToken;

fn objects(s: &Session, class: ObjectClass, label: &str) -> Vec<ObjectHandle> {
    s.find_objects(&[Attribute::Class(class), Attribute::Label(label.as_bytes().to_vec())]).unwrap()
}

fn flag(s: &Session, h: ObjectHandle, t: AttributeType) -> Option<bool> {
    s.get_attributes(h, &[t]).ok()?.into_iter().find_map(|a| match a {
        Attribute::Sensitive(b)
        | Attribute::Extractable(b)
        | Attribute::Encrypt(b)
        | Attribute::Decrypt(b)
        | Attribute::Wrap(b)
        | Attribute::Unwrap(b)
        | Attribute::Token(b) => Some(b),
        _ => None,
    })
}

/// Item 6 (Clulow): with the PIN, a raw session takes hsmkit's AES KEK and tries to
/// export another application's extractable-but-sensitive token key through it. The
/// KEK's wrap template refuses it; its unwrap template refuses persistent copies. hsmkit's
/// own wrapping and unwrapping still work.
#[test]
fn kek_cannot_export_a_sensitive_key() {
    let t = SoftHsmToken::new().unwrap();
    let store = t.store().unwrap();
    let kek = store
        .create_key("kek", KeySpec::AES_256, KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]))
        .unwrap();
    let s = t.raw_session().unwrap();
    let victim = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Label(b"victim".to_vec()),
            Attribute::Sensitive(true),
            Attribute::Extractable(true),
            Attribute::Value(vec![0x5a; 32]),
        ])
        .unwrap();
    let kek_h = objects(&s, ObjectClass::SECRET_KEY, "kek");
    assert_eq!(kek_h.len(), 1);
    let kek_h = kek_h[0];
    for mech in [Mechanism::AesKeyWrap, Mechanism::AesKeyWrapPad] {
        let r = s.wrap_key(&mech, kek_h, victim);
        assert!(r.is_err(), "the KEK wrapped a sensitive token key with {mech:?}: {r:?}");
    }
    // Nothing wrapped, so nothing to unwrap readable. (No unwrap template: a blob under
    // the KEK holds a key that was readable before it was wrapped, and hsmkit's own unwrap
    // returns it by design; see generate::kek_templates.)
    let blob = kek.wrap_key(W::A256Kw, &[0x11; 32]).unwrap();
    // hsmkit's own use is unaffected.
    assert_eq!(&kek.unwrap_key(W::A256Kw, &blob).unwrap()[..], &[0x11; 32]);
    // The victim is still what it was.
    assert_eq!(flag(&s, victim, AttributeType::Sensitive), Some(true));
}

/// Item 5: an RSA key whose private object may decrypt but not unwrap (as the
/// "wrap-only RSA keys" fallback makes on tokens that refuse CKA_UNWRAP) still unwraps
/// RSA-OAEP, through `C_Decrypt`; a bad ciphertext is still the one opaque error.
#[test]
fn rsa_oaep_unwrap_falls_back_to_decrypt() {
    let t = SoftHsmToken::new().unwrap();
    let store = t.store().unwrap();
    let key = store
        .create_key("rsa", KeySpec::RSA_2048, KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]))
        .unwrap();
    let s = t.raw_session().unwrap();
    let private = objects(&s, ObjectClass::PRIVATE_KEY, "rsa")[0];
    s.update_attributes(private, &[Attribute::Unwrap(false), Attribute::Decrypt(true)]).unwrap();
    let dek = [0x42u8; 32];
    let wrapped = key.wrap_key(W::RsaOaep, &dek).unwrap();
    // A fresh store: no cached handle or state from before the change.
    let key = t.store().unwrap().get_key("rsa").unwrap();
    assert_eq!(&key.unwrap_key(W::RsaOaep, &wrapped).unwrap()[..], &dek);
    let mut bad = wrapped.clone();
    bad[10] ^= 1;
    assert_eq!(key.unwrap_key(W::RsaOaep, &bad).unwrap_err().kind(), ErrorKind::DecryptionFailed);
}

/// Item 4: key objects carry only the attributes that apply, and what the token made is
/// what hsmkit asked for: sensitive, not extractable, no derive, no unasked usage.
#[test]
fn created_objects_have_only_the_asked_usage() {
    let t = SoftHsmToken::new().unwrap();
    let store = t.store().unwrap();
    store.create_key("ec", KeySpec::P256, KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify])).unwrap();
    store
        .create_key("aes", KeySpec::AES_256, KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]))
        .unwrap();
    store
        .create_key("rsa", KeySpec::RSA_2048, KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify]))
        .unwrap();
    let s = t.raw_session().unwrap();
    for (name, class) in [
        ("ec", ObjectClass::PRIVATE_KEY),
        ("aes", ObjectClass::SECRET_KEY),
        ("rsa", ObjectClass::PRIVATE_KEY),
    ] {
        let h = objects(&s, class, name)[0];
        assert_eq!(flag(&s, h, AttributeType::Sensitive), Some(true), "{name}");
        assert_eq!(flag(&s, h, AttributeType::Extractable), Some(false), "{name}");
    }
    let rsa = objects(&s, ObjectClass::PRIVATE_KEY, "rsa")[0];
    assert_eq!(flag(&s, rsa, AttributeType::Decrypt), Some(false));
    assert_eq!(flag(&s, rsa, AttributeType::Unwrap), Some(false));
    let aes = objects(&s, ObjectClass::SECRET_KEY, "aes")[0];
    assert_eq!(flag(&s, aes, AttributeType::Encrypt), Some(false));
    assert_eq!(flag(&s, aes, AttributeType::Wrap), Some(true));
}

/// Item 1: what the capabilities claim for OAEP works, and what they do not claim is a
/// typed Unsupported naming the mechanism, before the token is asked.
#[test]
fn oaep_capabilities_are_what_the_token_does() {
    let t = SoftHsmToken::new().unwrap();
    let store = t.store().unwrap();
    let caps = store.capabilities();
    let key = store
        .create_key("rsa", KeySpec::RSA_2048, KeyAttributes::with_ops(&[KeyOp::Encrypt, KeyOp::Decrypt]))
        .unwrap();
    for alg in hsmkit::EncryptionAlgorithm::ALL {
        for label in [&b""[..], b"label"] {
            let ct = key.encrypt_with_label(*alg, b"secret", label).unwrap();
            let claimed = caps.decrypt.contains(alg) && (label.is_empty() || caps.oaep_label);
            match key.decrypt_with_label(*alg, &ct, label) {
                Ok(pt) => assert!(claimed && &pt[..] == b"secret", "{alg} label={}", !label.is_empty()),
                Err(e) => {
                    assert!(!claimed, "{alg} claimed but failed: {e}");
                    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
                    assert!(e.to_string().contains("CKM_RSA_PKCS_OAEP"), "{e}");
                }
            }
        }
    }
}

/// SoftHSM2 2.6.1 has `CKM_EC_EDWARDS_KEY_PAIR_GEN`/`CKM_EDDSA`, `CKM_GENERIC_SECRET_KEY_GEN`
/// with `CKM_SHA256_HMAC`/384/512, and secp256k1 keys: the probe finds each (so the
/// conformance suite runs them on the token rather than asserting Unsupported), and what
/// the token made is the object hsmkit asked for.
#[test]
fn softhsm_offers_ed25519_hmac_and_secp256k1() {
    use hsmkit::SignatureAlgorithm as A;
    let t = SoftHsmToken::new().unwrap();
    let store = t.store().unwrap();
    let caps = store.capabilities();
    for spec in [KeySpec::ED25519, KeySpec::P256K, KeySpec::HMAC_256, KeySpec::HMAC_384, KeySpec::HMAC_512] {
        assert!(caps.generate.contains(&spec), "{spec} not in {:?}", caps.generate);
    }
    for alg in [A::EdDsa, A::Es256k, A::Hs256, A::Hs384, A::Hs512] {
        assert!(caps.sign.contains(&alg), "{alg} not in {:?}", caps.sign);
    }
    let ed = store.create_key("ed", KeySpec::ED25519, KeyAttributes::default()).unwrap();
    let mac = store.create_key("mac", KeySpec::HMAC_512, KeyAttributes::default()).unwrap();
    let s = t.raw_session().unwrap();
    let ed_private = objects(&s, ObjectClass::PRIVATE_KEY, "ed");
    assert_eq!(ed_private.len(), 1);
    let kt = s.get_attributes(ed_private[0], &[AttributeType::KeyType]).unwrap();
    assert_eq!(kt, vec![Attribute::KeyType(KeyType::EC_EDWARDS)]);
    let secret = objects(&s, ObjectClass::SECRET_KEY, "mac");
    assert_eq!(secret.len(), 1);
    let got = s.get_attributes(secret[0], &[AttributeType::KeyType, AttributeType::ValueLen]).unwrap();
    assert!(got.contains(&Attribute::KeyType(KeyType::GENERIC_SECRET)), "{got:?}");
    assert!(got.contains(&Attribute::ValueLen(64u64.into())), "{got:?}");
    // The secret never reads out: sensitive and not extractable.
    assert_eq!(flag(&s, secret[0], AttributeType::Sensitive), Some(true));
    assert_eq!(flag(&s, secret[0], AttributeType::Extractable), Some(false));
    // A MAC is checked on the token: a changed tag fails there.
    let mut tag = mac.sign(A::Hs512, b"m").unwrap();
    mac.verify(A::Hs512, b"m", &tag).unwrap();
    tag[0] ^= 1;
    assert_eq!(mac.verify(A::Hs512, b"m", &tag).unwrap_err().kind(), ErrorKind::VerificationFailed);
    ed.verify(A::EdDsa, b"m", &ed.sign(A::EdDsa, b"m").unwrap()).unwrap();
}
