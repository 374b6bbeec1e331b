//! PKCS#11-specific behaviour on SoftHSM2: key-role separation against Clulow's attack,
//! authentication and module errors, concurrency, keys shared with pkcs11-tool.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::process::Command;

use hsmkit::{ErrorKind, KeyAttributes, KeyMaterial, KeyOp, KeySpec, KeyWrapAlgorithm, SignatureAlgorithm};
use hsmkit_pkcs11::Pkcs11Backend;
use hsmkit_pkcs11::cryptoki::error::{Error as CkError, RvError};
use hsmkit_pkcs11::cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use hsmkit_pkcs11::cryptoki::mechanism::{Mechanism, MechanismType};
use hsmkit_pkcs11::cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use hsmkit_pkcs11::cryptoki::session::Session;
use hsmkit_pkcs11::testing::{SoftHsmToken, USER_PIN};

fn find(s: &Session, label: &str, class: ObjectClass) -> ObjectHandle {
    s.find_objects(&[Attribute::Label(label.as_bytes().to_vec()), Attribute::Class(class)]).unwrap()[0]
}

/// An extractable (but sensitive) AES key: the target an attacker wants to read out.
fn target_key(s: &Session, value: &[u8]) -> ObjectHandle {
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Sensitive(true),
        Attribute::Extractable(true),
        Attribute::Value(value.to_vec()),
    ])
    .unwrap()
}

fn oaep() -> Mechanism<'static> {
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA1,
        PkcsMgfType::MGF1_SHA1,
        PkcsOaepSource::empty(),
    ))
}

/// Clulow: wrap a sensitive key under a key-encryption key, then *decrypt* the wrapped
/// blob with the same key to read the secret. The positive control shows the attack works
/// on SoftHSM2 with a key that has both roles; keys hsmkit creates must refuse it.
#[test]
fn clulow_attack_fails_against_hsmkit_keys() {
    let token = SoftHsmToken::new().unwrap();
    let store = token.store().unwrap();
    let s = token.raw_session().unwrap();
    let secret = [0x5au8; 32];

    // Positive control: a key pair made by hand with both unwrap and decrypt.
    let (pub_h, priv_h) = s
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(false),
                Attribute::ModulusBits(2048u64.into()),
                Attribute::Wrap(true),
                Attribute::Encrypt(true),
            ],
            &[
                Attribute::Token(false),
                Attribute::Sensitive(true),
                Attribute::Unwrap(true),
                Attribute::Decrypt(true),
            ],
        )
        .unwrap();
    let blob = s.wrap_key(&oaep(), pub_h, target_key(&s, &secret)).unwrap();
    assert_eq!(s.decrypt(&oaep(), priv_h, &blob).unwrap(), secret, "the attack works on a dual-role key");

    // hsmkit refuses to make such a key at all ...
    let both = KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey, KeyOp::Decrypt]);
    assert_eq!(
        store.create_key("both", KeySpec::RSA_2048, both).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    // ... and its wrapping keys cannot decrypt what they wrapped.
    store
        .create_key(
            "rsa-kek",
            KeySpec::RSA_2048,
            KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]),
        )
        .unwrap();
    let kek_pub = find(&s, "rsa-kek", ObjectClass::PUBLIC_KEY);
    let kek_priv = find(&s, "rsa-kek", ObjectClass::PRIVATE_KEY);
    let blob = s.wrap_key(&oaep(), kek_pub, target_key(&s, &secret)).unwrap();
    match s.decrypt(&oaep(), kek_priv, &blob) {
        Err(CkError::Pkcs11(RvError::KeyFunctionNotPermitted, _)) => {}
        other => panic!("Clulow's attack must fail on an hsmkit key, got {other:?}"),
    }
    store.create_key("aes-kek", KeySpec::AES_256, KeyAttributes::default()).unwrap();
    let aes_kek = find(&s, "aes-kek", ObjectClass::SECRET_KEY);
    let attrs = s
        .get_attributes(
            aes_kek,
            &[
                AttributeType::Decrypt,
                AttributeType::Encrypt,
                AttributeType::Extractable,
                AttributeType::Sensitive,
            ],
        )
        .unwrap();
    assert_eq!(
        attrs,
        vec![
            Attribute::Decrypt(false),
            Attribute::Encrypt(false),
            Attribute::Extractable(false),
            Attribute::Sensitive(true)
        ]
    );
    // hsmkit keys themselves can never be wrapped out.
    let victim = store.create_key("victim", KeySpec::AES_128, KeyAttributes::default()).unwrap();
    let victim_h = find(&s, victim.name(), ObjectClass::SECRET_KEY);
    match s.wrap_key(&Mechanism::AesKeyWrap, aes_kek, victim_h) {
        Err(CkError::Pkcs11(RvError::KeyUnextractable, _)) => {}
        other => panic!("an hsmkit key must not be extractable, got {other:?}"),
    }
}

