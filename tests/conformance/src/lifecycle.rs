//! Lifecycle checks every backend must pass: versions, rotation, updates, soft delete,
//! recover, purge, purge protection, rotation policy.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hsmkit::{
    Denied, EncryptionAlgorithm, Error, ErrorKind, KeyAttributes, KeyOp, KeyOps, KeySpec, KeyUpdate,
    KeyWrapAlgorithm, RotationPolicy, SignatureAlgorithm, Store, parse_iso_duration,
};

use crate::checks::{create, expect_kind};

const MSG: &[u8] = b"signed under version 1";
const DAY: u64 = 86_400;

/// A clock the test moves by hand, starting at the real time.
#[derive(Clone)]
pub struct TestClock(Arc<AtomicU64>);

impl TestClock {
    pub fn new() -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        TestClock(Arc::new(AtomicU64::new(now)))
    }
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0.load(Ordering::SeqCst))
    }
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    /// `store`, on this clock.
    pub fn store(&self, store: &Store) -> Store {
        let c = self.clone();
        store.clone().with_clock(move || c.now())
    }
}

impl Default for TestClock {
    fn default() -> Self {
        Self::new()
    }
}

fn denied(e: Error) -> Denied {
    match e {
        Error::PermissionDenied { reason, .. } => reason,
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
}

/// The OAEP variant this backend decrypts (SoftHSM2 lacks OAEP-SHA256).
fn oaep(store: &Store) -> EncryptionAlgorithm {
    let caps = store.capabilities();
    if caps.decrypt.contains(&EncryptionAlgorithm::RsaOaep256) {
        EncryptionAlgorithm::RsaOaep256
    } else {
        EncryptionAlgorithm::RsaOaep
    }
}

pub fn versions_survive_two_rotations(store: &Store) {
    // Signing key.
    let v1 = create(store, "signer", KeySpec::P256, &[KeyOp::Sign, KeyOp::Verify]);
    let sig = v1.sign(SignatureAlgorithm::Es256, MSG).unwrap();
    // Encryption key.
    let alg = oaep(store);
    let e1 = create(store, "crypt", KeySpec::RSA_2048, &[KeyOp::Encrypt, KeyOp::Decrypt]);
    let ct = e1.encrypt(alg, b"sealed under v1").unwrap();
    // Key-wrapping key.
    // AES-256 with A256KW where the backend has them, else RSA-OAEP (tpm2-pkcs11).
    let caps = store.capabilities();
    let (kek_spec, kek_alg) =
        if caps.generate.contains(&KeySpec::AES_256) && caps.unwrap.contains(&KeyWrapAlgorithm::A256Kw) {
            (KeySpec::AES_256, KeyWrapAlgorithm::A256Kw)
        } else if caps.unwrap.contains(&KeyWrapAlgorithm::RsaOaep256) {
            (KeySpec::RSA_2048, KeyWrapAlgorithm::RsaOaep256)
        } else {
            (KeySpec::RSA_2048, KeyWrapAlgorithm::RsaOaep)
        };
    let w1 = create(store, "kek", kek_spec, &[KeyOp::WrapKey, KeyOp::UnwrapKey]);
    let wrapped = w1.wrap_key(kek_alg, &[7u8; 32]).unwrap();

    for name in ["signer", "crypt", "kek"] {
        assert_eq!(store.rotate_key(name).unwrap().version(), 2);
        let v3 = store.rotate_key(name).unwrap();
        assert_eq!(v3.version(), 3);
        assert_eq!(store.get_key(name).unwrap().version(), 3, "the newest version is current");
        let versions: Vec<_> = store.list_versions(name).unwrap().iter().map(|v| v.version).collect();
        assert_eq!(versions, [1, 2, 3]);
        let ops = store.get_key_version(name, 1).unwrap().info().attributes.allowed();
        assert_eq!(v3.info().attributes.allowed(), ops, "rotation keeps the allowed operations");
    }

    let signer = store.get_key("signer").unwrap();
    expect_kind(signer.verify(SignatureAlgorithm::Es256, MSG, &sig), ErrorKind::VerificationFailed);
    store.get_key_version("signer", 1).unwrap().verify(SignatureAlgorithm::Es256, MSG, &sig).unwrap();
    assert_ne!(signer.public_key_der().unwrap(), v1.public_key_der().unwrap(), "a rotated key is new");

    let old = store.get_key_version("crypt", 1).unwrap();
    assert_eq!(&old.decrypt(alg, &ct).unwrap()[..], b"sealed under v1");
    expect_kind(store.get_key("crypt").unwrap().decrypt(alg, &ct), ErrorKind::DecryptionFailed);

    let old = store.get_key_version("kek", 1).unwrap();
    assert_eq!(&old.unwrap_key(kek_alg, &wrapped).unwrap()[..], &[7u8; 32]);
    expect_kind(store.get_key("kek").unwrap().unwrap_key(kek_alg, &wrapped), ErrorKind::DecryptionFailed);

    let listed: Vec<_> = store.list_keys().unwrap().into_iter().map(|k| (k.name, k.version)).collect();
    assert_eq!(listed, [("crypt".into(), 3), ("kek".into(), 3), ("signer".into(), 3)]);
    expect_kind(store.get_key_version("signer", 4), ErrorKind::NotFound);
    expect_kind(store.get_key_version("signer", 0), ErrorKind::NotFound);
    expect_kind(store.rotate_key("nope"), ErrorKind::NotFound);
}

pub fn disabled_version_refuses(store: &Store) {
    let alg = oaep(store);
    let v1 = create(store, "k", KeySpec::RSA_2048, &[KeyOp::Encrypt, KeyOp::Decrypt]);
    let ct = v1.encrypt(alg, b"x").unwrap();
    store.rotate_key("k").unwrap();
    let info = store.update_key("k", 1, &KeyUpdate::enabled(false)).unwrap();
    assert!(!info.attributes.enabled);
    let e =
        expect_kind(store.get_key_version("k", 1).unwrap().decrypt(alg, &ct), ErrorKind::PermissionDenied);
    assert_eq!(denied(e), Denied::Disabled);
    // Version 2 is untouched.
    let v2 = store.get_key("k").unwrap();
    assert!(v2.info().attributes.enabled);
    assert_eq!(&v2.decrypt(alg, &v2.encrypt(alg, b"y").unwrap()).unwrap()[..], b"y");
    // Re-enabled, version 1 decrypts again.
    store.update_key("k", 1, &KeyUpdate::enabled(true)).unwrap();
    assert_eq!(&store.get_key_version("k", 1).unwrap().decrypt(alg, &ct).unwrap()[..], b"x");
}

pub fn update_attributes(store: &Store) {
    let clock = TestClock::new();
    let store = clock.store(store);
    let key = create(&store, "upd", KeySpec::P256, &[KeyOp::Sign, KeyOp::Verify]);
    let created = key.info().created;
    clock.advance(60);
    let tags = [("team".to_owned(), "payments".to_owned())].into();
    let exp = clock.now() + Duration::from_secs(3600);
    let info = store
        .update_key(
            "upd",
            1,
            &KeyUpdate {
                tags: Some(tags),
                expires: Some(Some(exp)),
                ops: Some(KeyOps::from_ops(&[KeyOp::Verify])),
                ..KeyUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(info.attributes.tags.get("team").map(String::as_str), Some("payments"));
    assert_eq!(info.attributes.expires, Some(exp));
    assert_eq!(info.created, created);
    assert!(info.updated > created, "updated time moves");
    // What get returns is what update wrote, and it is enforced.
    let key = store.get_key("upd").unwrap();
    assert_eq!(key.info(), &info);
    let e = expect_kind(key.sign(SignatureAlgorithm::Es256, MSG), ErrorKind::PermissionDenied);
    assert_eq!(denied(e), Denied::OperationNotAllowed(KeyOp::Sign));
    // Past the new expiry: still verifies, refuses the rest.
    store
        .update_key(
            "upd",
            1,
            &KeyUpdate { ops: Some(KeyOps::from_ops(&[KeyOp::Sign, KeyOp::Verify])), ..Default::default() },
        )
        .unwrap();
    clock.advance(7200);
    let key = store.get_key("upd").unwrap();
    assert_eq!(
        denied(expect_kind(key.sign(SignatureAlgorithm::Es256, MSG), ErrorKind::PermissionDenied)),
        Denied::Expired
    );
    store.update_key("upd", 1, &KeyUpdate { expires: Some(None), ..Default::default() }).unwrap();
    store.get_key("upd").unwrap().sign(SignatureAlgorithm::Es256, MSG).unwrap();

    // Bad updates change nothing.
    let before = store.get_key("upd").unwrap().info().clone();
    for bad in [
        KeyUpdate { ops: Some(KeyOps::from_ops(&[KeyOp::Decrypt])), ..Default::default() },
        KeyUpdate {
            not_before: Some(Some(clock.now() + Duration::from_secs(100))),
            expires: Some(Some(clock.now())),
            ..Default::default()
        },
    ] {
        expect_kind(store.update_key("upd", 1, &bad), ErrorKind::InvalidInput);
    }
    let rsa = create(&store, "rsa", KeySpec::RSA_2048, &[KeyOp::Encrypt, KeyOp::Decrypt]);
    let both =
        KeyUpdate { ops: Some(KeyOps::from_ops(&[KeyOp::Decrypt, KeyOp::UnwrapKey])), ..Default::default() };
    expect_kind(store.update_key("rsa", 1, &both), ErrorKind::InvalidInput);
    assert_eq!(store.get_key("upd").unwrap().info(), &before);
    assert_eq!(store.get_key("rsa").unwrap().info(), rsa.info());
    expect_kind(store.update_key("upd", 2, &KeyUpdate::enabled(false)), ErrorKind::NotFound);
    expect_kind(store.update_key("none", 1, &KeyUpdate::enabled(false)), ErrorKind::NotFound);
}

pub fn soft_delete_recover_purge(store: &Store) {
    let clock = TestClock::new();
    let store = clock.store(store);
    let key = create(&store, "gone", KeySpec::P256, &[KeyOp::Sign, KeyOp::Verify]);
    let sig = key.sign(SignatureAlgorithm::Es256, MSG).unwrap();
    store.rotate_key("gone").unwrap();
    // An AES key where the backend makes them, else an RSA key-wrapping key.
    let stays = if store.capabilities().generate.contains(&KeySpec::AES_128) {
        KeySpec::AES_128
    } else {
        KeySpec::RSA_2048
    };
    create(&store, "stays", stays, &[KeyOp::WrapKey, KeyOp::UnwrapKey]);

    let deleted = store.delete_key("gone").unwrap();
    let d = deleted.state.deleted.expect("deleted state");
    assert_eq!(d.deleted_on, clock.now());
    assert_eq!(
        d.scheduled_purge,
        clock.now() + Duration::from_secs(90 * DAY),
        "default retention is 90 days"
    );
    assert_eq!(deleted.versions.len(), 2);

    expect_kind(store.get_key("gone"), ErrorKind::NotFound);
    expect_kind(store.get_key_version("gone", 1), ErrorKind::NotFound);
    expect_kind(store.rotate_key("gone"), ErrorKind::NotFound);
    expect_kind(store.update_key("gone", 1, &KeyUpdate::enabled(false)), ErrorKind::NotFound);
    expect_kind(store.delete_key("gone"), ErrorKind::NotFound);
    expect_kind(store.create_key("gone", KeySpec::P256, KeyAttributes::default()), ErrorKind::AlreadyExists);
    let names: Vec<_> = store.list_keys().unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(names, ["stays"]);
    let deleted: Vec<_> = store.list_deleted_keys().unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(deleted, ["gone"]);
    assert_eq!(store.get_deleted_key("gone").unwrap().state.deleted, Some(d));
    expect_kind(store.get_deleted_key("stays"), ErrorKind::NotFound);
    expect_kind(store.recover_deleted_key("stays"), ErrorKind::NotFound);
    expect_kind(store.purge_deleted_key("stays"), ErrorKind::NotFound);

    // Recover: every version back, as it was.
    let back = store.recover_deleted_key("gone").unwrap();
    assert_eq!(back.version(), 2);
    store.get_key_version("gone", 1).unwrap().verify(SignatureAlgorithm::Es256, MSG, &sig).unwrap();
    assert!(store.list_deleted_keys().unwrap().is_empty());

    // Delete and purge (no purge protection): gone for good, the name is free.
    store.delete_key("gone").unwrap();
    store.purge_deleted_key("gone").unwrap();
    expect_kind(store.get_deleted_key("gone"), ErrorKind::NotFound);
    expect_kind(store.recover_deleted_key("gone"), ErrorKind::NotFound);
    expect_kind(store.purge_deleted_key("gone"), ErrorKind::NotFound);
    let fresh = store.create_key("gone", KeySpec::P256, KeyAttributes::default()).unwrap();
    assert_eq!(fresh.version(), 1);
    assert_eq!(store.list_versions("gone").unwrap().len(), 1);
    expect_kind(fresh.verify(SignatureAlgorithm::Es256, MSG, &sig), ErrorKind::VerificationFailed);
}

pub fn purge_protection(store: &Store) {
    let clock = TestClock::new();
    let store = clock.store(store);
    assert!(!store.settings().unwrap().purge_protection);
    expect_kind(store.set_retention(Duration::from_secs(DAY)), ErrorKind::InvalidInput);
    expect_kind(store.set_retention(Duration::from_secs(91 * DAY)), ErrorKind::InvalidInput);
    store.set_retention(Duration::from_secs(7 * DAY)).unwrap();
    let s = store.enable_purge_protection().unwrap();
    assert!(s.purge_protection);
    assert_eq!(store.settings().unwrap(), s, "settings persist");

    create(&store, "kept", KeySpec::P256, &[KeyOp::Sign, KeyOp::Verify]);
    let e = expect_kind(store.destroy_key("kept"), ErrorKind::PermissionDenied);
    assert_eq!(denied(e), Denied::PurgeProtected);
    let d = store.delete_key("kept").unwrap().state.deleted.unwrap();
    assert_eq!(d.scheduled_purge, clock.now() + Duration::from_secs(7 * DAY));
    clock.advance(7 * DAY - 1);
    let e = expect_kind(store.purge_deleted_key("kept"), ErrorKind::PermissionDenied);
    assert_eq!(denied(e), Denied::PurgeProtected);
    expect_kind(store.destroy_key("kept"), ErrorKind::PermissionDenied);
    assert!(store.get_deleted_key("kept").is_ok(), "a refused purge leaves the key");
    clock.advance(1);
    store.purge_deleted_key("kept").unwrap();
    expect_kind(store.get_deleted_key("kept"), ErrorKind::NotFound);
}

pub fn rotation_policy(store: &Store) {
    let clock = TestClock::new();
    let store = clock.store(store);
    create(&store, "pol", KeySpec::P256, &[KeyOp::Sign, KeyOp::Verify]);
    create(&store, "nopol", KeySpec::P256, &[KeyOp::Sign, KeyOp::Verify]);
    create(&store, "del", KeySpec::P256, &[KeyOp::Sign, KeyOp::Verify]);
    let policy = RotationPolicy {
        rotate_after: Some(parse_iso_duration("P30D").unwrap()),
        rotate_before_expiry: Some(parse_iso_duration("P10D").unwrap()),
        expires_after: Some(parse_iso_duration("P90D").unwrap()),
    };
    store.set_rotation_policy("pol", Some(policy)).unwrap();
    store.set_rotation_policy("del", Some(policy)).unwrap();
    assert_eq!(store.rotation_policy("pol").unwrap(), Some(policy));
    assert_eq!(store.rotation_policy("nopol").unwrap(), None);
    store.delete_key("del").unwrap();

    assert!(store.rotate_due().unwrap().is_empty(), "nothing is due at creation");
    clock.advance(29 * DAY);
    assert!(store.keys_due_for_rotation().unwrap().is_empty());
    clock.advance(DAY);
    let done = store.rotate_due().unwrap();
    assert_eq!(done.len(), 1, "only the live key with a policy: {done:?}");
    let r = &done[0];
    assert_eq!((r.name.as_str(), r.from_version, r.result.clone().unwrap()), ("pol", 1, 2));
    assert!(r.reason.contains("P30D"), "{}", r.reason);
    let v2 = store.get_key("pol").unwrap();
    assert_eq!(v2.info().attributes.expires, Some(clock.now() + Duration::from_secs(90 * DAY)));
    assert_eq!(store.get_key("nopol").unwrap().version(), 1);
    assert!(store.rotate_due().unwrap().is_empty(), "a fresh version is not due");

    // Time-before-expiry: v2 expires in 90 days; 10 days before that it is due.
    store.set_rotation_policy("pol", Some(RotationPolicy { rotate_after: None, ..policy })).unwrap();
    clock.advance(79 * DAY);
    assert!(store.keys_due_for_rotation().unwrap().is_empty());
    clock.advance(DAY);
    let due = store.keys_due_for_rotation().unwrap();
    assert_eq!(due.len(), 1);
    assert!(due[0].2.contains("expires within P10D"), "{:?}", due[0]);
    assert_eq!(store.rotate_due().unwrap()[0].result.clone().unwrap(), 3);

    store.set_rotation_policy("pol", None).unwrap();
    assert_eq!(store.rotation_policy("pol").unwrap(), None);
    clock.advance(1000 * DAY);
    assert!(store.rotate_due().unwrap().is_empty());
}

pub fn import_new_version(store: &Store) {
    let key = create(store, "imp", KeySpec::P256, &[KeyOp::Sign, KeyOp::Verify]);
    // A public key as a new version: verify-only, current.
    let other = hsmkit::Store::new(hsmkit_soft::SoftBackend::new());
    let src = other.create_key("src", KeySpec::P256, KeyAttributes::default()).unwrap();
    let sig = src.sign(SignatureAlgorithm::Es256, MSG).unwrap();
    let material = hsmkit::KeyMaterial::Public(src.public_key().unwrap());
    if !store.capabilities().import {
        expect_kind(
            store.import_key_version("imp", material, KeyAttributes::default()),
            ErrorKind::Unsupported,
        );
        return;
    }
    let v2 = store.import_key_version("imp", material, KeyAttributes::default()).unwrap();
    assert_eq!(v2.version(), 2);
    assert_eq!(store.get_key("imp").unwrap().version(), 2);
    store.get_key("imp").unwrap().verify(SignatureAlgorithm::Es256, MSG, &sig).unwrap();
    expect_kind(
        store.get_key("imp").unwrap().sign(SignatureAlgorithm::Es256, MSG),
        ErrorKind::PermissionDenied,
    );
    // Rotating a public-only current version would invent a private key: refused.
    expect_kind(store.rotate_key("imp"), ErrorKind::InvalidInput);
    assert_eq!(
        store.get_key_version("imp", 1).unwrap().public_key_der().unwrap(),
        key.public_key_der().unwrap()
    );
}

pub fn concurrent_rotations(store: &Store) {
    create(store, "busy", KeySpec::P256, &[KeyOp::Sign, KeyOp::Verify]);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..5 {
                    store.rotate_key("busy").unwrap();
                }
            });
        }
    });
    let versions: Vec<_> = store.list_versions("busy").unwrap().iter().map(|v| v.version).collect();
    assert_eq!(versions, (1..=21).collect::<Vec<_>>(), "no version lost or doubled");
    for v in versions {
        let k = store.get_key_version("busy", v).unwrap();
        k.verify(SignatureAlgorithm::Es256, MSG, &k.sign(SignatureAlgorithm::Es256, MSG).unwrap()).unwrap();
    }
}

