//! Fault injection: hsmkit on a PKCS#11 shim (tests/pkcs11-shim/shim.c) that forwards to
//! SoftHSM2 and returns chosen CKR_* codes, or waits, on chosen calls. hsmkit must recover
//! where a fresh session or login can help (once), and otherwise give the right typed
//! error: never a panic, never a wrong answer, never a half-made key. The shim's call
//! counts also show the hot path: no object search, login or session opening per
//! operation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::cell::Cell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use hsmkit::envelope::Sealer;
use hsmkit::{
    EncryptionAlgorithm, Error, ErrorKind, KeyAttributes, KeyOp, KeySpec, KeyWrapAlgorithm,
    SignatureAlgorithm as S, Store,
};
use hsmkit_pkcs11::Pkcs11Backend;
use hsmkit_pkcs11::testing::{SoftHsmToken, USER_PIN};

const CKR_DEVICE_ERROR: &str = "0x30";
const CKR_DEVICE_REMOVED: &str = "0x32";
const CKR_PIN_LOCKED: &str = "0xa4";
const CKR_SESSION_HANDLE_INVALID: &str = "0xb3";
const CKR_TOKEN_NOT_PRESENT: &str = "0xe0";
const CKR_USER_NOT_LOGGED_IN: &str = "0x101";

struct Rig {
    _token: SoftHsmToken,
    _dir: tempfile::TempDir,
    config: PathBuf,
    generation: Cell<u32>,
    store: Store,
}

impl Rig {
    /// A fresh SoftHSM2 token, a shim built for it, and a store on the shim.
    fn new() -> Self {
        let token = SoftHsmToken::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("faults");
        std::fs::write(&config, "gen 0\n").unwrap();
        let shim = dir.path().join("shim.so");
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/pkcs11-shim/shim.c");
        let cflags = Command::new("pkg-config").args(["--cflags", "p11-kit-1"]).output().unwrap();
        assert!(cflags.status.success(), "pkg-config p11-kit-1 (apt-get install libp11-kit-dev)");
        let out = Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror"])
            .arg(format!("-DSHIM_TARGET=\"{}\"", token.module().display()))
            .arg(format!("-DSHIM_CONFIG=\"{}\"", config.display()))
            .args(String::from_utf8(cflags.stdout).unwrap().split_whitespace())
            .arg(&src)
            .arg("-o")
            .arg(&shim)
            .args(["-ldl", "-lpthread"])
            .output()
            .unwrap();
        assert!(out.status.success(), "building the shim: {}", String::from_utf8_lossy(&out.stderr));
        let uri =
            format!("pkcs11:token={}?module-path={}&pin-value={USER_PIN}", token.label(), shim.display());
        let store = Store::new(Pkcs11Backend::open(&uri).unwrap());
        Rig { _token: token, _dir: dir, config, generation: Cell::new(0), store }
    }

    /// Replaces the fault rules (`FUNCTION ACTION COUNT` lines) and zeroes the counts.
    fn inject(&self, rules: &[(&str, &str, u32)]) {
        self.generation.set(self.generation.get() + 1);
        let mut text = format!("gen {}\n", self.generation.get());
        for (f, action, count) in rules {
            text.push_str(&format!("{f} {action} {count}\n"));
        }
        std::fs::write(&self.config, text).unwrap();
    }

    /// Calls per function since the last [`Rig::inject`] (functions the shim watches).
    fn counts(&self) -> HashMap<String, u64> {
        let path = self.config.with_extension("counts");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(f, n)| (f.to_owned(), n.parse().unwrap()))
            .collect()
    }

    fn count(&self, f: &str) -> u64 {
        self.counts().get(f).copied().unwrap_or(0)
    }
}

