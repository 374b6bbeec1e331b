//! Threads of one process rotating one key generate exactly one key per new version: none
//! is generated only to lose the race for the version number and be destroyed (a waste
//! of HSM key generation, and of object slots on tokens that do not release a destroyed
//! object's slot, as tpm2-pkcs11 before 1.10).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hsmkit::{
    Backend, BackendKey, Capabilities, KeyAttributes, KeyInfo, KeyMaterial, KeyOp, KeySpec, MetadataStore,
    NewKey, Result, Store,
};

/// The software backend, counting generations and destructions. Generation is slowed so
/// that threads that do not wait for each other overlap every time.
#[derive(Debug)]
struct Counting {
    inner: hsmkit_soft::SoftBackend,
    generated: AtomicUsize,
    destroyed: AtomicUsize,
}

impl Backend for Counting {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn crypto(&self) -> &'static dyn hsmkit::CryptoProvider {
        self.inner.crypto()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn metadata(&self) -> Arc<dyn MetadataStore> {
        self.inner.metadata()
    }
    fn generate(&self, req: &NewKey<'_>, spec: KeySpec) -> Result<Box<dyn BackendKey>> {
        self.generated.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        self.inner.generate(req, spec)
    }
    fn import(&self, req: &NewKey<'_>, material: KeyMaterial) -> Result<Box<dyn BackendKey>> {
        self.inner.import(req, material)
    }
    fn open(&self, info: &KeyInfo) -> Result<Box<dyn BackendKey>> {
        self.inner.open(info)
    }
    fn destroy(&self, info: &KeyInfo) -> Result<()> {
        self.destroyed.fetch_add(1, Ordering::SeqCst);
        self.inner.destroy(info)
    }
}

#[test]
fn concurrent_rotations_generate_one_key_per_version() {
    let backend = Arc::new(Counting {
        inner: hsmkit_soft::SoftBackend::new(),
        generated: AtomicUsize::new(0),
        destroyed: AtomicUsize::new(0),
    });
    let store = Store::from_arc(backend.clone());
    store.create_key("busy", KeySpec::P256, KeyAttributes::with_ops(&[KeyOp::Sign, KeyOp::Verify])).unwrap();
    let barrier = std::sync::Barrier::new(4);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..5 {
                    store.rotate_key("busy").unwrap();
                }
            });
        }
    });
    let versions: Vec<u32> = store.list_versions("busy").unwrap().iter().map(|v| v.version).collect();
    assert_eq!(versions, (1..=21).collect::<Vec<_>>());
    assert_eq!(backend.generated.load(Ordering::SeqCst), 21, "one generation per version");
    assert_eq!(backend.destroyed.load(Ordering::SeqCst), 0, "no key made only to be destroyed");
}
