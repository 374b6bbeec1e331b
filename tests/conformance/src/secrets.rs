//! Secrets checks every backend must pass: versions, validity, disable, soft delete,
//! recover, purge, purge protection, name/version binding, the 25 KiB limit, rotation
//! help, audit records, concurrent writers.

use std::collections::BTreeMap;
use std::time::Duration;

use hsmkit::metadata::RecordKind;
use hsmkit::secrets::{MAX_SECRET_VALUE_LEN, SECRETS_KEK_NAME};
use hsmkit::{
    Denied, Error, ErrorKind, KeyOp, KeySpec, RotationPolicy, SecretAttributes, SecretUpdate, Store,
    parse_iso_duration,
};

use crate::checks::{create, expect_kind};
use crate::lifecycle::TestClock;

const DAY: u64 = 86_400;

fn denied(e: Error) -> Denied {
    match e {
        Error::PermissionDenied { reason, .. } => reason,
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
}

fn set(store: &Store, name: &str, value: &[u8]) -> u32 {
    store
        .set_secret(name, value, SecretAttributes::default())
        .unwrap_or_else(|e| panic!("set {name}: {e}"))
        .version
}

fn value(store: &Store, name: &str, version: Option<u32>) -> Vec<u8> {
    let s = match version {
        Some(v) => store.get_secret_version(name, v),
        None => store.get_secret(name),
    };
    s.unwrap_or_else(|e| panic!("get {name} {version:?}: {e}")).value().to_vec()
}

pub fn secret_versions_and_namespaces(store: &Store) {
    assert_eq!(set(store, "db", b"first"), 1);
    // Bytes, not text: zeros and high bytes survive.
    let binary: Vec<u8> = (0..=255u8).chain([0, 0, 0]).collect();
    assert_eq!(set(store, "db", &binary), 2);
    assert_eq!(set(store, "db", b""), 3, "an empty value is a value");
    assert_eq!(value(store, "db", None), b"");
    assert_eq!(value(store, "db", Some(1)), b"first");
    assert_eq!(value(store, "db", Some(2)), binary);
    let current = store.get_secret("db").unwrap();
    assert_eq!((current.properties().name.as_str(), current.properties().version), ("db", 3));
    expect_kind(store.get_secret_version("db", 4), ErrorKind::NotFound);
    expect_kind(store.get_secret("nothing"), ErrorKind::NotFound);
    expect_kind(store.list_secret_versions("nothing"), ErrorKind::NotFound);

    let versions: Vec<u32> = store.list_secret_versions("db").unwrap().iter().map(|p| p.version).collect();
    assert_eq!(versions, [1, 2, 3]);

    // Secret names and key names are separate namespaces.
    create(store, "db", KeySpec::P256, &[KeyOp::Sign, KeyOp::Verify]);
    assert_eq!(set(store, "other", b"x"), 1);
    let secrets: Vec<_> = store.list_secrets().unwrap().into_iter().map(|p| (p.name, p.version)).collect();
    assert_eq!(secrets, [("db".to_owned(), 3), ("other".to_owned(), 1)]);
    let mut keys: Vec<_> = store.list_keys().unwrap().into_iter().map(|k| k.name).collect();
    keys.sort();
    assert_eq!(keys, ["db", SECRETS_KEK_NAME], "secrets are not keys; the KEK is");
    store.destroy_key("db").unwrap();
    assert_eq!(value(store, "db", Some(1)), b"first", "destroying a key of the same name leaves the secret");

    // The KEK: made on first use, wrap/unwrap only, never exportable; the store's own, so
    // applications cannot open it, plant a version of it, or delete it under live secrets.
    let kek = store.describe_key(SECRETS_KEK_NAME).unwrap();
    let kek = kek.current().unwrap();
    assert!(matches!(kek.spec, KeySpec::AES_256 | KeySpec::RSA_2048), "{:?}", kek.spec);
    let ops = kek.attributes.allowed();
    assert!(ops.contains(KeyOp::UnwrapKey) && !ops.contains(KeyOp::Decrypt) && !ops.contains(KeyOp::Sign));
    assert!(!kek.attributes.exportable);
    for e in [
        store.get_key(SECRETS_KEK_NAME).map(|_| ()),
        store.get_key_version(SECRETS_KEK_NAME, 1).map(|_| ()),
        store.destroy_key(SECRETS_KEK_NAME),
        store.delete_key(SECRETS_KEK_NAME).map(|_| ()),
        store.create_key(hsmkit::backup::BACKUP_KEY_NAME, KeySpec::AES_256, Default::default()).map(|_| ()),
        store.seal(SECRETS_KEK_NAME, b"x", &Default::default()).map(|_| ()),
    ] {
        assert_eq!(denied(expect_kind(e, ErrorKind::PermissionDenied)), Denied::StoreOnly);
    }
    if store.capabilities().import {
        let aes = hsmkit::KeyMaterial::aes(&[7u8; 32]).unwrap();
        let e = store.import_key_version(SECRETS_KEK_NAME, aes, Default::default());
        assert_eq!(denied(expect_kind(e, ErrorKind::PermissionDenied)), Denied::StoreOnly);
    }

    // Values never appear in metadata: every record holds them sealed.
    let meta = store.metadata_store();
    for (name, record) in meta.list_records(RecordKind::Secret).unwrap() {
        let text = record.to_string();
        assert!(!text.contains("first"), "{name}: a value in clear in its record");
    }
}

pub fn secret_attributes_and_limits(store: &Store) {
    let clock = TestClock::new();
    let store = clock.store(store);
    let tags = BTreeMap::from([("env".to_owned(), "prod".to_owned())]);
    let attrs = SecretAttributes {
        content_type: Some("text/plain".to_owned()),
        tags: tags.clone(),
        not_before: Some(clock.now() + Duration::from_secs(DAY)),
        expires: Some(clock.now() + Duration::from_secs(10 * DAY)),
        ..SecretAttributes::default()
    };
    let p = store.set_secret("cfg", b"v1", attrs.clone()).unwrap();
    assert_eq!((p.version, &p.attributes), (1, &attrs));
    assert_eq!(p.created, clock.now());
    let e = expect_kind(store.get_secret("cfg"), ErrorKind::PermissionDenied);
    assert_eq!(denied(e), Denied::NotYetValid);
    clock.advance(DAY);
    assert_eq!(value(&store, "cfg", None), b"v1");
    clock.advance(9 * DAY);
    let e = expect_kind(store.get_secret("cfg"), ErrorKind::PermissionDenied);
    assert_eq!(denied(e), Denied::Expired);

    // Update: validity, content type, tags of one version; persisted.
    clock.advance(5);
    let u = SecretUpdate {
        expires: Some(None),
        content_type: Some(Some("application/json".to_owned())),
        tags: Some(BTreeMap::new()),
        ..SecretUpdate::default()
    };
    let p = store.update_secret("cfg", 1, &u).unwrap();
    assert_eq!(p.attributes.expires, None);
    assert_eq!(p.attributes.content_type.as_deref(), Some("application/json"));
    assert_eq!(p.updated, clock.now());
    assert_eq!(store.list_secret_versions("cfg").unwrap(), std::slice::from_ref(&p), "the update persisted");
    assert_eq!(value(&store, "cfg", None), b"v1");
    expect_kind(store.update_secret("cfg", 2, &u), ErrorKind::NotFound);
    expect_kind(store.update_secret("none", 1, &u), ErrorKind::NotFound);
    let bad = SecretUpdate {
        not_before: Some(Some(clock.now() + Duration::from_secs(DAY))),
        expires: Some(Some(clock.now())),
        ..SecretUpdate::default()
    };
    expect_kind(store.update_secret("cfg", 1, &bad), ErrorKind::InvalidInput);
    assert_eq!(store.list_secret_versions("cfg").unwrap(), [p], "a refused update changes nothing");

    // Disable one version: refused, the others still read.
    store.set_secret("cfg", b"v2", SecretAttributes::default()).unwrap();
    store.update_secret("cfg", 2, &SecretUpdate::enabled(false)).unwrap();
    let e = expect_kind(store.get_secret("cfg"), ErrorKind::PermissionDenied);
    assert_eq!(denied(e), Denied::Disabled);
    assert!(e_text(&store, "cfg").contains("secret 'cfg'"), "{}", e_text(&store, "cfg"));
    assert_eq!(value(&store, "cfg", Some(1)), b"v1");
    store.update_secret("cfg", 2, &SecretUpdate::enabled(true)).unwrap();
    assert_eq!(value(&store, "cfg", None), b"v2");

    // Limits: 25 KiB of value, 255 characters of content type, the key name alphabet.
    let max = vec![0xa5u8; MAX_SECRET_VALUE_LEN];
    assert_eq!(store.set_secret("big", &max, SecretAttributes::default()).unwrap().version, 1);
    assert_eq!(value(&store, "big", None), max);
    let over = vec![0xa5u8; MAX_SECRET_VALUE_LEN + 1];
    let e = expect_kind(store.set_secret("big", &over, SecretAttributes::default()), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("25"), "{e}");
    let long_type = SecretAttributes { content_type: Some("t".repeat(256)), ..SecretAttributes::default() };
    expect_kind(store.set_secret("big", b"x", long_type), ErrorKind::InvalidInput);
    let ok_type = SecretAttributes { content_type: Some("t".repeat(255)), ..SecretAttributes::default() };
    store.set_secret("typed", b"x", ok_type).unwrap();
    let reversed = SecretAttributes {
        not_before: Some(clock.now()),
        expires: Some(clock.now()),
        ..SecretAttributes::default()
    };
    expect_kind(store.set_secret("big", b"x", reversed), ErrorKind::InvalidInput);
    // Times RFC 3339 cannot write are refused (for keys too), never stored to panic later.
    let epoch = std::time::UNIX_EPOCH;
    for t in [epoch - Duration::from_secs(1), epoch + Duration::from_secs(253_402_300_800)] {
        let a = SecretAttributes { expires: Some(t), ..SecretAttributes::default() };
        expect_kind(store.set_secret("big", b"x", a), ErrorKind::InvalidInput);
        let k = hsmkit::KeyAttributes { expires: Some(t), ..hsmkit::KeyAttributes::default() };
        expect_kind(store.create_key("timed", KeySpec::P256, k), ErrorKind::InvalidInput);
        let u = SecretUpdate { not_before: Some(Some(t)), ..SecretUpdate::default() };
        expect_kind(store.update_secret("big", 1, &u), ErrorKind::InvalidInput);
    }
    assert_eq!(store.list_secret_versions("big").unwrap().len(), 1, "refused sets add no version");
    for bad in ["", "has space", "dot.ted", "slash/ed", "ünï", &"a".repeat(128)] {
        expect_kind(store.set_secret(bad, b"x", SecretAttributes::default()), ErrorKind::InvalidInput);
        expect_kind(store.get_secret(bad), ErrorKind::InvalidInput);
    }
}

fn e_text(store: &Store, name: &str) -> String {
    store.get_secret(name).err().map(|e| e.to_string()).unwrap_or_default()
}

pub fn secret_delete_recover_purge(store: &Store) {
    let clock = TestClock::new();
    let store = clock.store(store);
    set(&store, "gone", b"one");
    set(&store, "gone", b"two");
    set(&store, "stays", b"s");
    let d = store.delete_secret("gone").unwrap();
    let del = d.state.deleted.expect("deleted state");
    assert_eq!(del.deleted_on, clock.now());
    assert_eq!(del.scheduled_purge, clock.now() + Duration::from_secs(90 * DAY));
    assert_eq!(d.versions.len(), 2);

    expect_kind(store.get_secret("gone"), ErrorKind::NotFound);
    expect_kind(store.get_secret_version("gone", 1), ErrorKind::NotFound);
    expect_kind(store.list_secret_versions("gone"), ErrorKind::NotFound);
    expect_kind(store.update_secret("gone", 1, &SecretUpdate::enabled(false)), ErrorKind::NotFound);
    expect_kind(store.delete_secret("gone"), ErrorKind::NotFound);
    expect_kind(store.set_secret("gone", b"three", SecretAttributes::default()), ErrorKind::AlreadyExists);
    let names: Vec<_> = store.list_secrets().unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["stays"]);
    let deleted: Vec<_> = store.list_deleted_secrets().unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(deleted, ["gone"]);
    assert_eq!(store.get_deleted_secret("gone").unwrap().state.deleted, Some(del));
    expect_kind(store.get_deleted_secret("stays"), ErrorKind::NotFound);
    expect_kind(store.recover_deleted_secret("stays"), ErrorKind::NotFound);
    expect_kind(store.purge_deleted_secret("stays"), ErrorKind::NotFound);

    let back = store.recover_deleted_secret("gone").unwrap();
    assert_eq!(back.version, 2);
    assert_eq!(value(&store, "gone", Some(1)), b"one");
    assert_eq!(value(&store, "gone", None), b"two");
    expect_kind(store.recover_deleted_secret("gone"), ErrorKind::NotFound);

    store.delete_secret("gone").unwrap();
    store.purge_deleted_secret("gone").unwrap();
    expect_kind(store.get_deleted_secret("gone"), ErrorKind::NotFound);
    expect_kind(store.describe_secret("gone"), ErrorKind::NotFound);
    assert_eq!(set(&store, "gone", b"new"), 1, "a purged name starts again at version 1");
    assert_eq!(value(&store, "gone", None), b"new");
}

