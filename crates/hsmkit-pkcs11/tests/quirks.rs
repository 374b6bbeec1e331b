//! Portability: hsmkit on the PKCS#11 shim (tests/pkcs11-shim/shim.c) in its quirk modes,
//! each of which makes SoftHSM2 behave like some other real token. Each test is named for
//! what must hold on such a token. Every quirk test has its own shim build, so its own
//! module path and so its own probe (the probe is cached per module and token model).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod shim;

use hsmkit::{
    EncryptionAlgorithm, ErrorKind, KeyAttributes, KeyMaterial, KeyOp, KeySpec, KeyUpdate, KeyWrapAlgorithm,
    SignatureAlgorithm as S, Store,
};
use shim::Shim;

/// A store with one P-256 key "k", made before any quirk is on.
fn with_key() -> (Shim, Store) {
    let rig = Shim::new();
    let store = rig.store();
    store.create_key("k", KeySpec::P256, KeyAttributes::default()).unwrap();
    (rig, store)
}

/// data-not-persisted: the token answers CKR_OK to a CKA_VALUE write on a data object and
/// drops it. A lifecycle change hsmkit reports as done must be there for the next
/// process; otherwise the call must fail.
#[test]
fn lifecycle_change_that_did_not_persist_is_an_error() {
    let (rig, store) = with_key();
    rig.quirk(&["data-not-persisted"]);
    let mut wrong = Vec::new();

    let r = store.update_key("k", 1, &KeyUpdate::enabled(false));
    let enabled = rig.store().get_key("k").unwrap().info().attributes.enabled;
    match (&r, enabled) {
        (Ok(_), true) => wrong
            .push("update_key(enabled false) returned Ok, but a fresh store sees the key enabled".to_owned()),
        (Err(e), false) => wrong.push(format!("update_key failed ({e}) but the key was disabled anyway")),
        _ => {}
    }

    let r = store.delete_key("k");
    let fresh = rig.store();
    let deleted = fresh.list_deleted_keys().unwrap().iter().any(|d| d.name == "k");
    match (&r, deleted) {
        (Ok(_), false) => wrong
            .push("delete_key returned Ok, but a fresh store does not list the key as deleted".to_owned()),
        (Ok(_), true) if fresh.get_key("k").is_ok() => {
            wrong.push("a deleted key can still be got".to_owned())
        }
        (Err(e), true) => wrong.push(format!("delete_key failed ({e}) but the key was deleted anyway")),
        _ => {}
    }
    assert!(wrong.is_empty(), "on a token that drops CKA_VALUE writes:\n{}", wrong.join("\n"));
}

/// no-token-data: the token refuses CKO_DATA objects with CKA_TOKEN=TRUE, where hsmkit
/// keeps key metadata. Creating a key must work some other way, or fail with an error
/// that says why, and leave nothing behind.
#[test]
fn token_refusing_data_objects_gives_a_clear_error_or_uses_file_metadata() {
    let rig = Shim::new();
    rig.quirk(&["no-token-data"]);
    let store = rig.store();
    match store.create_key("k", KeySpec::P256, KeyAttributes::default()) {
        Ok(key) => {
            key.verify(S::Es256, b"m", &key.sign(S::Es256, b"m").unwrap()).unwrap();
            let fresh = rig.store();
            let again = fresh.get_key("k").unwrap();
            again.verify(S::Es256, b"m", &again.sign(S::Es256, b"m").unwrap()).unwrap();
        }
        Err(e) => {
            let text = e.to_string().to_lowercase();
            assert!(
                text.contains("data object") || text.contains("cko_data"),
                "the error does not say that the token refused a data object: {e}"
            );
            assert!(store.list_keys().unwrap().is_empty(), "a half-made key is listed");
            let s = rig.token.raw_session().unwrap();
            let left = s.find_objects(&[cryptoki::object::Attribute::Label(b"k".to_vec())]).unwrap();
            assert!(left.is_empty(), "{} key object(s) left on the token", left.len());
        }
    }
}

