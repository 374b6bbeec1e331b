//! Attacks on the objects of a token hsmkit uses (issue 17, findings 1-3), each by an
//! independent program: `pkcs11-tool` in another process. Run without `--login`, it is a
//! session that never logged in (PKCS#11 login state is per process, so it has to be
//! another process); with `--login`, it is another application holding the PIN. Each
//! attack must end in a typed error or a refusal, never in a wrong answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;
use std::process::Command;

use hsmkit::envelope::{Opener, Sealer};

use hsmkit::{
    ErrorKind, KeyAttributes, KeyMaterial, KeyOp, KeySpec, KeyUpdate, KeyWrapAlgorithm,
    SignatureAlgorithm as S, Store,
};
use hsmkit_pkcs11::testing::{SoftHsmToken, USER_PIN};

/// Runs pkcs11-tool on the token; `login` logs in with the user PIN.
fn tool(token: &SoftHsmToken, login: bool, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("pkcs11-tool");
    cmd.arg("--module").arg(token.module()).args(["--token-label", token.label()]);
    if login {
        cmd.args(["--login", "--pin", USER_PIN]);
    }
    cmd.args(args).output().expect("pkcs11-tool is required (tests/run-all.sh installs opensc)")
}

fn tool_ok(token: &SoftHsmToken, login: bool, args: &[&str]) -> String {
    let out = tool(token, login, args);
    assert!(out.status.success(), "pkcs11-tool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh store (as a new process would open it) on the token.
fn fresh(token: &SoftHsmToken) -> Store {
    token.store().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_owned()
}

/// Finding 1: a session without the PIN deletes hsmkit's public-key object and writes
/// its own under the same label and id. hsmkit must not verify the attacker's signature,
/// export the attacker's key, or seal to it.
#[test]
fn no_pin_session_cannot_substitute_a_public_key() {
    let token = SoftHsmToken::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = token.store().unwrap();
    let ec = store.create_key("ec-signer", KeySpec::P256, KeyAttributes::default()).unwrap();
    let kek_ops = KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]);
    let rsa = store.create_key("rsa-recipient", KeySpec::RSA_2048, kek_ops.clone()).unwrap();
    let (ec_pub, rsa_pub) = (ec.public_key().unwrap(), rsa.public_key().unwrap());

    // The attacker's own keys, with the same label and CKA_ID as hsmkit's objects.
    let attacker = Store::new(hsmkit_soft::SoftBackend::new());
    let a_ec = attacker.create_key("a-ec", KeySpec::P256, KeyAttributes::default()).unwrap();
    let a_rsa = attacker.create_key("a-rsa", KeySpec::RSA_2048, kek_ops).unwrap();
    for (key, theirs) in [(&ec, &a_ec), (&rsa, &a_rsa)] {
        let id = hex(&[hsmkit_pkcs11::OBJECT_ID_PREFIX, &key.info().binding.object_id].concat());
        let spki = write(dir.path(), "spki.der", &theirs.public_key().unwrap().to_spki_der().unwrap());
        tool_ok(&token, false, &["--delete-object", "--type", "pubkey", "--label", key.name(), "--id", &id]);
        tool_ok(
            &token,
            false,
            &["--write-object", &spki, "--type", "pubkey", "--label", key.name(), "--id", &id],
        );
    }

    let store = fresh(&token);
    // EC: the public key comes from the public object, which no longer matches the
    // fingerprint pinned at creation: a typed refusal.
    let e = store.get_key("ec-signer").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    assert!(e.to_string().contains("pinned"), "{e}");
    // RSA: the public key comes from the private object, which a no-PIN session cannot
    // touch: the planted object is never used.
    let rsa = store.get_key("rsa-recipient").unwrap();
    assert_eq!(rsa.public_key().unwrap(), rsa_pub);
    // Sealing to the recipient wraps the data key to hsmkit's key, not the attacker's.
    let wrapped = rsa.wrap_key(KeyWrapAlgorithm::RsaOaep, &[9; 32]).unwrap();
    assert_eq!(
        a_rsa.unwrap_key(KeyWrapAlgorithm::RsaOaep, &wrapped).unwrap_err().kind(),
        ErrorKind::DecryptionFailed
    );
    let sealed = Sealer::for_key(rsa.clone()).unwrap().seal(b"secret").unwrap();
    assert_eq!(&Opener::new(&rsa).open(&sealed).unwrap()[..], b"secret");
    // And the EC key, once refused, is not usable through any other path either.
    assert!(store.list_versions("ec-signer").unwrap()[0].binding.public_sha256.is_some());
    let _ = ec_pub;
}

