//! The key lifecycle on a token: state lives on the token (so another process sees it),
//! attributes reach the objects, purge destroys them, foreign keys are left alone.
//!
//! This binary is its own child (`harness = false`): with `HSMKIT_CHILD` set it opens
//! the token named by `HSMKIT_CHILD_URI` and acts on it as a second process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::process::Command;
use std::time::{Duration, SystemTime};

use hsmkit::{ErrorKind, KeyAttributes, KeyOp, KeySpec, KeyUpdate, SignatureAlgorithm, Store};
use hsmkit_pkcs11::Pkcs11Backend;
use hsmkit_pkcs11::cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use hsmkit_pkcs11::cryptoki::session::Session;
use hsmkit_pkcs11::testing::SoftHsmToken;

fn objects(s: &Session, label: &str) -> Vec<ObjectHandle> {
    s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())]).unwrap()
}

fn attr(s: &Session, h: ObjectHandle, t: AttributeType) -> Attribute {
    s.get_attributes(h, &[t]).unwrap().remove(0)
}

/// Runs this binary as a second process doing `action` on the token.
fn second_process(token: &SoftHsmToken, action: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .env("HSMKIT_CHILD", action)
        .env("HSMKIT_CHILD_URI", token.uri())
        .output()
        .unwrap();
    assert!(out.status.success(), "child {action}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn child(action: &str) {
    let store = Store::new(Pkcs11Backend::open(&std::env::var("HSMKIT_CHILD_URI").unwrap()).unwrap());
    match action {
        "rotate" => println!("{}", store.rotate_key("shared").unwrap().version()),
        "describe" => {
            let d = store.get_deleted_key("shared").map(|d| d.state.deleted.is_some()).unwrap_or(false);
            let versions = store.list_deleted_keys().unwrap().first().map_or(0, |d| d.versions.len());
            println!("deleted={d} versions={versions}");
        }
        "sign-v1" => {
            let k = store.get_key_version("shared", 1).unwrap();
            println!("{}", hex::encode(k.sign(SignatureAlgorithm::Es256, b"m").unwrap()));
        }
        other => panic!("unknown action {other}"),
    }
}

fn two_processes_agree() {
    let token = SoftHsmToken::new().unwrap();
    let store = token.store().unwrap();
    let v1 = store.create_key("shared", KeySpec::P256, KeyAttributes::default()).unwrap();
    assert_eq!(second_process(&token, "rotate"), "2");
    assert_eq!(second_process(&token, "rotate"), "3");
    let versions: Vec<_> = store.list_versions("shared").unwrap().iter().map(|v| v.version).collect();
    assert_eq!(versions, [1, 2, 3], "the other process's rotations are on the token");
    let sig = hex::decode(second_process(&token, "sign-v1")).unwrap();
    v1.verify(SignatureAlgorithm::Es256, b"m", &sig).unwrap();
    // A disabled version is disabled for the other process too.
    store.update_key("shared", 1, &KeyUpdate::enabled(false)).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .env("HSMKIT_CHILD", "sign-v1")
        .env("HSMKIT_CHILD_URI", token.uri())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).to_lowercase().contains("disabled"));
    store.delete_key("shared").unwrap();
    assert_eq!(second_process(&token, "describe"), "deleted=true versions=3");
    println!("two processes agree on versions, attributes and deletion");
}

