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

// The load check with 64 operations per thread (512 in all, every kind of operation
// included) instead of 10 000: a software TPM signs and decrypts in milliseconds, and
// hsmkit serialises calls into tpm2-pkcs11 (see `SERIAL` in src/context.rs).
hsmkit_conformance::conformance_tests!(fresh_store, load_ops_per_thread = 64);

/// Every answer the capabilities of a fresh tpm2-pkcs11 token predict to be
/// `Unsupported` (tests/tpm2/README.md explains each): a change in what the token is
/// probed to do, or in how hsmkit probes it, shows here.
#[test]
fn tpm2_unsupported_answers_are_exactly() {
    let store = fresh_store();
    let got = hsmkit_conformance::unsupported_answers(&store);
    println!("{got:#?}\n{:#?}", store.capabilities().notes);
    let want: &[&str] = &[];
    assert_eq!(got, want);
}