pub fn secret_purge_protection(store: &Store) {
    let clock = TestClock::new();
    let store = clock.store(store);
    store.set_retention(Duration::from_secs(7 * DAY)).unwrap();
    store.enable_purge_protection().unwrap();
    set(&store, "kept", b"v");
    let d = store.delete_secret("kept").unwrap().state.deleted.unwrap();
    assert_eq!(d.scheduled_purge, clock.now() + Duration::from_secs(7 * DAY));
    clock.advance(7 * DAY - 1);
    let e = expect_kind(store.purge_deleted_secret("kept"), ErrorKind::PermissionDenied);
    assert_eq!(denied(e), Denied::PurgeProtected);
    assert!(store.get_deleted_secret("kept").is_ok(), "a refused purge leaves the secret");
    clock.advance(1);
    store.purge_deleted_secret("kept").unwrap();
    expect_kind(store.get_deleted_secret("kept"), ErrorKind::NotFound);
}

/// Moves version `from`'s sealed value of `src` onto version `to` of `dst` (a record
/// edit through the seam, as someone with write access to the metadata could make).
fn transplant(store: &Store, src: &str, from: u32, dst: &str, to: u32) {
    let meta = store.metadata_store();
    let sealed = |doc: &serde_json::Value, v: u32| -> serde_json::Value {
        doc["versions"].as_array().unwrap().iter().find(|e| e["version"] == v).unwrap()["sealed"].clone()
    };
    let moved = sealed(&meta.read_record(RecordKind::Secret, src).unwrap().unwrap(), from);
    meta.modify_record(RecordKind::Secret, dst, &mut |doc| {
        let mut doc = doc.unwrap();
        for e in doc["versions"].as_array_mut().unwrap() {
            if e["version"] == to {
                e["sealed"] = moved.clone();
            }
        }
        Ok(Some(doc))
    })
    .unwrap();
}

