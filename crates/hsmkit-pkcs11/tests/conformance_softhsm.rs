//! The conformance suite on SoftHSM2, one fresh token per test, deleted with its store.
#![allow(clippy::expect_used)]

fn fresh_store() -> hsmkit::Store {
    hsmkit_pkcs11::testing::SoftHsmToken::new()
        .and_then(|t| t.into_store())
        .expect("SoftHSM2 token (tests/run-all.sh installs softhsm2)")
}

hsmkit_conformance::conformance_tests!(fresh_store);