/// op-active-after-error: after a failed C_Decrypt the token keeps an operation active on
/// that session until it is closed. One bad ciphertext must not break later operations.
#[test]
fn failed_decrypt_does_not_poison_the_session_pool() {
    let rig = Shim::new();
    rig.quirk(&["op-active-after-error"]);
    let store = rig.store();
    let rsa = store.create_key("rsa", KeySpec::Rsa { bits: 2048 }, KeyAttributes::default()).unwrap();
    let ec = store.create_key("ec", KeySpec::P256, KeyAttributes::default()).unwrap();
    let ct = rsa.encrypt(EncryptionAlgorithm::RsaOaep, b"pt").unwrap();
    let e = rsa.decrypt(EncryptionAlgorithm::RsaOaep, &[0x5a; 256]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DecryptionFailed, "{e}");
    for i in 0..20u8 {
        let pt =
            rsa.decrypt(EncryptionAlgorithm::RsaOaep, &ct).unwrap_or_else(|e| panic!("decrypt {i}: {e}"));
        assert_eq!(&pt[..], b"pt");
        let sig = ec.sign(S::Es256, &[i]).unwrap_or_else(|e| panic!("sign {i}: {e}"));
        ec.verify(S::Es256, &[i], &sig).unwrap();
    }
}

/// bad-token-info: C_GetTokenInfo of our token reports a clock with a utcTime that is not
/// a time. Opening must either work, or fail saying which slot and why, not "not found".
#[test]
fn unreadable_token_info_names_slot_and_cause() {
    let rig = Shim::new();
    rig.quirk(&[&format!("bad-token-info {}", rig.token.label())]);
    match rig.open() {
        Ok(b) => {
            let store = Store::new(b);
            let k = store.create_key("k", KeySpec::P256, KeyAttributes::default()).unwrap();
            k.verify(S::Es256, b"m", &k.sign(S::Es256, b"m").unwrap()).unwrap();
        }
        Err(e) => {
            let text = e.to_string();
            assert_ne!(e.kind(), ErrorKind::NotFound, "{text}");
            assert!(text.to_lowercase().contains("slot"), "the error names no slot: {text}");
            assert!(
                text.contains("C_GetTokenInfo") || text.to_lowercase().contains("token info"),
                "the error does not say the token info could not be read: {text}"
            );
        }
    }
}

/// bad-token-info on another token in another slot must not hide ours.
#[test]
fn unreadable_token_info_of_another_token_does_not_hide_ours() {
    let rig = Shim::new();
    let other = hsmkit_pkcs11::testing::SoftHsmToken::new().unwrap();
    rig.quirk(&[&format!("bad-token-info {}", other.label())]);
    let store = Store::new(rig.open().unwrap());
    store.create_key("k", KeySpec::P256, KeyAttributes::default()).unwrap();
}

/// wrap-untruncated: C_WrapKey's length query answers more than the wrapped length. The
/// RFC 3394 known-answer test must still pass, and wrapping must give the standard bytes.
#[test]
fn untruncated_wrap_length_still_passes_the_kat() {
    let rig = Shim::new();
    rig.quirk(&["wrap-untruncated"]);
    let store = rig.store();
    let caps = store.capabilities();
    assert!(caps.wrap.contains(&KeyWrapAlgorithm::A256Kw), "A256KW not offered: wrap = {:?}", caps.wrap);
    let kek_bytes: Vec<u8> = (0u8..32).collect();
    let kek =
        store.import_key("kek", KeyMaterial::aes(&kek_bytes).unwrap(), KeyAttributes::default()).unwrap();
    let soft = Store::new(hsmkit_soft::SoftBackend::new());
    let soft_kek =
        soft.import_key("kek", KeyMaterial::aes(&kek_bytes).unwrap(), KeyAttributes::default()).unwrap();
    let wrapped = kek.wrap_key(KeyWrapAlgorithm::A256Kw, &[7; 32]).unwrap();
    assert_eq!(wrapped, soft_kek.wrap_key(KeyWrapAlgorithm::A256Kw, &[7; 32]).unwrap());
    assert_eq!(wrapped.len(), 40);
    assert_eq!(&kek.unwrap_key(KeyWrapAlgorithm::A256Kw, &wrapped).unwrap()[..], &[7; 32]);
}

