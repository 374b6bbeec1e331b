//! The conformance suite on SoftHSM2, one fresh token per test.
#![allow(clippy::expect_used)]

use std::sync::Arc;

use hsmkit_pkcs11::testing::SoftHsmToken;

/// A store whose token lives exactly as long as the store.
fn fresh_store() -> hsmkit::Store {
    #[derive(Debug)]
    struct Owned {
        backend: hsmkit_pkcs11::Pkcs11Backend,
        _token: SoftHsmToken,
    }
    impl hsmkit::Backend for Owned {
        fn kind(&self) -> &'static str {
            self.backend.kind()
        }
        fn capabilities(&self) -> hsmkit::Capabilities {
            self.backend.capabilities()
        }
        fn generate(
            &self,
            r: &hsmkit::NewKey<'_>,
            s: hsmkit::KeySpec,
        ) -> hsmkit::Result<Box<dyn hsmkit::BackendKey>> {
            self.backend.generate(r, s)
        }
        fn import(
            &self,
            r: &hsmkit::NewKey<'_>,
            m: hsmkit::KeyMaterial,
        ) -> hsmkit::Result<Box<dyn hsmkit::BackendKey>> {
            self.backend.import(r, m)
        }
        fn get(&self, n: &str) -> hsmkit::Result<Box<dyn hsmkit::BackendKey>> {
            self.backend.get(n)
        }
        fn list(&self) -> hsmkit::Result<Vec<hsmkit::KeyInfo>> {
            self.backend.list()
        }
        fn destroy(&self, n: &str) -> hsmkit::Result<()> {
            self.backend.destroy(n)
        }
    }
    let token = SoftHsmToken::new().expect("SoftHSM2 token (tests/run-all.sh installs softhsm2)");
    let backend = token.backend().expect("open token");
    hsmkit::Store::from_arc(Arc::new(Owned { backend, _token: token }))
}

hsmkit_conformance::conformance_tests!(fresh_store);
