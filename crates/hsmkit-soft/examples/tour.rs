//! A tour of hsmkit on the embedded default, the encrypted on-disk keystore: one key of
//! each type, every operation, then the lifecycle (rotation, disable, soft delete,
//! recover), envelope encryption of a file (seal, open, tamper, rewrap after rotation), a
//! reopen, and the audit log.
//!
//! `cargo run --release -p hsmkit-soft --example tour`

// A demo: the errors shown are the point, and it has no untrusted input.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use hsmkit::audit::verify_audit_log;
use hsmkit::envelope::{EncryptionContext, EnvelopeHeader, Recipient, RewrapMode, Rewrapper};
use hsmkit::{
    EncryptionAlgorithm, KeyAttributes, KeyMaterial, KeyOp, KeySpec, KeyUpdate, KeyWrapAlgorithm,
    RotationPolicy, SignInput, SignatureAlgorithm, SignatureFormat, Store, parse_iso_duration,
};
use hsmkit_soft::{SoftBackend, StoreKey};

fn short(bytes: &[u8]) -> String {
    let h = hex::encode(bytes);
    if h.len() > 32 { format!("{}…({} bytes)", &h[..32], bytes.len()) } else { h }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("keystore");
    let audit = tmp.path().join("audit.jsonl");
    let passphrase = StoreKey::passphrase("correct horse battery staple");
    let open = || -> hsmkit::Result<Store> {
        Store::new(SoftBackend::open_dir(&dir, &passphrase)?).with_audit_log_file(&audit)
    };
    let store = open()?;
    println!(
        "hsmkit tour on the {} backend, encrypted keystore in {} (Argon2id + AES-256-GCM)\n",
        store.backend_kind(),
        dir.display()
    );

    let message = b"pay 100 EUR to Alice";
    for (name, spec, alg) in [
        ("rsa-signer", KeySpec::RSA_2048, SignatureAlgorithm::Ps256),
        ("rsa-signer-v15", KeySpec::RSA_3072, SignatureAlgorithm::Rs384),
        ("ec-p256", KeySpec::P256, SignatureAlgorithm::Es256),
        ("ec-p384", KeySpec::P384, SignatureAlgorithm::Es384),
        ("ec-p521", KeySpec::P521, SignatureAlgorithm::Es512),
    ] {
        let key = store.create_key(name, spec, KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify]))?;
        let sig = key.sign(alg, message)?;
        key.verify(alg, message, &sig)?;
        let tampered = key.verify(alg, b"pay 900 EUR to Mallory", &sig).is_err();
        println!(
            "created {name:<15} {spec:<9} signed with {alg}: {}  verify ok, tampered rejected: {tampered}",
            short(&sig)
        );
    }
    let ec = store.get_key("ec-p256")?;
    let der = ec.sign_with(SignatureAlgorithm::Es256, SignInput::Message(message), SignatureFormat::Der)?;
    println!("ES256 in DER (as OpenSSL wants it): {}", short(&der));
    println!("public key of ec-p256 as JWK: {}\n", ec.public_key_jwk()?);

    let rsa = store.create_key("rsa-encrypter", KeySpec::RSA_2048, KeyAttributes::default())?;
    for alg in EncryptionAlgorithm::ALL {
        let ct = rsa.encrypt_with_label(*alg, b"card 4111 1111 1111 1111", b"payments")?;
        let pt = rsa.decrypt_with_label(*alg, &ct, b"payments")?;
        let wrong = rsa.decrypt_with_label(*alg, &ct, b"other").unwrap_err();
        println!(
            "{alg:<13} encrypt -> {}  decrypt -> {:?}  wrong label -> {wrong}",
            short(&ct),
            String::from_utf8_lossy(&pt)
        );
    }

    let dek = [0x42u8; 32];
    for (name, spec, alg) in [
        ("kek-128", KeySpec::AES_128, KeyWrapAlgorithm::A128Kw),
        ("kek-192", KeySpec::AES_192, KeyWrapAlgorithm::A192Kwp),
        ("kek-256", KeySpec::AES_256, KeyWrapAlgorithm::A256Kw),
    ] {
        let kek = store.create_key(name, spec, KeyAttributes::default())?;
        let wrapped = kek.wrap_key(alg, &dek)?;
        let back = kek.unwrap_key(alg, &wrapped)?;
        println!(
            "{name} {alg:<8} wrap a 32-byte key -> {}  unwrap matches: {}",
            short(&wrapped),
            back[..] == dek
        );
    }
    let rsa_kek = store.create_key(
        "rsa-kek",
        KeySpec::RSA_3072,
        KeyAttributes::with_ops(&[KeyOp::WrapKey, KeyOp::UnwrapKey]),
    )?;
    let wrapped = rsa_kek.wrap_key(KeyWrapAlgorithm::RsaOaep256, &dek)?;
    println!(
        "rsa-kek RSA-OAEP-256 wrap -> {}  unwrap matches: {}\n",
        short(&wrapped),
        rsa_kek.unwrap_key(KeyWrapAlgorithm::RsaOaep256, &wrapped)?[..] == dek
    );

    // Attributes are enforced: a sign-only key refuses to decrypt.
    let signer = store.get_key("rsa-signer")?;
    let ct = rsa.encrypt(EncryptionAlgorithm::RsaOaep256, b"x")?;
    println!("rsa-signer decrypt -> {}", signer.decrypt(EncryptionAlgorithm::RsaOaep256, &ct).unwrap_err());

    // Public keys travel; private keys do not.
    let pem = signer.public_key_pem()?;
    let verifier =
        store.import_key("rsa-signer-pub", KeyMaterial::from_pem(&pem)?, KeyAttributes::default())?;
    let sig = signer.sign(SignatureAlgorithm::Ps256, message)?;
    verifier.verify(SignatureAlgorithm::Ps256, message, &sig)?;
    println!("imported the PEM public key of rsa-signer and verified a PS256 signature with it");
    println!("export of a non-exportable key -> {}", signer.export().unwrap_err());

    // Lifecycle: versions, rotation, disable, soft delete, recover.
    println!("\nlifecycle:");
    let old_ct = rsa.encrypt(EncryptionAlgorithm::RsaOaep256, b"sealed under version 1")?;
    store.rotate_key("rsa-encrypter")?;
    let v3 = store.rotate_key("rsa-encrypter")?;
    println!("rotated rsa-encrypter twice: current version {}", v3.version());
    let v1 = store.get_key_version("rsa-encrypter", 1)?;
    println!(
        "version 1 still decrypts: {:?}",
        String::from_utf8_lossy(&v1.decrypt(EncryptionAlgorithm::RsaOaep256, &old_ct)?)
    );
    println!("version 3 cannot: {}", v3.decrypt(EncryptionAlgorithm::RsaOaep256, &old_ct).unwrap_err());
    store.update_key("rsa-encrypter", 1, &KeyUpdate::enabled(false))?;
    let v1 = store.get_key_version("rsa-encrypter", 1)?;
    println!("disabled version 1 -> {}", v1.decrypt(EncryptionAlgorithm::RsaOaep256, &old_ct).unwrap_err());
    let policy = RotationPolicy { rotate_after: Some(parse_iso_duration("P90D")?), ..Default::default() };
    store.set_rotation_policy("ec-p256", Some(policy))?;
    println!("ec-p256 policy: {policy}; due now: {:?}", store.keys_due_for_rotation()?);
    let deleted = store.delete_key("kek-128")?;
    let d = deleted.state.deleted.unwrap();
    println!(
        "deleted kek-128: get -> {}; purge scheduled {} (retention {} days)",
        store.get_key("kek-128").unwrap_err(),
        humantime::format_rfc3339_seconds(d.scheduled_purge),
        store.settings()?.retention.as_secs() / 86_400
    );
    store.recover_deleted_key("kek-128")?;
    println!("recovered kek-128: version {}", store.get_key("kek-128")?.version());

    // Envelope encryption: a file of any size under a fresh data key wrapped by kek-256.
    println!("\nenvelope encryption:");
    let plain = tmp.path().join("report.csv");
    let sealed = tmp.path().join("report.csv.hkev");
    let opened = tmp.path().join("report.opened.csv");
    std::fs::write(&plain, "quarter,revenue\n".repeat(200_000))?;
    let context: EncryptionContext = [("department".to_string(), "finance".to_string())].into();
    let sealer = store.sealer(&["kek-256"])?.with_context(context.clone())?;
    let n = sealer.seal_file(&plain, &sealed)?;
    let header = EnvelopeHeader::parse(&std::fs::read(&sealed)?)?;
    let r = &header.recipients()[0];
    println!(
        "sealed {n} bytes into {} bytes for {} v{} ({}), context {:?}",
        std::fs::metadata(&sealed)?.len(),
        r.name,
        r.version,
        r.algorithm,
        header.context()
    );
    store.opener().with_context(context.clone()).open_file(&sealed, &opened)?;
    println!("opened it: identical = {}", std::fs::read(&plain)? == std::fs::read(&opened)?);
    let mut bytes = std::fs::read(&sealed)?;
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    println!("one bit flipped -> {}", store.unseal(&bytes, &context).unwrap_err());
    println!("wrong context -> {}", store.unseal(&std::fs::read(&sealed)?, &Default::default()).unwrap_err());
    let v2 = store.rotate_key("kek-256")?;
    Rewrapper::new(&store, [Recipient::new(v2)?], RewrapMode::Replace)?
        .with_context(context.clone())
        .rewrap_file(&sealed, &sealed)?;
    store.update_key("kek-256", 1, &KeyUpdate::enabled(false))?;
    store.opener().with_context(context).open_file(&sealed, &opened)?;
    println!("rotated kek-256, rewrapped the file to v2 (body untouched), disabled v1: still opens");

    // Everything is on disk, encrypted; another process (or this one) reopens it.
    drop(store);
    let store = open()?;
    println!("\nreopened the keystore; keys in it:");
    for info in store.list_keys()? {
        println!(
            "  {:<16} v{} {:<9} ops={}",
            info.name,
            info.version,
            info.spec.to_string(),
            info.attributes.allowed()
        );
    }
    let wrong = SoftBackend::open_dir(&dir, &StoreKey::passphrase("wrong")).unwrap_err();
    println!("with a wrong passphrase -> {wrong}");

    let report = verify_audit_log(&audit, &store)?;
    println!(
        "\naudit log: {} keyed, chained records, chain intact: {}, head {}",
        report.records,
        report.first_bad.is_none(),
        &report.head[..16]
    );
    Ok(())
}
