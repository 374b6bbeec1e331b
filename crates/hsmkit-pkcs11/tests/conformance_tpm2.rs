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
    let want = [
        // CKM_RSA_PKCS_KEY_PAIR_GEN: 1024..3072 bits (C_GetMechanismInfo).
        "generate RSA-4096",
        // Its P-521 CKA_EC_POINT does not parse (long-form DER length).
        "generate EC-P-521",
        // CKM_AES_KEY_GEN is listed, C_GenerateKey is CKR_FUNCTION_NOT_SUPPORTED.
        "generate AES-128",
        "generate AES-192",
        "generate AES-256",
        // The TPM's curves are NIST's (and BN): no secp256k1 key pair, no Edwards curve;
        // no generic-secret generation the probe could use for HMAC keys.
        "generate EC-P-256K",
        "generate Ed25519",
        "generate HMAC-256",
        "generate HMAC-384",
        "generate HMAC-512",
        // No CKM_RSA_PKCS_PSS in its mechanism list.
        "sign PS256",
        "sign PS384",
        "sign PS512",
        // CKM_ECDSA with a P-521 key: CKR_HOST_MEMORY.
        "sign ES512",
        // No secp256k1 keys, no CKM_EDDSA, no CKM_SHA*_HMAC that passed the probe.
        "sign ES256K",
        "sign EdDSA",
        "sign HS256",
        "sign HS384",
        "sign HS512",
        // No CKM_AES_KEY_WRAP / _PAD (and no AES keys).
        "wrap A128KW",
        "wrap A192KW",
        "wrap A256KW",
        "wrap A128KWP",
        "wrap A192KWP",
        "wrap A256KWP",
        "unwrap A128KW",
        "unwrap A192KW",
        "unwrap A256KW",
        "unwrap A128KWP",
        "unwrap A192KWP",
        "unwrap A256KWP",
        // C_CreateObject takes RSA public keys and data objects only.
        "import",
        // OAEP labels: CKR_GENERAL_ERROR from the TPM.
        "oaep_label",
        // No PKCS#11 token exports keys through hsmkit.
        "export",
        // tpm2-pkcs11 1.9.0 loses private data-object values after key objects are
        // destroyed: metadata=auto keeps it in a file.
        "metadata file",
    ];
    assert_eq!(got, want, "notes: {:?}", store.capabilities().notes);
}
