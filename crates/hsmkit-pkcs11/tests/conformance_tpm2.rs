//! The conformance suite on tpm2-pkcs11 over a software TPM (swtpm + tpm2-abrmd), one
//! fresh token per test in the process's one tpm2-pkcs11 store (see
//! `hsmkit_pkcs11::testing::Tpm2Token`: without the environment the test binary re-runs
//! itself with it).
#![allow(clippy::expect_used)]

fn fresh_store() -> hsmkit::Store {
    hsmkit_pkcs11::testing::Tpm2Token::new()
        .and_then(|t| t.into_store())
        .expect("tpm2-pkcs11 token (tests/tpm2/token.sh installs swtpm, tpm2-abrmd, libtpm2-pkcs11-1)")
}

hsmkit_conformance::conformance_tests!(fresh_store);