pub fn secret_values_are_bound_to_name_and_version(store: &Store) {
    set(store, "a", b"version one of a");
    set(store, "a", b"version two of a");
    set(store, "b", b"version one of b");
    // A sealed value copied onto another version of the same secret does not open...
    transplant(store, "a", 1, "a", 2);
    expect_kind(store.get_secret_version("a", 2), ErrorKind::DecryptionFailed);
    expect_kind(store.get_secret("a"), ErrorKind::DecryptionFailed);
    assert_eq!(value(store, "a", Some(1)), b"version one of a");
    // ...nor onto another secret.
    transplant(store, "a", 1, "b", 1);
    expect_kind(store.get_secret("b"), ErrorKind::DecryptionFailed);
    // Garbage where the sealed value was: the same single error.
    store
        .metadata_store()
        .modify_record(RecordKind::Secret, "a", &mut |doc| {
            let mut doc = doc.unwrap();
            doc["versions"][0]["sealed"] = "AAAA".into();
            Ok(Some(doc))
        })
        .unwrap();
    expect_kind(store.get_secret_version("a", 1), ErrorKind::DecryptionFailed);
    // A record whose body names another secret is refused, never served.
    let b = store.metadata_store().read_record(RecordKind::Secret, "b").unwrap();
    store.metadata_store().modify_record(RecordKind::Secret, "c", &mut |_| Ok(b.clone())).unwrap();
    expect_kind(store.get_secret("c"), ErrorKind::Backend);
}

