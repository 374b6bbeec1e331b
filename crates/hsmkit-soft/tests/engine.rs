//! Every constructor of the software backend picks the same engine: AWS-LC when the
//! `aws-lc` feature is on (as in the workspace's test build), RustCrypto otherwise.
#![allow(clippy::unwrap_used)]

use hsmkit_soft::{FileStorage, KdfParams, MemoryStorage, SoftBackend, SoftEngine, StoreKey};

#[test]
fn every_constructor_uses_the_default_engine() {
    let want = if cfg!(feature = "aws-lc") { "aws-lc" } else { "rustcrypto" };
    let tmp = tempfile::tempdir().unwrap();
    let key = StoreKey::Key(hsmkit::Zeroizing::new([3; 32]));
    let quick = KdfParams { memory_kib: 8 * 1024, iterations: 1, parallelism: 1 };
    let backends = [
        ("new", SoftBackend::new()),
        ("default", SoftBackend::default()),
        ("with_storage(memory)", SoftBackend::with_storage(MemoryStorage::default())),
        (
            "with_storage(file)",
            SoftBackend::with_storage(FileStorage::create(tmp.path().join("a"), &key, quick).unwrap()),
        ),
        ("open_dir", SoftBackend::open_dir(tmp.path().join("b"), &key).unwrap()),
    ];
    for (how, b) in backends {
        assert_eq!(b.engine(), SoftEngine::fastest(), "{how}");
        assert_eq!(b.engine(), SoftEngine::default(), "{how}");
        assert_eq!(hsmkit::Store::new(b).capabilities().engine, want, "{how}");
    }
    assert_eq!(SoftBackend::new().with_engine(SoftEngine::RustCrypto).engine(), SoftEngine::RustCrypto);
}