/// Finding 1, second form: a planted public object beside hsmkit's (same label and id)
/// makes two candidates, which is an error naming both, never "first match".
#[test]
fn a_second_public_object_is_an_error_not_a_choice() {
    let token = SoftHsmToken::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = token.store().unwrap().create_key("ec", KeySpec::P384, KeyAttributes::default()).unwrap();
    let attacker = Store::new(hsmkit_soft::SoftBackend::new());
    let theirs = attacker.create_key("a", KeySpec::P384, KeyAttributes::default()).unwrap();
    let spki = write(dir.path(), "spki.der", &theirs.public_key().unwrap().to_spki_der().unwrap());
    let id = hex(&[hsmkit_pkcs11::OBJECT_ID_PREFIX, &key.info().binding.object_id].concat());
    tool_ok(&token, false, &["--write-object", &spki, "--type", "pubkey", "--label", "ec", "--id", &id]);
    let e = fresh(&token).get_key("ec").unwrap_err();
    assert!(e.to_string().contains("2 objects match"), "{e}");
}

/// Finding 2: a session without the PIN plants a public, non-sensitive AES key with the
/// KEK's label and id. hsmkit must never wrap under it.
#[test]
fn no_pin_session_cannot_plant_a_secret_key() {
    let token = SoftHsmToken::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kek = token.store().unwrap().create_key("kek", KeySpec::AES_256, KeyAttributes::default()).unwrap();
    let planted = [0x42u8; 32];
    let file = write(dir.path(), "planted.key", &planted);
    let id = hex(&[hsmkit_pkcs11::OBJECT_ID_PREFIX, &kek.info().binding.object_id].concat());
    let out = tool(
        &token,
        false,
        &[
            "--write-object",
            &file,
            "--type",
            "secrkey",
            "--key-type",
            "AES:32",
            "--label",
            "kek",
            "--id",
            &id,
        ],
    );
    // Either the token refuses the object outright, or it exists and must be ignored.
    eprintln!("planting a secret key without the PIN: exit {:?}", out.status.code());
    let soft = Store::new(hsmkit_soft::SoftBackend::new());
    let theirs =
        soft.import_key("planted", KeyMaterial::aes(&planted).unwrap(), KeyAttributes::default()).unwrap();
    for _ in 0..10 {
        let kek = fresh(&token).get_key("kek").unwrap();
        let wrapped = kek.wrap_key(KeyWrapAlgorithm::A256Kw, &[7; 32]).unwrap();
        assert!(
            theirs.unwrap_key(KeyWrapAlgorithm::A256Kw, &wrapped).is_err(),
            "wrapped under the planted key"
        );
        assert_eq!(&kek.unwrap_key(KeyWrapAlgorithm::A256Kw, &wrapped).unwrap()[..], &[7; 32]);
    }
}