pub fn secret_rotation_due(store: &Store) {
    let clock = TestClock::new();
    let store = clock.store(store);
    let policy = RotationPolicy {
        rotate_after: Some(parse_iso_duration("P60D").unwrap()),
        rotate_before_expiry: None,
        expires_after: Some(parse_iso_duration("P90D").unwrap()),
    };
    set(&store, "pol", b"1");
    store.set_secret_rotation_policy("pol", Some(policy)).unwrap();
    assert_eq!(store.secret_rotation_policy("pol").unwrap(), Some(policy));
    // The policy gives versions set without an expiry one.
    let p = store.set_secret("pol", b"2", SecretAttributes::default()).unwrap();
    assert_eq!(p.attributes.expires, Some(clock.now() + Duration::from_secs(90 * DAY)));
    let exp = clock.now() + Duration::from_secs(20 * DAY);
    let short = SecretAttributes { expires: Some(exp), ..SecretAttributes::default() };
    store.set_secret("short", b"s", short).unwrap();
    set(&store, "never", b"n");
    let disabled = SecretAttributes { expires: Some(exp), enabled: false, ..SecretAttributes::default() };
    store.set_secret("off", b"o", disabled).unwrap();
    set(&store, "del", b"d");
    store
        .update_secret("del", 1, &SecretUpdate { expires: Some(Some(exp)), ..SecretUpdate::default() })
        .unwrap();
    store.delete_secret("del").unwrap();

    let due = |within: u64| -> Vec<(String, u32)> {
        store
            .secrets_due(Duration::from_secs(within * DAY))
            .unwrap()
            .into_iter()
            .map(|d| (d.name, d.version))
            .collect()
    };
    assert!(due(10).is_empty());
    assert_eq!(due(30), [("short".to_owned(), 1)]);
    let d = store.secrets_due(Duration::from_secs(30 * DAY)).unwrap();
    assert_eq!(d[0].expires, Some(exp));
    assert!(d[0].reason.contains("expires"), "{}", d[0].reason);
    clock.advance(61 * DAY);
    // pol v2 is 61 days old: due by the policy; short has expired.
    assert_eq!(due(0), [("pol".to_owned(), 2), ("short".to_owned(), 1)]);
    let reasons: Vec<String> =
        store.secrets_due(Duration::ZERO).unwrap().into_iter().map(|d| d.reason).collect();
    assert!(reasons[0].contains("older than"), "{reasons:?}");
    assert!(reasons[1].contains("expired"), "{reasons:?}");
    store.set_secret_rotation_policy("pol", None).unwrap();
    assert_eq!(store.secret_rotation_policy("pol").unwrap(), None);
    assert_eq!(due(0), [("short".to_owned(), 1)]);
}

