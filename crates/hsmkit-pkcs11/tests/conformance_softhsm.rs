//! The conformance suite on SoftHSM2, one fresh token per test, deleted with its store.
#![allow(clippy::expect_used)]

fn fresh_store() -> hsmkit::Store {
    hsmkit_pkcs11::testing::SoftHsmToken::new()
        .and_then(|t| t.into_store())
        .expect("SoftHSM2 token (tests/run-all.sh installs softhsm2)")
}

hsmkit_conformance::conformance_tests!(fresh_store);

/// Every answer the capabilities of a fresh SoftHSM2 2.6.1 token predict to be
/// `Unsupported`: OAEP with SHA-1 only and no label, CKM_AES_KEY_WRAP_PAD failing its
/// RFC 5649 known answers, keys never exported. A change in what the token is probed to
/// do, or in how hsmkit probes it, shows here.
#[test]
fn softhsm2_unsupported_answers_are_exactly() {
    let store = fresh_store();
    let got = hsmkit_conformance::unsupported_answers(&store);
    let want = [
        "decrypt RSA-OAEP-256",
        "wrap A128KWP",
        "wrap A192KWP",
        "wrap A256KWP",
        "unwrap A128KWP",
        "unwrap A192KWP",
        "unwrap A256KWP",
        "unwrap RSA-OAEP-256",
        "oaep_label",
        "export",
        "metadata token",
    ];
    assert_eq!(got, want, "notes: {:?}", store.capabilities().notes);
}
