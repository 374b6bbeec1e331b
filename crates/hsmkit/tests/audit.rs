//! The keyed, chained audit log: what it records, and that tampering is found, even by
//! someone who recomputes the chain without the audit key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

use hmac::{KeyInit, Mac};
use hsmkit::audit::{AUDIT_KEY_NAME, AuditRecord, verify_audit_log};
use hsmkit::{
    AuditLog, EncryptionAlgorithm, KeyAttributes, KeySpec, KeyWrapAlgorithm, SignatureAlgorithm, Store,
};

const SECRET_MESSAGE: &[u8] = b"wire 1,000,000 to account 42";

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p).unwrap().lines().map(str::to_owned).collect()
}

fn write_lines(p: &Path, lines: &[String]) {
    std::fs::write(p, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
}

/// A log of a dozen operations and lifecycle changes, and the store that wrote it.
fn busy_log(p: &Path) -> (Vec<String>, Store) {
    // The audit key made beforehand, so that its creation is not the first record.
    let store = Store::new(hsmkit_soft::SoftBackend::new());
    store.audit_key().unwrap();
    let store = store.with_audit_log_file(p).unwrap();
    let key = store.create_key("payments", KeySpec::RSA_2048, KeyAttributes::default()).unwrap();
    let sig = key.sign(SignatureAlgorithm::Ps256, SECRET_MESSAGE).unwrap();
    key.verify(SignatureAlgorithm::Ps256, SECRET_MESSAGE, &sig).unwrap();
    assert!(key.verify(SignatureAlgorithm::Ps256, b"other", &sig).is_err());
    let ct = key.encrypt(EncryptionAlgorithm::RsaOaep256, SECRET_MESSAGE).unwrap();
    key.decrypt(EncryptionAlgorithm::RsaOaep256, &ct).unwrap();
    store.rotate_key("payments").unwrap();
    store.update_key("payments", 1, &hsmkit::KeyUpdate::enabled(false)).unwrap();
    assert!(store.get_key_version("payments", 1).unwrap().sign(SignatureAlgorithm::Ps256, b"x").is_err());
    store.delete_key("payments").unwrap();
    store.recover_deleted_key("payments").unwrap();
    let l = lines(p);
    assert_eq!(l.len(), 11);
    (l, store)
}

#[test]
fn records_operations_without_data() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("audit.jsonl");
    let (l, store) = busy_log(&p);
    let recs: Vec<serde_json::Value> = l.iter().map(|x| serde_json::from_str(x).unwrap()).collect();
    let ops: Vec<_> = recs.iter().map(|r| r["op"].as_str().unwrap()).collect();
    assert_eq!(
        ops,
        [
            "create", "sign", "verify", "verify", "encrypt", "decrypt", "rotate", "update", "sign", "delete",
            "recover"
        ]
    );
    assert_eq!(recs[1]["alg"], "PS256");
    assert_eq!(recs[1]["version"], 1);
    assert_eq!(recs[3]["outcome"], "VerificationFailed");
    assert_eq!(recs[6]["version"], 2);
    assert_eq!(recs[8]["outcome"], "PermissionDenied");
    assert!(recs.iter().all(|r| r["key"] == "payments" && r["time"].as_str().unwrap().ends_with('Z')));
    assert!(recs.iter().all(|r| r["mac_key"] == "hsmkit-audit/1"));
    let text = std::fs::read(&p).unwrap();
    assert!(!text.windows(SECRET_MESSAGE.len()).any(|w| w == SECRET_MESSAGE), "no data in the log");
    let report = verify_audit_log(&p, &store).unwrap();
    assert_eq!(report.records, 11);
    assert_eq!(report.first_bad, None);
    assert_eq!(report.head, recs[10]["mac"].as_str().unwrap());
}

#[test]
fn detects_deleted_edited_reordered_and_inserted_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("audit.jsonl");
    let (good, store) = busy_log(&p);
    let bad_line = |l: &[String]| {
        write_lines(&p, l);
        let r = verify_audit_log(&p, &store).unwrap();
        r.first_bad.map(|b| (b.line, b.reason))
    };

    let mut deleted = good.clone();
    deleted.remove(4);
    let (line, reason) = bad_line(&deleted).unwrap();
    assert_eq!(line, 5, "{reason}");

    let mut edited = good.clone();
    edited[8] = edited[8].replace("PermissionDenied", "ok");
    assert_eq!(bad_line(&edited).unwrap().0, 9);
    // Even with the MAC key, editing and re-MACing one line is caught by the next line's prev.
    let mut remaced = good.clone();
    let body = edited[8].rsplit_once(",\"mac\":\"").unwrap().0.to_owned();
    remaced[8] = format!("{body},\"mac\":\"{}\"}}", hmac_hex(&mac_key(&store), body.as_bytes()));
    let (line, reason) = bad_line(&remaced).unwrap();
    assert_eq!(line, 10, "{reason}");

    let mut reordered = good.clone();
    reordered.swap(2, 3);
    assert_eq!(bad_line(&reordered).unwrap().0, 3);

    // A replayed record: line 7 is the real one, line 8 its copy.
    let mut inserted = good.clone();
    inserted.insert(6, good[6].clone());
    assert_eq!(bad_line(&inserted).unwrap().0, 8);

    let mut truncated = good.clone();
    let last = truncated.pop().unwrap();
    truncated.push(last[..last.len() / 2].to_owned());
    assert_eq!(bad_line(&truncated).unwrap().0, 11);

    assert_eq!(bad_line(&good), None, "the untouched log verifies");
}