fn backend_code(e: &Error) -> String {
    match e {
        Error::Backend(b) => format!("{} in {}", b.message, b.function),
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[test]
fn hot_path_has_no_lookup_login_or_session_per_operation() {
    let rig = Rig::new();
    let ec = rig.store.create_key("ec", KeySpec::P256, KeyAttributes::default()).unwrap();
    let rsa = rig.store.create_key("rsa", KeySpec::Rsa { bits: 2048 }, KeyAttributes::default()).unwrap();
    let ct = rsa.encrypt(EncryptionAlgorithm::RsaOaep, b"secret").unwrap();
    ec.sign(S::Es256, b"warm").unwrap();
    rig.inject(&[]);
    for i in 0..20u8 {
        let sig = ec.sign(S::Es256, &[i]).unwrap();
        ec.verify(S::Es256, &[i], &sig).unwrap();
        assert_eq!(&rsa.decrypt(EncryptionAlgorithm::RsaOaep, &ct).unwrap()[..], b"secret");
    }
    let c = rig.counts();
    assert_eq!(c.get("C_SignInit"), Some(&20), "{c:?}");
    assert_eq!(c.get("C_DecryptInit"), Some(&20), "{c:?}");
    for f in ["C_FindObjectsInit", "C_Login", "C_OpenSession", "C_GetAttributeValue"] {
        assert_eq!(c.get(f), None, "{f} on the hot path: {c:?}");
    }
    // Verification uses the public key hsmkit holds: no token call at all.
    assert_eq!(c.get("C_VerifyInit"), None);
}

/// SECURITY.md: data keys being wrapped or unwrapped pass through the token as session
/// objects destroyed at once: every object a wrap or unwrap creates is destroyed.
#[test]
fn wrap_and_unwrap_leave_no_data_key_object_behind() {
    let rig = Rig::new();
    let kek = rig.store.create_key("kek", KeySpec::AES_256, KeyAttributes::default()).unwrap();
    let wrapped = kek.wrap_key(KeyWrapAlgorithm::A256Kw, &[9u8; 32]).unwrap();
    rig.inject(&[]);
    for _ in 0..10 {
        assert_eq!(kek.wrap_key(KeyWrapAlgorithm::A256Kw, &[9u8; 32]).unwrap(), wrapped);
        assert_eq!(&kek.unwrap_key(KeyWrapAlgorithm::A256Kw, &wrapped).unwrap()[..], &[9u8; 32]);
    }
    let c = rig.counts();
    let made =
        ["C_CreateObject", "C_UnwrapKey", "C_GenerateKey"].iter().filter_map(|f| c.get(*f)).sum::<u64>();
    assert_eq!(made, 20, "one data-key object per wrap and per unwrap: {c:?}");
    assert_eq!(c.get("C_DestroyObject"), Some(&made), "{c:?}");
}

#[test]
fn lost_session_is_reopened_and_retried_once() {
    let rig = Rig::new();
    let key = rig.store.create_key("k", KeySpec::P256, KeyAttributes::default()).unwrap();
    rig.inject(&[("C_Sign", CKR_SESSION_HANDLE_INVALID, 1)]);
    let sig = key.sign(S::Es256, b"m").unwrap();
    key.verify(S::Es256, b"m", &sig).unwrap();
    assert_eq!(rig.count("C_SignInit"), 2, "one retry");
    assert!(rig.count("C_OpenSession") >= 1, "a fresh session for the retry");

    // Lost every time: one retry, then the typed error naming the code.
    rig.inject(&[("C_Sign", CKR_SESSION_HANDLE_INVALID, 0)]);
    let e = key.sign(S::Es256, b"m").unwrap_err();
    assert!(backend_code(&e).contains("CKR_SESSION_HANDLE_INVALID"), "{e}");
    assert_eq!(rig.count("C_SignInit"), 2);
    rig.inject(&[]);
    key.sign(S::Es256, b"m").unwrap();
}

#[test]
fn lost_login_is_restored() {
    let rig = Rig::new();
    let key = rig.store.create_key("k", KeySpec::Rsa { bits: 2048 }, KeyAttributes::default()).unwrap();
    let ct = key.encrypt(EncryptionAlgorithm::RsaOaep, b"pt").unwrap();
    rig.inject(&[("C_DecryptInit", CKR_USER_NOT_LOGGED_IN, 1)]);
    assert_eq!(&key.decrypt(EncryptionAlgorithm::RsaOaep, &ct).unwrap()[..], b"pt");
    assert!(rig.count("C_Login") >= 1, "logged in again");
}

#[test]
fn device_removed_is_retried_once_then_reported() {
    let rig = Rig::new();
    let key = rig.store.create_key("k", KeySpec::P256, KeyAttributes::default()).unwrap();
    rig.inject(&[("C_Sign", CKR_DEVICE_REMOVED, 1)]);
    let sig = key.sign(S::Es256, b"m").unwrap();
    key.verify(S::Es256, b"m", &sig).unwrap();

    rig.inject(&[("C_Sign", CKR_DEVICE_REMOVED, 0)]);
    let e = key.sign(S::Es256, b"m").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend);
    assert!(backend_code(&e).contains("CKR_DEVICE_REMOVED"), "{e}");
    assert_eq!(rig.count("C_SignInit"), 2, "retried once, not more");
}

#[test]
fn token_gone_is_a_typed_error_and_its_return_recovers() {
    let rig = Rig::new();
    let key = rig.store.create_key("k", KeySpec::P256, KeyAttributes::default()).unwrap();
    rig.inject(&[("C_SignInit", CKR_SESSION_HANDLE_INVALID, 0), ("C_OpenSession", CKR_TOKEN_NOT_PRESENT, 0)]);
    let e = key.sign(S::Es256, b"m").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend, "{e:?}");
    assert!(backend_code(&e).contains("CKR_TOKEN_NOT_PRESENT"), "{e}");
    let e = rig.store.create_key("k2", KeySpec::P256, KeyAttributes::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend, "{e:?}");
    // The token comes back.
    rig.inject(&[]);
    key.verify(S::Es256, b"m", &key.sign(S::Es256, b"m").unwrap()).unwrap();
    assert_eq!(rig.store.list_keys().unwrap().len(), 1, "the failed create left nothing");
}