pub fn secret_audit_records(store: &Store) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.jsonl");
    let audited = store.clone().with_audit_log_file(&path).unwrap();
    audited.set_secret("audited", b"canary-value-91c2", SecretAttributes::default()).unwrap();
    audited.get_secret("audited").unwrap();
    expect_kind(audited.get_secret_version("audited", 9), ErrorKind::NotFound);
    audited.delete_secret("audited").unwrap();
    let report = hsmkit::audit::verify_audit_log(&path, store).unwrap();
    assert_eq!(report.first_bad, None);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("canary-value"), "a secret value in the audit log");
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(&format!("{}}}", l.rsplit_once(",\"mac\":\"").unwrap().0)).unwrap())
        .filter(|v: &serde_json::Value| v["object"] == "secret")
        .collect();
    let seen: Vec<(String, String)> = records
        .iter()
        .map(|v| (v["op"].as_str().unwrap().into(), v["outcome"].as_str().unwrap().into()))
        .collect();
    let want = [("set", "ok"), ("get", "ok"), ("get", "NotFound"), ("delete", "ok")];
    assert_eq!(seen, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
    assert!(records.iter().all(|v| v["key"] == "audited"));
    assert_eq!(records[1]["version"], 1);
}

pub fn concurrent_secret_writers(store: &Store) {
    let threads = 4;
    let per = 3;
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for i in 0..per {
                    store
                        .set_secret("busy", format!("{t}-{i}").as_bytes(), SecretAttributes::default())
                        .unwrap();
                }
            });
        }
    });
    let versions: Vec<u32> = store.list_secret_versions("busy").unwrap().iter().map(|p| p.version).collect();
    assert_eq!(versions, (1..=threads * per).collect::<Vec<u32>>(), "consecutive versions, none lost");
    let mut values: Vec<Vec<u8>> = (1..=threads * per).map(|v| value(store, "busy", Some(v))).collect();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), usize::try_from(threads * per).unwrap(), "every write kept its own value");
}