#[test]
fn the_audit_key_is_logged_and_only_it_vouches_for_records() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("audit.jsonl");
    let store = Store::new(hsmkit_soft::SoftBackend::new()).with_audit_log_file(&p).unwrap();
    let first: serde_json::Value = serde_json::from_str(&lines(&p)[0]).unwrap();
    assert_eq!((first["key"].as_str(), first["op"].as_str()), (Some(AUDIT_KEY_NAME), Some("create")));
    // A KEK whose bytes someone knows (imported), derived exactly as the audit key is: records
    // naming it as their mac_key are refused even though their MACs are right.
    let known = [0x42u8; 32];
    let kek = store
        .import_key("partner-kek", hsmkit::KeyMaterial::aes(&known).unwrap(), KeyAttributes::default())
        .unwrap();
    let mut k = [0u8; 32];
    let w = kek.wrap_key(KeyWrapAlgorithm::A256Kw, b"hsmkit-audit/1: derive a MAC key").unwrap();
    hkdf::Hkdf::<sha2::Sha256>::new(None, &w).expand(b"hsmkit-audit/1 hmac-sha256", &mut k).unwrap();
    let good = lines(&p);
    let swapped: Vec<String> = good
        .iter()
        .map(|l| l.replace("\"mac_key\":\"hsmkit-audit/1\"", "\"mac_key\":\"partner-kek/1\""))
        .collect();
    write_lines(&p, &rechain(&swapped, |b| hmac_hex(&k, b)));
    let r = verify_audit_log(&p, &store).unwrap();
    let bad = r.first_bad.unwrap();
    assert_eq!(bad.line, 1);
    assert!(bad.reason.contains("not the store's audit key"), "{}", bad.reason);
    // Nor can the audit key be one that leaves the backend, or serves other purposes.
    let other = Store::new(hsmkit_soft::SoftBackend::new());
    let attrs = KeyAttributes { exportable: true, ..KeyAttributes::with_ops(&[hsmkit::KeyOp::WrapKey]) };
    let exportable = other.create_key(AUDIT_KEY_NAME, KeySpec::AES_256, attrs).unwrap();
    assert_eq!(AuditLog::open(&p, &exportable).unwrap_err().kind(), hsmkit::ErrorKind::InvalidInput);
    let kek_too = KeyAttributes::with_ops(&[hsmkit::KeyOp::WrapKey, hsmkit::KeyOp::UnwrapKey]);
    let kek_too = Store::new(hsmkit_soft::SoftBackend::new())
        .create_key(AUDIT_KEY_NAME, KeySpec::AES_256, kek_too)
        .unwrap();
    assert_eq!(AuditLog::open(&p, &kek_too).unwrap_err().kind(), hsmkit::ErrorKind::InvalidInput);
}

#[test]
fn a_planted_tail_neither_panics_nor_steers_the_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("audit.jsonl");
    let (good, store) = busy_log(&p);
    let key = store.audit_key().unwrap();
    let log = AuditLog::open(&p, &key).unwrap();
    // A last line claiming the highest sequence number, MACed with nothing: appending
    // notices the foreign tail, refuses it with a typed error, and leaves the lock free.
    let mut planted = good.clone();
    let body = good[10].rsplit_once(",\"mac\":\"").unwrap().0;
    let body = body.replace("\"seq\":11", &format!("\"seq\":{}", u64::MAX));
    planted.push(format!("{body},\"mac\":\"{}\"}}", "0".repeat(64)));
    write_lines(&p, &planted);
    let rec = AuditRecord {
        object: "key",
        time: std::time::SystemTime::now(),
        key: "k",
        version: None,
        op: "x",
        alg: None,
        outcome: "ok",
    };
    assert_eq!(log.append(&rec).unwrap_err().kind(), hsmkit::ErrorKind::Backend);
    assert_eq!(AuditLog::open(&p, &key).unwrap_err().kind(), hsmkit::ErrorKind::Backend);
    // The lock was released: the file can be locked at once.
    let f = std::fs::File::open(&p).unwrap();
    assert!(f.try_lock().is_ok(), "the audit file is still locked");
    // Upper-case or '+' forms of a MAC do not verify: one way to write each chain head.
    write_lines(&p, &good);
    let mut upper = good.clone();
    let (b, mac) = upper[10].rsplit_once(",\"mac\":\"").unwrap();
    upper[10] = format!("{b},\"mac\":\"{}", mac.to_uppercase());
    write_lines(&p, &upper);
    assert_eq!(verify_audit_log(&p, &store).unwrap().first_bad.map(|b| b.line), Some(11));
}

