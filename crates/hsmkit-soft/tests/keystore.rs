//! The encrypted on-disk keystore: unlocking, what is on disk, tampering.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;

use hsmkit::{ErrorKind, KeyAttributes, KeyMaterial, KeyOp, KeySpec, SignatureAlgorithm, Store};
use hsmkit_soft::{FileStorage, KdfParams, SoftBackend, StoreKey};

/// Small Argon2id parameters where the test is not about their cost.
const QUICK: KdfParams = KdfParams { memory_kib: 8 * 1024, iterations: 1, parallelism: 1 };

fn store(dir: &Path, key: &StoreKey) -> hsmkit::Result<Store> {
    FileStorage::open(dir, key).map(|s| Store::new(SoftBackend::with_storage(s)))
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for d in [dir.to_path_buf(), dir.join("keys")] {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            if e.file_type().unwrap().is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn passphrase_store_reopens_and_refuses_wrong_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let pass = StoreKey::passphrase("correct horse battery staple");
    // Default (RFC 9106) parameters, once.
    let s = Store::new(SoftBackend::open_dir(&dir, &pass).unwrap());
    let key = s.create_key("signer", KeySpec::P256, KeyAttributes::default()).unwrap();
    let sig = key.sign(SignatureAlgorithm::Es256, b"m").unwrap();
    drop(s);

    let header: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("hsmkit-keystore.json")).unwrap()).unwrap();
    assert_eq!(header["kdf"]["alg"], "argon2id");
    assert_eq!(header["kdf"]["m_kib"], 65536);
    assert_eq!(header["kdf"]["t"], 3);

    let again = store(&dir, &pass).unwrap();
    again.get_key("signer").unwrap().verify(SignatureAlgorithm::Es256, b"m", &sig).unwrap();

    let e = store(&dir, &StoreKey::passphrase("Correct horse battery staple")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
    assert!(e.to_string().contains("wrong passphrase"), "{e}");
    assert!(!e.to_string().contains("Correct horse"), "the passphrase is not in the error");
    let keyfile = tmp.path().join("k");
    StoreKey::generate_key_file(&keyfile).unwrap();
    assert_eq!(store(&dir, &StoreKey::key_file(&keyfile)).unwrap_err().kind(), ErrorKind::Authentication);
    assert_eq!(
        format!("{pass:?}"),
        "StoreKey::Passphrase([REDACTED])",
        "Debug does not print the passphrase"
    );
}

#[test]
fn key_file_store() {
    let tmp = tempfile::tempdir().unwrap();
    let keyfile = tmp.path().join("store.key");
    StoreKey::generate_key_file(&keyfile).unwrap();
    assert!(StoreKey::generate_key_file(&keyfile).is_err(), "an existing key file is not overwritten");
    let text = std::fs::read_to_string(&keyfile).unwrap();
    assert_eq!(text.trim().len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&keyfile).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let dir = tmp.path().join("store");
    let key = StoreKey::key_file(&keyfile);
    FileStorage::create(&dir, &key, QUICK).unwrap();
    assert_eq!(FileStorage::create(&dir, &key, QUICK).unwrap_err().kind(), ErrorKind::AlreadyExists);
    let s = store(&dir, &key).unwrap();
    s.create_key("a", KeySpec::AES_256, KeyAttributes::default()).unwrap();
    assert_eq!(store(&dir, &key).unwrap().list_keys().unwrap().len(), 1);
    #[cfg(unix)]
    {
        // SECURITY.md: files 0600 in 0700 directories, whatever the umask allowed.
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let mut dirs = vec![dir.clone()];
        let mut files = 0;
        while let Some(d) = dirs.pop() {
            assert_eq!(mode(&d), 0o700, "{}", d.display());
            for entry in std::fs::read_dir(&d).unwrap() {
                let p = entry.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else {
                    assert_eq!(mode(&p), 0o600, "{}", p.display());
                    files += 1;
                }
            }
        }
        assert!(files >= 2, "the header and the key's file");
    }

    let other = tmp.path().join("other.key");
    StoreKey::generate_key_file(&other).unwrap();
    assert_eq!(store(&dir, &StoreKey::key_file(&other)).unwrap_err().kind(), ErrorKind::Authentication);
    assert_eq!(store(&dir, &StoreKey::passphrase("x")).unwrap_err().kind(), ErrorKind::Authentication);
    std::fs::write(&other, b"too short").unwrap();
    assert_eq!(store(&dir, &StoreKey::key_file(&other)).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(store(&tmp.path().join("nowhere"), &key).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn nothing_secret_on_disk_in_the_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let pass = StoreKey::passphrase("pw");
    let s = Store::new(SoftBackend::with_storage(FileStorage::create(tmp.path(), &pass, QUICK).unwrap()));
    let aes = [0xA5u8; 32];
    let attrs = KeyAttributes { exportable: true, ..KeyAttributes::default() };
    s.import_key("aes", KeyMaterial::aes(&aes).unwrap(), attrs.clone()).unwrap();
    let ec = s.create_key("ec", KeySpec::P256, attrs).unwrap();
    let KeyMaterial::EcPrivate(ec_private) = ec.export().unwrap() else { panic!("EC key") };
    let tagged = KeyAttributes {
        tags: [("owner".to_owned(), "team-secret-tag".to_owned())].into(),
        ..KeyAttributes::default()
    };
    s.create_key("tagged", KeySpec::AES_128, tagged).unwrap();
    for f in files(tmp.path()) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(!contains(&bytes, &aes), "{} holds the AES key", f.display());
        assert!(!contains(&bytes, &ec_private.d), "{} holds the EC key", f.display());
        assert!(!contains(&bytes, b"team-secret-tag"), "metadata is encrypted too: {}", f.display());
    }
}

#[test]
fn tampering_is_detected_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let key = StoreKey::Key(hsmkit::Zeroizing::new([7; 32]));
    let s = Store::new(SoftBackend::with_storage(FileStorage::create(tmp.path(), &key, QUICK).unwrap()));
    s.create_key("a", KeySpec::P256, KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify])).unwrap();
    s.create_key("b", KeySpec::P256, KeyAttributes::default()).unwrap();
    let (a, b) = (tmp.path().join("keys/a.key"), tmp.path().join("keys/b.key"));
    let original = std::fs::read(&a).unwrap();

    // A flipped ciphertext byte.
    let mut v: serde_json::Value = serde_json::from_slice(&original).unwrap();
    let ct = v["ct"].as_str().unwrap().to_owned();
    let flipped = if ct.starts_with('A') { ct.replacen('A', "B", 1) } else { format!("A{}", &ct[1..]) };
    v["ct"] = flipped.into();
    std::fs::write(&a, v.to_string()).unwrap();
    let e = store(tmp.path(), &key).unwrap().get_key("a").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend);
    assert!(e.to_string().contains("failed authentication"), "{e}");

    // Another key's file under this name (the name is bound into the ciphertext).
    let mut other: serde_json::Value = serde_json::from_slice(&std::fs::read(&b).unwrap()).unwrap();
    other["name"] = "a".into();
    std::fs::write(&a, other.to_string()).unwrap();
    assert_eq!(store(tmp.path(), &key).unwrap().get_key("a").unwrap_err().kind(), ErrorKind::Backend);

    // Garbage, and a truncated file.
    for junk in [&b"not json"[..], &original[..original.len() / 2]] {
        std::fs::write(&a, junk).unwrap();
        assert_eq!(store(tmp.path(), &key).unwrap().get_key("a").unwrap_err().kind(), ErrorKind::Backend);
    }

    // Restored, it works again; the other key never stopped working.
    std::fs::write(&a, &original).unwrap();
    let s = store(tmp.path(), &key).unwrap();
    s.get_key("a").unwrap().sign(SignatureAlgorithm::Es256, b"m").unwrap();
    s.get_key("b").unwrap();

    // The header's sealed settings.
    let h = tmp.path().join("hsmkit-keystore.json");
    let mut hv: serde_json::Value = serde_json::from_slice(&std::fs::read(&h).unwrap()).unwrap();
    hv["settings"]["nonce"] = "AAAAAAAAAAAAAAAA".into();
    std::fs::write(&h, hv.to_string()).unwrap();
    assert_eq!(store(tmp.path(), &key).unwrap_err().kind(), ErrorKind::Authentication);
}