#[test]
fn pin_locked_is_an_authentication_error() {
    let rig = Rig::new();
    let key = rig.store.create_key("k", KeySpec::P256, KeyAttributes::default()).unwrap();
    rig.inject(&[("C_SignInit", CKR_USER_NOT_LOGGED_IN, 0), ("C_Login", CKR_PIN_LOCKED, 0)]);
    let e = key.sign(S::Es256, b"m").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Authentication, "{e:?}");
    assert!(e.to_string().contains("CKR_PIN_LOCKED"), "{e}");
    assert!(!e.to_string().contains(USER_PIN), "no PIN in messages");
    rig.inject(&[]);
    key.sign(S::Es256, b"m").unwrap();
}

#[test]
fn device_error_is_reported_not_retried_and_never_a_crypto_answer() {
    let rig = Rig::new();
    let ops = KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify, KeyOp::Encrypt, KeyOp::Decrypt]);
    let rsa = rig.store.create_key("rsa", KeySpec::Rsa { bits: 2048 }, ops).unwrap();
    let kek = rig.store.create_key("kek", KeySpec::AES_256, KeyAttributes::default()).unwrap();
    let ct = rsa.encrypt(EncryptionAlgorithm::RsaOaep, b"pt").unwrap();
    let wrapped = kek.wrap_key(KeyWrapAlgorithm::A256Kw, &[7; 32]).unwrap();

    rig.inject(&[("C_Sign", CKR_DEVICE_ERROR, 1)]);
    let e = rsa.sign(S::Rs256, b"m").unwrap_err();
    assert!(backend_code(&e).contains("CKR_DEVICE_ERROR"), "{e}");
    assert_eq!(rig.count("C_SignInit"), 1, "a device error is not retried");
    rsa.verify(S::Rs256, b"m", &rsa.sign(S::Rs256, b"m").unwrap()).unwrap();

    // A device failure during decrypt/unwrap is a backend error, not DecryptionFailed:
    // the ciphertext is fine and the caller should not discard it.
    rig.inject(&[("C_Decrypt", CKR_DEVICE_ERROR, 1), ("C_UnwrapKey", CKR_DEVICE_ERROR, 1)]);
    assert_eq!(rsa.decrypt(EncryptionAlgorithm::RsaOaep, &ct).unwrap_err().kind(), ErrorKind::Backend);
    assert_eq!(kek.unwrap_key(KeyWrapAlgorithm::A256Kw, &wrapped).unwrap_err().kind(), ErrorKind::Backend);
    assert_eq!(&rsa.decrypt(EncryptionAlgorithm::RsaOaep, &ct).unwrap()[..], b"pt");
    assert_eq!(&kek.unwrap_key(KeyWrapAlgorithm::A256Kw, &wrapped).unwrap()[..], &[7; 32]);
}