fn hex_sha256(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// The MAC key, derived as the audit module documents it (written here independently).
fn mac_key(store: &Store) -> [u8; 32] {
    let wrapped = store
        .get_key(AUDIT_KEY_NAME)
        .unwrap()
        .wrap_key(KeyWrapAlgorithm::A256Kw, b"hsmkit-audit/1: derive a MAC key")
        .unwrap();
    let mut k = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(None, &wrapped).expand(b"hsmkit-audit/1 hmac-sha256", &mut k).unwrap();
    k
}

fn hmac_hex(key: &[u8], b: &[u8]) -> String {
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    m.update(b);
    m.finalize().into_bytes().iter().map(|x| format!("{x:02x}")).collect()
}

/// Rebuilds the chain after `lines` were edited: new seq, prev and MAC on every line,
/// each MAC computed by `mac` (the attacker's best effort).
fn rechain(lines: &[String], mac: impl Fn(&[u8]) -> String) -> Vec<String> {
    let mut prev = "0".repeat(64);
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let body = l.rsplit_once(",\"mac\":\"").unwrap().0;
        let mut v: serde_json::Value = serde_json::from_str(&format!("{body}}}")).unwrap();
        v["seq"] = serde_json::json!(i + 1);
        v["prev"] = serde_json::json!(prev);
        let body = v.to_string();
        let body = body.strip_suffix('}').unwrap();
        prev = mac(body.as_bytes());
        out.push(format!("{body},\"mac\":\"{prev}\"}}"));
    }
    out
}

#[test]
fn a_removed_record_with_a_recomputed_chain_is_detected_without_the_audit_key() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("audit.jsonl");
    let (good, store) = busy_log(&p);
    let mut cut = good.clone();
    cut.remove(3); // the failed verify
    let verdict = |l: &[String], store: &Store| {
        write_lines(&p, l);
        let r = verify_audit_log(&p, store).unwrap();
        (r.records, r.first_bad.map(|b| b.line))
    };
    // An unkeyed SHA-256 chain over the edited records (what the file alone allows).
    assert_eq!(verdict(&rechain(&cut, hex_sha256), &store), (0, Some(1)));
    // An HMAC chain under a key of the attacker's own store.
    let other = Store::new(hsmkit_soft::SoftBackend::new());
    other.audit_key().unwrap();
    let theirs = mac_key(&other);
    assert_eq!(verdict(&rechain(&cut, |b| hmac_hex(&theirs, b)), &store), (0, Some(1)));
    // A store without that audit key cannot vouch for the real log either.
    assert_eq!(verdict(&good, &other), (0, Some(1)));
    // With the audit key itself the same rechaining verifies: detection above is the key's
    // doing, not an artefact of the rechaining.
    let ours = mac_key(&store);
    assert_eq!(verdict(&rechain(&cut, |b| hmac_hex(&ours, b)), &store), (10, None));
    assert_eq!(verdict(&good, &store), (11, None));
}

#[test]
fn two_writers_and_a_reopen_keep_one_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("audit.jsonl");
    // Two handles on one file stand for two processes: each notices the other's appends.
    let store = Store::new(hsmkit_soft::SoftBackend::new());
    let key = store.audit_key().unwrap();
    let (a, b) = (AuditLog::open(&p, &key).unwrap(), AuditLog::open(&p, &key).unwrap());
    let rec = |op| AuditRecord {
        object: "key",
        time: std::time::SystemTime::now(),
        key: "k",
        version: Some(1),
        op,
        alg: None,
        outcome: "ok",
    };
    std::thread::scope(|s| {
        s.spawn(|| (0..200).for_each(|_| a.append(&rec("a")).unwrap()));
        s.spawn(|| (0..200).for_each(|_| b.append(&rec("b")).unwrap()));
    });
    drop((a, b));
    AuditLog::open(&p, &key).unwrap().append(&rec("after-reopen")).unwrap();
    let r = verify_audit_log(&p, &store).unwrap();
    assert_eq!((r.records, r.first_bad), (401, None));
}
