//! The conformance suite on SoftHSM2 behind the PKCS#11 shim in each quirk mode (see
//! tests/pkcs11-shim/shim.c and quirks.rs): a token that behaves like another real token
//! must pass the same checks. One module per quirk, one fresh token per test; the shim
//! is built once per quirk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod shim;

/// The conformance suite, less the Wycheproof *verify* sets: verification is a public
/// operation that runs in software from the public key, the same under every quirk (they
/// run in full on plain SoftHSM2, `conformance_softhsm.rs`), and they are most of the
/// suite's time; the load check runs 500 operations per thread instead of 10,000. Every
/// check that reaches the token runs.
macro_rules! suite {
    ($make:expr) => {
        hsmkit_conformance::conformance_tests!(@each $make;
            generate_every_spec, sign_verify_every_algorithm, sign_digest_matches_sign_message,
            ecdsa_der_and_raw_encodings, encrypt_decrypt_every_algorithm, wrap_unwrap_every_algorithm,
            algorithm_must_fit_key, sign_only_key_refuses_decrypt, disabled_key_refuses_everything,
            expired_key_refuses_private_operations, not_yet_valid_key_refuses,
            decryption_failures_are_indistinguishable, public_key_export_import_round_trips,
            private_key_import_round_trips, aes_key_import, hmac_keys, public_only_key_refuses_private_operations,
            non_exportable_key_refuses_export, names_list_get_destroy, bad_input_is_typed_error,
        );
        hsmkit_conformance::conformance_tests!(@each_lifecycle $make;
            versions_survive_two_rotations, disabled_version_refuses, update_attributes,
            soft_delete_recover_purge, purge_protection, rotation_policy, import_new_version,
            concurrent_rotations,
        );
        hsmkit_conformance::conformance_tests!(@each_envelope $make;
            envelope_round_trips, envelope_after_rotations_and_rewrap, envelope_refusals,
            envelope_frozen_vectors,
        );
        hsmkit_conformance::conformance_tests!(@each_secrets $make;
            secret_versions_and_namespaces, secret_attributes_and_limits, secret_delete_recover_purge,
            secret_values_are_bound_to_name_and_version, concurrent_secret_writers,
        );
        #[test]
        fn backup_and_restore() {
            hsmkit_conformance::secrets::backup_and_restore(&$make);
        }
        hsmkit_conformance::conformance_tests!(@each_wycheproof $make;
            wycheproof_rsa_oaep, wycheproof_aes_kw, wycheproof_aes_kwp, wycheproof_aes_gcm, wycheproof_crypto_provider,
        );
        #[test]
        fn eight_threads_mixed_operations() {
            let store = ($make)();
            // 500 operations per thread (the plain run does 10,000): enough to cycle every
            // pooled session through failures and recoveries under the quirk.
            hsmkit_conformance::load::eight_threads_mixed_operations_n(&store, 500);
        }
        hsmkit_conformance::conformance_tests!(@each_interop $make;
            openssl_verifies_hsmkit_signatures, hsmkit_decrypts_openssl_oaep, hsmkit_imports_openssl_keys,
        );
        hsmkit_conformance::conformance_tests!(@each_prop $make;
            prop_sign_verify, prop_oaep_round_trip, prop_wrap_round_trip,
        );
    };
}

macro_rules! under_quirk {
    ($($module:ident => $quirk:literal),* $(,)?) => {
        $(
            mod $module {
                fn fresh_store() -> hsmkit::Store {
                    super::shim::quirk_store(&[$quirk])
                }
                suite!(fresh_store);
            }
        )*
    };
}

under_quirk! {
    data_not_persisted => "data-not-persisted",
    no_token_data => "no-token-data",
    op_active_after_error => "op-active-after-error",
    bad_token_info => "bad-token-info NEIGHBOUR",
    wrap_untruncated => "wrap-untruncated",
    strict_templates => "strict-templates",
    no_rsa_unwrap => "no-rsa-unwrap",
    no_session_objects => "no-session-objects",
}