/// strict-templates: the token refuses attributes that do not apply to the object (CKA_ENCRYPT
/// on an EC public key, ...) and RSA keys with CKA_WRAP/CKA_UNWRAP. Every spec must still
/// generate, and an RSA key for wrapKey/unwrapKey must work (through CKA_DECRYPT).
#[test]
fn strict_template_token_generates_every_spec() {
    let rig = Shim::new();
    rig.quirk(&["strict-templates"]);
    let store = rig.store();
    let mut failed = Vec::new();
    for (name, spec) in [
        ("p256", KeySpec::P256),
        ("p384", KeySpec::P384),
        ("rsa", KeySpec::Rsa { bits: 2048 }),
        ("aes", KeySpec::AES_256),
    ] {
        if let Err(e) = store.create_key(name, spec, KeyAttributes::default()) {
            failed.push(format!("{spec}: {e}"));
        }
    }
    let wrap_ops = KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]);
    match store.create_key("rsa-wrap", KeySpec::Rsa { bits: 2048 }, wrap_ops) {
        Err(e) => failed.push(format!("RSA key for wrapKey/unwrapKey: {e}")),
        Ok(key) => {
            let mut algs = vec![KeyWrapAlgorithm::RsaOaep];
            // SoftHSM2 2.6.1 does OAEP with SHA-1 only; RSA-OAEP-256 where the probe found it.
            if store.capabilities().unwrap.contains(&KeyWrapAlgorithm::RsaOaep256) {
                algs.push(KeyWrapAlgorithm::RsaOaep256);
            }
            for alg in algs {
                let r = key.wrap_key(alg, &[9; 32]).and_then(|w| key.unwrap_key(alg, &w));
                match r {
                    Ok(v) if v[..] == [9; 32] => {}
                    Ok(_) => failed.push(format!("{alg}: wrong key unwrapped")),
                    Err(e) => failed.push(format!("{alg} wrap + unwrap: {e}")),
                }
            }
        }
    }
    assert!(failed.is_empty(), "on a strict-template token:\n{}", failed.join("\n"));
}

/// no-rsa-unwrap: the token has no C_UnwrapKey with CKM_RSA_PKCS_OAEP, only C_Decrypt.
#[test]
fn rsa_oaep_unwrap_falls_back_to_c_decrypt() {
    let rig = Shim::new();
    rig.quirk(&["no-rsa-unwrap"]);
    let store = rig.store();
    let wrap_ops = KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]);
    let key = store.create_key("rsa-wrap", KeySpec::Rsa { bits: 2048 }, wrap_ops).unwrap();
    assert!(store.capabilities().unwrap.contains(&KeyWrapAlgorithm::RsaOaep));
    let wrapped = key.wrap_key(KeyWrapAlgorithm::RsaOaep, &[9; 32]).unwrap();
    let r = key.unwrap_key(KeyWrapAlgorithm::RsaOaep, &wrapped);
    assert_eq!(&r.unwrap_or_else(|e| panic!("RSA-OAEP unwrap: {e}"))[..], &[9; 32]);
}