#[test]
fn failed_creation_leaves_no_key_behind() {
    let rig = Rig::new();
    let mut hit = Vec::new();
    for (f, spec) in [
        ("C_GenerateKeyPair", KeySpec::P256),
        ("C_GenerateKey", KeySpec::AES_128),
        ("C_CreateObject", KeySpec::P256),
        ("C_SetAttributeValue", KeySpec::AES_256),
    ] {
        rig.inject(&[(f, CKR_DEVICE_ERROR, 1)]);
        let e = rig.store.create_key("k", spec, KeyAttributes::default());
        if let Err(e) = &e {
            hit.push(f);
            assert_eq!(e.kind(), ErrorKind::Backend, "{f}: {e:?}");
            assert!(rig.store.list_keys().unwrap().is_empty(), "{f}: a half-made key is listed");
            assert_eq!(rig.store.get_key("k").unwrap_err().kind(), ErrorKind::NotFound, "{f}");
        }
        // With the fault gone (or never hit), the same name works and the key is whole.
        rig.inject(&[]);
        let key = match e {
            Ok(k) => k,
            Err(_) => rig.store.create_key("k", spec, KeyAttributes::default()).unwrap(),
        };
        assert_eq!(key.version(), 1, "{f}");
        rig.store.destroy_key("k").unwrap();
    }
    println!("creation failed cleanly at {hit:?}");
    assert!(
        hit.contains(&"C_GenerateKeyPair")
            && hit.contains(&"C_GenerateKey")
            && hit.contains(&"C_CreateObject")
    );
}

#[test]
fn slow_calls_give_the_right_answers() {
    let rig = Rig::new();
    let key = rig.store.create_key("k", KeySpec::P256, KeyAttributes::default()).unwrap();
    let kek = rig.store.create_key("kek", KeySpec::AES_256, KeyAttributes::default()).unwrap();
    rig.inject(&[("C_Sign", "delay:200", 4), ("C_UnwrapKey", "delay:200", 1)]);
    std::thread::scope(|s| {
        for t in 0..2u8 {
            let key = &key;
            s.spawn(move || {
                let sig = key.sign(S::Es256, &[t]).unwrap();
                key.verify(S::Es256, &[t], &sig).unwrap();
            });
        }
    });
    let env = Sealer::for_key(kek).unwrap().seal(b"slow but sure").unwrap();
    assert_eq!(&rig.store.opener().open(&env).unwrap()[..], b"slow but sure");
}

#[test]
fn envelope_open_survives_a_lost_session() {
    let rig = Rig::new();
    let kek = rig.store.create_key("kek", KeySpec::AES_256, KeyAttributes::default()).unwrap();
    let env = Sealer::for_key(kek).unwrap().seal(b"payload").unwrap();
    rig.inject(&[("C_UnwrapKey", CKR_SESSION_HANDLE_INVALID, 1)]);
    assert_eq!(&rig.store.opener().open(&env).unwrap()[..], b"payload");
    rig.inject(&[("C_UnwrapKey", CKR_DEVICE_ERROR, 1)]);
    assert_eq!(rig.store.opener().open(&env).unwrap_err().kind(), ErrorKind::Backend);
}