#[test]
fn leftover_temporaries_are_removed_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let key = StoreKey::Key(hsmkit::Zeroizing::new([9; 32]));
    FileStorage::create(tmp.path(), &key, QUICK).unwrap();
    let junk = tmp.path().join("keys/.tmp-1234-5678");
    std::fs::write(&junk, b"half a key file").unwrap();
    let s = store(tmp.path(), &key).unwrap();
    assert!(!junk.exists());
    assert!(s.list_keys().unwrap().is_empty(), "a temporary is never taken for a key");
}

/// The Argon2id parameters come from the header and run before anything is authenticated:
/// an edited header asking for 8 GiB or 2^32-1 passes is refused without running the KDF
/// (before the bounds, the first took 7 GB of RSS and the second never ended).
#[test]
fn kdf_parameters_beyond_the_bounds_are_refused_without_running() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let pass = StoreKey::passphrase("correct horse battery staple");
    drop(FileStorage::create(&dir, &pass, QUICK).unwrap());
    let h = dir.join("hsmkit-keystore.json");
    let original = std::fs::read(&h).unwrap();
    let edits: [(&str, serde_json::Value); 8] = [
        ("m_kib", (8u64 << 20).into()),
        ("m_kib", u64::from(u32::MAX).into()),
        ("m_kib", 7.into()),
        ("t", u64::from(u32::MAX).into()),
        ("t", 0.into()),
        ("p", 1000.into()),
        ("p", 0.into()),
        ("salt", hsmkit_soft_b64(&vec![0u8; 1 << 20]).into()),
    ];
    for (field, value) in edits {
        let mut v: serde_json::Value = serde_json::from_slice(&original).unwrap();
        v["kdf"][field] = value;
        std::fs::write(&h, v.to_string()).unwrap();
        let e = store(&dir, &pass).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Backend, "{field}: {e}");
        assert!(e.to_string().contains("KDF"), "{field}: {e}");
    }
    std::fs::write(&h, &original).unwrap();
    store(&dir, &pass).unwrap();

    // Out-of-bounds parameters for a new store: refused before anything is written.
    let fresh = tmp.path().join("fresh");
    for params in [
        KdfParams { memory_kib: KdfParams::MAX_MEMORY_KIB + 1, ..QUICK },
        KdfParams { iterations: KdfParams::MAX_ITERATIONS + 1, ..QUICK },
        KdfParams { parallelism: 0, ..QUICK },
    ] {
        let e = FileStorage::create(&fresh, &pass, params).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(!fresh.exists(), "nothing written for {params:?}");
    }
}

fn hsmkit_soft_b64(bytes: &[u8]) -> String {
    use base64ct::Encoding;
    base64ct::Base64::encode_string(bytes)
}