/// no-session-objects: the token refuses objects with CKA_TOKEN=FALSE. The probe (which
/// makes throw-away keys) must still find what the token can do, and AES-KW wrapping
/// (which passes the data key as a short-lived object) must still work.
#[test]
fn probes_work_without_session_objects() {
    let plain = Shim::new().store().capabilities();
    // What SoftHSM2 2.6.1 really does (checked with pkcs11-tool): OAEP with SHA-1 only.
    assert!(plain.decrypt.contains(&EncryptionAlgorithm::RsaOaep), "{plain:?}");
    assert!(plain.wrap.contains(&KeyWrapAlgorithm::A256Kw), "{plain:?}");
    println!("SoftHSM2 without quirks: decrypt {:?}, unwrap {:?}", plain.decrypt, plain.unwrap);

    let rig = Shim::new();
    rig.quirk(&["no-session-objects"]);
    let store = rig.store();
    let caps = store.capabilities();
    assert_eq!(caps.decrypt, plain.decrypt, "decrypt algorithms differ without session objects");
    assert_eq!(caps.oaep_label, plain.oaep_label);
    assert_eq!(caps.wrap, plain.wrap, "wrap algorithms differ without session objects");
    assert_eq!(caps.unwrap, plain.unwrap, "unwrap algorithms differ without session objects");
    let kek = store.create_key("kek", KeySpec::AES_256, KeyAttributes::default()).unwrap();
    let wrapped =
        kek.wrap_key(KeyWrapAlgorithm::A256Kw, &[7; 32]).unwrap_or_else(|e| panic!("A256KW wrap: {e}"));
    assert_eq!(&kek.unwrap_key(KeyWrapAlgorithm::A256Kw, &wrapped).unwrap()[..], &[7; 32]);
}

/// Every key token object (private, public, secret), by handle. (Metadata data objects
/// are replaced, so get new handles, on every write; session objects go with their
/// session.)
fn all_objects(rig: &Shim) -> std::collections::BTreeSet<u64> {
    use cryptoki::object::{Attribute, ObjectClass};
    let s = rig.token.raw_session().unwrap();
    [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY, ObjectClass::SECRET_KEY]
        .into_iter()
        .flat_map(|c| s.find_objects(&[Attribute::Class(c), Attribute::Token(true)]).unwrap())
        .map(|h| h.handle())
        .collect()
}

/// reused-handle: C_GenerateKeyPair returns, for the new private key, the handle of
/// another private key already on the token (tpm2-pkcs11 1.9 after its lowest-numbered
/// object is destroyed). hsmkit must refuse the key with a typed error, and must neither
/// destroy nor take over the other key: it still signs, and no object that was on the
/// token is gone.
#[test]
fn a_create_handle_naming_another_object_is_refused_and_that_object_kept() {
    let (rig, store) = with_key();
    let before = all_objects(&rig);
    rig.quirk(&["reused-handle"]);
    let e = store.create_key("k2", KeySpec::P256, KeyAttributes::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    assert!(e.to_string().contains("reuses handles"), "the error does not say why: {e}");
    rig.quirk(&[]);

    let after = all_objects(&rig);
    let gone: Vec<_> = before.difference(&after).collect();
    assert!(gone.is_empty(), "objects destroyed by a failed create: {gone:?}");
    // The new private key is left (its handle was never known); its public one is not.
    assert_eq!(after.len(), before.len() + 1, "before {before:?}, after {after:?}");
    let fresh = rig.store();
    assert_eq!(fresh.list_keys().unwrap().iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["k"]);
    let k = fresh.get_key("k").unwrap();
    k.verify(S::Es256, b"m", &k.sign(S::Es256, b"m").unwrap()).unwrap();
    store.create_key("k2", KeySpec::P256, KeyAttributes::default()).unwrap();
}

/// key-held-after-error: a failed C_Decrypt keeps its key "in use" until C_DecryptFinal,
/// even after the session is closed, and C_DestroyObject of it fails (tpm2-pkcs11 1.9).
/// One bad ciphertext must not make the key impossible to destroy.
#[test]
fn a_failed_decrypt_does_not_keep_the_key_from_being_destroyed() {
    let rig = Shim::new();
    rig.quirk(&["key-held-after-error"]);
    let store = rig.store();
    let rsa = store.create_key("rsa", KeySpec::Rsa { bits: 2048 }, KeyAttributes::default()).unwrap();
    let e = rsa.decrypt(EncryptionAlgorithm::RsaOaep, &[0x5a; 256]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DecryptionFailed, "{e}");
    store.destroy_key("rsa").unwrap();
    let s = rig.token.raw_session().unwrap();
    let left = s.find_objects(&[cryptoki::object::Attribute::Label(b"rsa".to_vec())]).unwrap();
    assert!(left.is_empty(), "{} object(s) of the destroyed key left on the token", left.len());
}