/// The keyed audit log on this backend: records verify against the store's audit key
/// (AES-256, or RSA-2048 where the backend has no AES key wrap), and a record removed with
/// the chain recomputed without that key is found.
pub fn keyed_audit_log(store: &Store) {
    use sha2::Digest;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.jsonl");
    let audited = store.clone().with_audit_log_file(&path).unwrap();
    let audit_key = store.audit_key().unwrap();
    assert!(matches!(audit_key.spec(), KeySpec::AES_256 | KeySpec::RSA_2048), "{:?}", audit_key.spec());
    let key = audited.create_key("audited", KeySpec::RSA_2048, KeyAttributes::default()).unwrap();
    for _ in 0..3 {
        key.sign(SignatureAlgorithm::Rs256, b"m").unwrap();
    }
    audited.rotate_key("audited").unwrap();
    let report = hsmkit::audit::verify_audit_log(&path, store).unwrap();
    assert_eq!((report.records, report.first_bad), (6, None), "the audit key's creation, then five");
    // What someone with only the file can do: drop a record, recompute a SHA-256 chain.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut prev = "0".repeat(64);
    let mut forged = String::new();
    for (i, line) in text.lines().enumerate().filter(|(i, _)| *i != 2).map(|(_, l)| l).enumerate() {
        let body = line.rsplit_once(",\"mac\":\"").unwrap().0;
        let mut v: serde_json::Value = serde_json::from_str(&format!("{body}}}")).unwrap();
        v["seq"] = (i + 1).into();
        v["prev"] = prev.clone().into();
        let body = v.to_string();
        let body = body.strip_suffix('}').unwrap();
        prev = hex::encode(sha2::Sha256::digest(body.as_bytes()));
        forged.push_str(&format!("{body},\"mac\":\"{prev}\"}}\n"));
    }
    std::fs::write(&path, forged).unwrap();
    let report = hsmkit::audit::verify_audit_log(&path, store).unwrap();
    assert_eq!((report.records, report.first_bad.map(|b| b.line)), (0, Some(1)));
}
