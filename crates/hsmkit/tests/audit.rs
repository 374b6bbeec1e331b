//! The hash-chained audit log: what it records, and that tampering is found.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

use hsmkit::audit::{AuditRecord, verify_audit_log};
use hsmkit::{AuditLog, EncryptionAlgorithm, KeyAttributes, KeySpec, SignatureAlgorithm, Store};

const SECRET_MESSAGE: &[u8] = b"wire 1,000,000 to account 42";

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p).unwrap().lines().map(str::to_owned).collect()
}

fn write_lines(p: &Path, lines: &[String]) {
    std::fs::write(p, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
}

/// A log of a dozen operations and lifecycle changes.
fn busy_log(p: &Path) -> Vec<String> {
    let store = Store::new(hsmkit_soft::SoftBackend::new()).with_audit_log(AuditLog::open(p).unwrap());
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
    l
}

#[test]
fn records_operations_without_data() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("audit.jsonl");
    let l = busy_log(&p);
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
    let text = std::fs::read(&p).unwrap();
    assert!(!text.windows(SECRET_MESSAGE.len()).any(|w| w == SECRET_MESSAGE), "no data in the log");
    let report = verify_audit_log(&p).unwrap();
    assert_eq!(report.records, 11);
    assert_eq!(report.first_bad, None);
    assert_eq!(report.head, recs[10]["hash"].as_str().unwrap());
}

#[test]
fn detects_deleted_edited_reordered_and_inserted_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("audit.jsonl");
    let good = busy_log(&p);
    let bad_line = |l: &[String]| {
        write_lines(&p, l);
        let r = verify_audit_log(&p).unwrap();
        r.first_bad.map(|b| (b.line, b.reason))
    };

    let mut deleted = good.clone();
    deleted.remove(4);
    let (line, reason) = bad_line(&deleted).unwrap();
    assert_eq!(line, 5, "{reason}");

    let mut edited = good.clone();
    edited[8] = edited[8].replace("PermissionDenied", "ok");
    assert_eq!(bad_line(&edited).unwrap().0, 9);
    // Editing and re-hashing the line itself is caught by the next line's prev.
    let mut rehashed = good.clone();
    let body = edited[8].rsplit_once(",\"hash\":\"").unwrap().0.to_owned();
    rehashed[8] = format!("{body},\"hash\":\"{}\"}}", hex_sha256(body.as_bytes()));
    let (line, reason) = bad_line(&rehashed).unwrap();
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

fn hex_sha256(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn two_writers_and_a_reopen_keep_one_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("audit.jsonl");
    // Two handles on one file stand for two processes: each notices the other's appends.
    let (a, b) = (AuditLog::open(&p).unwrap(), AuditLog::open(&p).unwrap());
    let rec = |op| AuditRecord {
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
    AuditLog::open(&p).unwrap().append(&rec("after-reopen")).unwrap();
    let r = verify_audit_log(&p).unwrap();
    assert_eq!((r.records, r.first_bad), (401, None));
}