/// Backup and restore of secrets (every backend) and keys (where keys can leave the
/// backend; elsewhere the typed Unsupported), refusal into a store without the same
/// backup key, and restore into one that holds it. `make` gives fresh stores of the
/// backend under test.
pub fn backup_and_restore(make: &dyn Fn() -> Store) {
    use hsmkit::backup::BACKUP_KEY_NAME;
    use hsmkit::{KeyAttributes, KeyMaterial, KeyOps, SignatureAlgorithm};
    let store = make();
    let caps = store.capabilities();
    let tags = BTreeMap::from([("team".to_owned(), "db".to_owned())]);
    let v1 =
        SecretAttributes { content_type: Some("text/plain".into()), tags, ..SecretAttributes::default() };
    store.set_secret("s", b"value one", v1).unwrap();
    store.set_secret("s", &[0u8, 1, 2, 255], SecretAttributes::default()).unwrap();
    store.update_secret("s", 2, &SecretUpdate::enabled(false)).unwrap();
    let policy = RotationPolicy {
        expires_after: Some(parse_iso_duration("P30D").unwrap()),
        ..RotationPolicy::default()
    };
    store.set_secret_rotation_policy("s", Some(policy)).unwrap();
    let before = store.describe_secret("s").unwrap();
    let blob = store.backup_secret("s").unwrap();
    assert!(!blob.windows(9).any(|w| w == b"value one"), "a backup holds values sealed, not in clear");
    let backup_key = store.describe_key(BACKUP_KEY_NAME).unwrap();
    assert!(!backup_key.current().unwrap().attributes.exportable);
    // The generic envelope API cannot open (or forge) a backup with the backup key.
    let ctx = std::collections::BTreeMap::from([
        ("hsmkit".to_owned(), "backup".to_owned()),
        ("object".to_owned(), "secret".to_owned()),
        ("name".to_owned(), "s".to_owned()),
    ]);
    assert!(store.unseal(&blob, &ctx).is_err(), "a backup opened outside restore");
    expect_kind(store.seal(BACKUP_KEY_NAME, b"forged", &ctx), ErrorKind::PermissionDenied);

    expect_kind(store.restore_secret(&blob), ErrorKind::AlreadyExists);
    store.delete_secret("s").unwrap();
    expect_kind(store.restore_secret(&blob), ErrorKind::AlreadyExists);
    expect_kind(store.backup_secret("s"), ErrorKind::NotFound);
    store.purge_deleted_secret("s").unwrap();
    let restored = store.restore_secret(&blob).unwrap();
    assert_eq!(restored, before, "every version and attribute, times included");
    assert_eq!(store.describe_secret("s").unwrap(), before);
    assert_eq!(value(&store, "s", Some(1)), b"value one");
    let e = expect_kind(store.get_secret("s"), ErrorKind::PermissionDenied);
    assert_eq!(denied(e), Denied::Disabled);
    store.update_secret("s", 2, &SecretUpdate::enabled(true)).unwrap();
    assert_eq!(value(&store, "s", None), [0u8, 1, 2, 255]);

    // Altered anywhere after the header, or cut short: the one opaque error.
    for i in [blob.len() - 1, blob.len() / 2 + 7] {
        let mut bad = blob.clone();
        bad[i] ^= 1;
        store.purge_deleted_secret("s").err();
        store.delete_secret("s").unwrap();
        store.purge_deleted_secret("s").unwrap();
        expect_kind(store.restore_secret(&bad), ErrorKind::DecryptionFailed);
        store.restore_secret(&blob).unwrap();
    }
    expect_kind(store.restore_secret(b"not a backup"), ErrorKind::InvalidInput);
    expect_kind(store.restore_key(&blob), ErrorKind::InvalidInput);

    // A store without this store's backup key refuses the blob, with or without a backup
    // key of its own.
    let foreign = make();
    expect_kind(foreign.restore_secret(&blob), ErrorKind::DecryptionFailed);
    foreign.set_secret("x", b"x", SecretAttributes::default()).unwrap();
    foreign.backup_secret("x").unwrap();
    expect_kind(foreign.restore_secret(&blob), ErrorKind::DecryptionFailed);
    expect_kind(foreign.get_secret("s"), ErrorKind::NotFound);

    // Keys: where they can leave the backend, the same round trip.
    let key = create(&store, "k", KeySpec::P256, &[KeyOp::Sign, KeyOp::Verify]);
    let sig1 = key.sign(SignatureAlgorithm::Es256, b"m").unwrap();
    store.rotate_key("k").unwrap();
    // The store's own keys are not backed up; a missing key is NotFound everywhere.
    for own in [BACKUP_KEY_NAME, SECRETS_KEK_NAME, hsmkit::audit::AUDIT_KEY_NAME] {
        expect_kind(store.backup_key(own), ErrorKind::InvalidInput);
    }
    expect_kind(store.backup_key("no-such-key"), ErrorKind::NotFound);
    if !caps.export {
        expect_kind(store.backup_key("k"), ErrorKind::Unsupported);
        return;
    }
    let kd = store.describe_key("k").unwrap();
    let kblob = store.backup_key("k").unwrap();
    expect_kind(store.restore_key(&kblob), ErrorKind::AlreadyExists);
    expect_kind(store.restore_secret(&kblob), ErrorKind::InvalidInput);
    store.destroy_key("k").unwrap();
    let back = store.restore_key(&kblob).unwrap();
    assert_eq!(back.versions.len(), 2);
    for (a, b) in back.versions.iter().zip(&kd.versions) {
        // Times to the second, as every metadata store keeps them.
        let secs = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(
            (a.version, &a.attributes, secs(a.created), a.spec),
            (b.version, &b.attributes, secs(b.created), b.spec)
        );
        assert_eq!(a.binding.public_sha256, b.binding.public_sha256, "the same key material");
    }
    store.get_key_version("k", 1).unwrap().verify(SignatureAlgorithm::Es256, b"m", &sig1).unwrap();
    expect_kind(foreign.restore_key(&kblob), ErrorKind::DecryptionFailed);

    // Two stores holding the same backup key (imported into both) restore each other's
    // backups.
    if !caps.import {
        return;
    }
    let shared = KeyMaterial::aes(&[0x42u8; 32]).unwrap();
    let (a, b) = (make(), make());
    let attrs = KeyAttributes {
        ops: Some(KeyOps::from_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey])),
        ..KeyAttributes::default()
    };
    for s in [&a, &b] {
        s.import_key(BACKUP_KEY_NAME, shared.clone(), attrs.clone()).unwrap();
    }
    a.set_secret("moved", b"travels", SecretAttributes::default()).unwrap();
    let signer = create(&a, "moved-key", KeySpec::P256, &[KeyOp::Sign, KeyOp::Verify]);
    let sig = signer.sign(SignatureAlgorithm::Es256, b"m").unwrap();
    b.restore_secret(&a.backup_secret("moved").unwrap()).unwrap();
    assert_eq!(value(&b, "moved", None), b"travels");
    b.restore_key(&a.backup_key("moved-key").unwrap()).unwrap();
    b.get_key("moved-key").unwrap().verify(SignatureAlgorithm::Es256, b"m", &sig).unwrap();
    let resigned = b.get_key("moved-key").unwrap().sign(SignatureAlgorithm::Es256, b"n").unwrap();
    signer.verify(SignatureAlgorithm::Es256, b"n", &resigned).unwrap();
}