/// Finding 3: metadata documents. A session without the PIN plants a public data object
/// that re-enables a disabled key; with the PIN, another application edits the real
/// document and plants a garbage one and one whose label holds a newline. The disabled
/// key stays disabled, an edited document is refused by name, and listing still works.
#[test]
fn planted_or_edited_metadata_is_refused() {
    let token = SoftHsmToken::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = token.store().unwrap();
    store.create_key("victim", KeySpec::P256, KeyAttributes::default()).unwrap();
    store.create_key("bystander", KeySpec::P256, KeyAttributes::default()).unwrap();
    store.update_key("victim", 1, &KeyUpdate::enabled(false)).unwrap();
    let mut doc = store.describe_key("victim").unwrap();
    doc.versions[0].attributes.enabled = true;
    let enabled = write(dir.path(), "doc.json", doc.to_json().to_string().as_bytes());

    // No PIN: a public data object with the same label and application.
    tool_ok(
        &token,
        false,
        &["--write-object", &enabled, "--type", "data", "--label", "victim", "--application-label", "hsmkit"],
    );
    let e = fresh(&token).get_key("victim").unwrap().sign(S::Es256, b"m").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");

    // With the PIN, another application replaces the real (signed) document by an edited
    // copy; without the signer's signature, it is refused by name.
    {
        use hsmkit_pkcs11::cryptoki::object::{Attribute, ObjectClass};
        let s = token.raw_session().unwrap();
        let doc_template = |private: bool| {
            vec![
                Attribute::Class(ObjectClass::DATA),
                Attribute::Label(b"victim".to_vec()),
                Attribute::Application(b"hsmkit".to_vec()),
                Attribute::Token(true),
                Attribute::Private(private),
            ]
        };
        let real = s.find_objects(&doc_template(true)).unwrap();
        assert_eq!(real.len(), 1);
        s.destroy_object(real[0]).unwrap();
        let mut t = doc_template(true);
        t.push(Attribute::Value(std::fs::read(&enabled).unwrap()));
        s.create_object(&t).unwrap();
    }
    let junk = write(dir.path(), "junk", b"\x00not json\xff");
    tool_ok(
        &token,
        true,
        &[
            "--write-object",
            &junk,
            "--type",
            "data",
            "--label",
            "junk",
            "--application-label",
            "hsmkit",
            "--private",
        ],
    );
    tool_ok(
        &token,
        true,
        &[
            "--write-object",
            &enabled,
            "--type",
            "data",
            "--label",
            "evil\n\x1b[31mname",
            "--application-label",
            "hsmkit",
            "--private",
        ],
    );
    let store = fresh(&token);
    let e = store.get_key("victim").unwrap_err();
    assert!(e.to_string().contains("refused"), "{e}");
    assert!(!e.to_string().contains('\n') && !e.to_string().contains('\x1b'), "{e:?}");
    let names: Vec<String> = store.list_keys().unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(names, ["bystander"]);
}

/// Finding 1 for keys another tool made (nothing pinned them): a session without the PIN
/// replaces the public object of a pkcs11-tool EC key, and plants a public-only "partner"
/// key. hsmkit must not verify with, export or seal to either.
#[test]
fn no_pin_session_cannot_substitute_another_tools_public_key() {
    let token = SoftHsmToken::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    tool_ok(
        &token,
        true,
        &["--keypairgen", "--key-type", "EC:prime256v1", "--label", "tool-ec", "--id", "42"],
    );
    let genuine = fresh(&token).get_key("tool-ec").unwrap();
    let genuine_public = genuine.public_key().unwrap();
    let sig = genuine.sign(S::Es256, b"m").unwrap();
    genuine.verify(S::Es256, b"m", &sig).unwrap();

    let attacker = Store::new(hsmkit_soft::SoftBackend::new());
    let theirs = attacker.create_key("a", KeySpec::P256, KeyAttributes::default()).unwrap();
    let spki = write(dir.path(), "spki.der", &theirs.public_key().unwrap().to_spki_der().unwrap());
    tool_ok(&token, false, &["--delete-object", "--type", "pubkey", "--label", "tool-ec", "--id", "42"]);
    tool_ok(
        &token,
        false,
        &["--write-object", &spki, "--type", "pubkey", "--label", "tool-ec", "--id", "42"],
    );
    let key = fresh(&token).get_key("tool-ec").unwrap();
    assert_ne!(key.public_key().ok(), Some(theirs.public_key().unwrap()));
    let forged = theirs.sign(S::Es256, b"m").unwrap();
    assert!(key.verify(S::Es256, b"m", &forged).is_err(), "verified the attacker's signature");
    assert_ne!(genuine_public, theirs.public_key().unwrap());

    // A public-only key that is not CKA_PRIVATE is refused by name, not used.
    tool_ok(
        &token,
        false,
        &["--write-object", &spki, "--type", "pubkey", "--label", "partner", "--id", "43"],
    );
    let e = fresh(&token).get_key("partner").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("CKA_PRIVATE"), "{e}");
}