#[test]
fn wrong_pin_is_an_authentication_error() {
    let token = SoftHsmToken::new().unwrap();
    let uri = token.uri().replace(&format!("pin-value={USER_PIN}"), "pin-value=0000");
    let e = Pkcs11Backend::open(&uri).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
    assert!(e.to_string().contains("CKR_PIN_INCORRECT") && !e.to_string().contains("0000"), "{e}");
    // The right PIN still works afterwards.
    Pkcs11Backend::open(token.uri()).unwrap();
}

#[test]
fn missing_module_and_token_are_clear_errors() {
    let e =
        Pkcs11Backend::open("pkcs11:token=x?module-path=/nonexistent/libpkcs11.so&pin-value=1").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(
        e.to_string().contains("/nonexistent/libpkcs11.so") && e.to_string().contains("does not exist"),
        "{e}"
    );
    let e = Pkcs11Backend::open("pkcs11:token=x?module-path=/etc/hostname&pin-value=1").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("cannot load"), "{e}");
    let token = SoftHsmToken::new().unwrap();
    let uri = token.uri().replace(token.label(), "no-such-token");
    assert_eq!(Pkcs11Backend::open(&uri).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn eight_threads_sign_a_thousand_times_each() {
    let token = SoftHsmToken::new().unwrap();
    let store = token.store().unwrap();
    let ec = store.create_key("ec", KeySpec::P256, KeyAttributes::default()).unwrap();
    let rsa = store.create_key("rsa", KeySpec::RSA_2048, KeyAttributes::default()).unwrap();
    std::thread::scope(|scope| {
        for t in 0..8u32 {
            let (ec, rsa) = (ec.clone(), rsa.clone());
            scope.spawn(move || {
                for i in 0..1000u32 {
                    let msg = [t.to_be_bytes(), i.to_be_bytes()].concat();
                    let sig = ec.sign(SignatureAlgorithm::Es256, &msg).unwrap();
                    ec.verify(SignatureAlgorithm::Es256, &msg, &sig).unwrap();
                    if i % 50 == 0 {
                        let sig = rsa.sign(SignatureAlgorithm::Ps256, &msg).unwrap();
                        rsa.verify(SignatureAlgorithm::Ps256, &msg, &sig).unwrap();
                    }
                }
            });
        }
    });
}

fn pkcs11_tool(token: &SoftHsmToken, args: &[&str]) -> Vec<u8> {
    let out = Command::new("pkcs11-tool")
        .args([
            "--module",
            &token.module().display().to_string(),
            "--token-label",
            token.label(),
            "--login",
            "--pin",
            USER_PIN,
        ])
        .args(args)
        .output()
        .expect("pkcs11-tool is required (tests/run-all.sh installs opensc)");
    assert!(out.status.success(), "pkcs11-tool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn keys_are_shared_with_pkcs11_tool() {
    let token = SoftHsmToken::new().unwrap();
    let store = token.store().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let msg = b"signed by one tool, checked by the other";
    let digest = store.crypto().digest(hsmkit::HashAlg::Sha256, msg);
    let digest_file = dir.path().join("digest");
    std::fs::write(&digest_file, &digest).unwrap();

    // hsmkit creates; pkcs11-tool lists and signs; hsmkit verifies.
    let ours = store.create_key("made-by-hsmkit", KeySpec::P256, KeyAttributes::default()).unwrap();
    let listing = String::from_utf8(pkcs11_tool(&token, &["--list-objects"])).unwrap();
    assert!(listing.contains("made-by-hsmkit"), "{listing}");
    let sig_file = dir.path().join("sig");
    let ck_id: String = [hsmkit_pkcs11::OBJECT_ID_PREFIX, &ours.info().binding.object_id]
        .concat()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    pkcs11_tool(
        &token,
        &[
            "--sign",
            "--mechanism",
            "ECDSA",
            // By CKA_ID: pkcs11-tool's --sign takes the first private key whose id
            // matches and ignores --label, and the token also holds hsmkit's metadata
            // signer.
            "--id",
            &ck_id,
            "--input-file",
            digest_file.to_str().unwrap(),
            "--output-file",
            sig_file.to_str().unwrap(),
        ],
    );
    ours.verify_digest(SignatureAlgorithm::Es256, &digest, &std::fs::read(&sig_file).unwrap()).unwrap();

    // pkcs11-tool creates; hsmkit finds it by label and signs; the public key pkcs11-tool
    // exports verifies hsmkit's signature.
    pkcs11_tool(
        &token,
        &["--keypairgen", "--key-type", "EC:prime256v1", "--label", "made-by-tool", "--id", "99"],
    );
    let theirs = store.get_key("made-by-tool").unwrap();
    assert_eq!(theirs.spec(), KeySpec::P256);
    assert!(theirs.info().attributes.allowed().contains(KeyOp::Sign));
    let sig = theirs.sign(SignatureAlgorithm::Es256, msg).unwrap();
    let spki = pkcs11_tool(&token, &["--read-object", "--type", "pubkey", "--label", "made-by-tool"]);
    let public = store
        .import_key("tool-pub", KeyMaterial::from_der(&spki).unwrap(), KeyAttributes::default())
        .unwrap();
    public.verify(SignatureAlgorithm::Es256, msg, &sig).unwrap();
    assert_eq!(public.public_key().unwrap(), theirs.public_key().unwrap());

    // An RSA key from pkcs11-tool signs PS256 through hsmkit.
    pkcs11_tool(&token, &["--keypairgen", "--key-type", "rsa:2048", "--label", "tool-rsa", "--id", "98"]);
    let rsa = store.get_key("tool-rsa").unwrap();
    assert_eq!(rsa.spec(), KeySpec::RSA_2048);
    let sig = rsa.sign(SignatureAlgorithm::Ps256, msg).unwrap();
    rsa.verify(SignatureAlgorithm::Ps256, msg, &sig).unwrap();
    // AES keys from pkcs11-tool wrap through hsmkit.
    // A secret key that is not CKA_PRIVATE could have been planted without the PIN:
    // hsmkit refuses it by name; made private, it is used.
    pkcs11_tool(&token, &["--keygen", "--key-type", "AES:32", "--label", "public-aes", "--id", "96"]);
    let e = store.get_key("public-aes").unwrap_err();
    assert_eq!(e.kind(), hsmkit::ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("not CKA_PRIVATE"), "{e}");
    pkcs11_tool(
        &token,
        &[
            "--keygen",
            "--key-type",
            "AES:32",
            "--label",
            "tool-aes",
            "--id",
            "97",
            "--extractable",
            "--private",
        ],
    );
    let aes = store.get_key("tool-aes").unwrap();
    assert_eq!(aes.spec(), KeySpec::AES_256);
    // SoftHSM2 gives pkcs11-tool's key every usage flag; hsmkit reads them from the token.
    assert!(aes.info().attributes.allowed().contains(KeyOp::WrapKey));
    let w = aes.wrap_key(KeyWrapAlgorithm::A256Kw, &[3; 32]).unwrap();
    assert_eq!(&aes.unwrap_key(KeyWrapAlgorithm::A256Kw, &w).unwrap()[..], &[3; 32]);
}