fn attributes_reach_the_token_and_purge_destroys() {
    let token = SoftHsmToken::new().unwrap();
    let store = token.store().unwrap();
    let s = token.raw_session().unwrap();
    store.create_key("k", KeySpec::P256, KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify])).unwrap();
    store.rotate_key("k").unwrap();
    // Two versions: two private objects whose CKA_IDs are the random ids the versions'
    // metadata records, one metadata object.
    let privates = s
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Label(b"k".to_vec())])
        .unwrap();
    let mut ids: Vec<_> = privates
        .iter()
        .map(|h| match attr(&s, *h, AttributeType::Id) {
            Attribute::Id(id) => id,
            other => panic!("{other:?}"),
        })
        .collect();
    ids.sort();
    let mut recorded: Vec<_> = store
        .list_versions("k")
        .unwrap()
        .into_iter()
        .map(|v| [hsmkit_pkcs11::OBJECT_ID_PREFIX, &v.binding.object_id].concat())
        .collect();
    recorded.sort();
    assert_eq!(ids, recorded);
    assert!(ids.iter().all(|id| id.len() == 23) && ids[0] != ids[1]);
    let data =
        s.find_objects(&[Attribute::Class(ObjectClass::DATA), Attribute::Label(b"k".to_vec())]).unwrap();
    assert_eq!(data.len(), 1, "one metadata object per key name");

    // Expires and a narrowed operation set land on version 1's objects.
    let expires = SystemTime::UNIX_EPOCH + Duration::from_secs(4_102_444_799); // 2099-12-31
    store
        .update_key(
            "k",
            1,
            &KeyUpdate {
                expires: Some(Some(expires)),
                ops: Some(hsmkit::KeyOps::from_ops(&[KeyOp::Verify])),
                ..Default::default()
            },
        )
        .unwrap();
    let v1_id =
        [hsmkit_pkcs11::OBJECT_ID_PREFIX, &store.list_versions("k").unwrap()[0].binding.object_id].concat();
    let v1 = s
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(b"k".to_vec()),
            Attribute::Id(v1_id.clone()),
        ])
        .unwrap()[0];
    // Dates are read back from the public object: SoftHSM2 2.6.1 writes them in the clear
    // on private objects but then fails to decrypt them on read (CKR_GENERAL_ERROR,
    // softhsm/SoftHSMv2#804), so they cannot be checked there.
    let v1_public = s
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Label(b"k".to_vec()),
            Attribute::Id(v1_id.clone()),
        ])
        .unwrap()[0];
    match attr(&s, v1_public, AttributeType::EndDate) {
        Attribute::EndDate(d) => assert_eq!(d.to_string().replace('\n', " "), "Month: 12 Day: 31 Year: 2099"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(attr(&s, v1_public, AttributeType::Verify), Attribute::Verify(true)));
    assert!(matches!(attr(&s, v1, AttributeType::Sign), Attribute::Sign(false)), "CKA_SIGN cleared");
    // The token itself now refuses C_Sign with version 1, whatever hsmkit says.
    let raw = s.sign(&hsmkit_pkcs11::cryptoki::mechanism::Mechanism::Ecdsa, v1, &[0u8; 32]);
    assert!(raw.is_err(), "the token enforces the narrowed flags");

    // Purge protection is stored on the token too.
    store.enable_purge_protection().unwrap();
    assert!(token.store().unwrap().settings().unwrap().purge_protection);

    // Purge destroys every object of the key (after the retention period).
    let later = SystemTime::now() + Duration::from_secs(91 * 86_400);
    store.delete_key("k").unwrap();
    assert_eq!(store.purge_deleted_key("k").unwrap_err().kind(), ErrorKind::PermissionDenied);
    assert!(!objects(&s, "k").is_empty());
    store.clone().with_clock(move || later).purge_deleted_key("k").unwrap();
    assert!(objects(&s, "k").is_empty(), "key objects and metadata destroyed");
    println!("attributes reach the token's objects; purge destroys them");
}

fn foreign_keys_have_no_lifecycle() {
    let token = SoftHsmToken::new().unwrap();
    let store = token.store().unwrap();
    let s = token.raw_session().unwrap();
    s.generate_key(
        &hsmkit_pkcs11::cryptoki::mechanism::Mechanism::AesKeyGen,
        &[
            Attribute::Token(true),
            Attribute::Label(b"theirs".to_vec()),
            Attribute::ValueLen(32u64.into()),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
        ],
    )
    .unwrap();
    assert_eq!(store.get_key("theirs").unwrap().version(), 1);
    for e in [
        store.rotate_key("theirs").unwrap_err(),
        store.update_key("theirs", 1, &KeyUpdate::enabled(false)).unwrap_err(),
        store.delete_key("theirs").unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        assert!(e.to_string().contains("not made by hsmkit"), "{e}");
    }
    // The name is taken.
    assert_eq!(
        store.create_key("theirs", KeySpec::AES_256, KeyAttributes::default()).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    store.destroy_key("theirs").unwrap();
    assert!(objects(&s, "theirs").is_empty());
    println!("foreign keys: lifecycle changes are Unsupported; destroy works");
}

fn main() {
    if let Ok(action) = std::env::var("HSMKIT_CHILD") {
        return child(&action);
    }
    two_processes_agree();
    attributes_reach_the_token_and_purge_destroys();
    foreign_keys_have_no_lifecycle();
}
