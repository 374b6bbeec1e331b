//! The hsmkit conformance suite: one set of checks, run against every backend with the
//! same inputs and the same expected answers.
//!
//! A backend's test file instantiates it with a function that returns a fresh, empty
//! [`hsmkit::Store`]:
//!
//! ```text
//! hsmkit_conformance::conformance_tests!(|| hsmkit::Store::new(hsmkit_soft::SoftBackend::new()));
//! ```
//!
//! Where a backend lacks a capability (see [`hsmkit::Capabilities`]), the checks assert the
//! typed `Unsupported` error instead of the result.
#![forbid(unsafe_code)]
#![allow(missing_docs)] // test-only crate: each check is named for what it checks
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod certificates;
pub mod checks;
pub mod envelope;
pub mod interop;
pub mod lifecycle;
pub mod load;
pub mod props;
pub mod secrets;
pub mod wycheproof_sets;
pub mod x509;

/// Stamps out one `#[test]` per conformance check, each with a fresh store from `$make`.
/// `load_ops_per_thread = N` sets the operations per thread of the load check (default
/// [`load::OPS_PER_THREAD`]) for a backend too slow for the default (a software TPM).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!($make, load_ops_per_thread = $crate::load::OPS_PER_THREAD);
    };
    ($make:expr, load_ops_per_thread = $ops:expr) => {
        $crate::conformance_tests!(@each $make;
            generate_every_spec,
            sign_verify_every_algorithm,
            sign_digest_matches_sign_message,
            ecdsa_der_and_raw_encodings,
            encrypt_decrypt_every_algorithm,
            wrap_unwrap_every_algorithm,
            algorithm_must_fit_key,
            sign_only_key_refuses_decrypt,
            disabled_key_refuses_everything,
            expired_key_refuses_private_operations,
            not_yet_valid_key_refuses,
            decryption_failures_are_indistinguishable,
            public_key_export_import_round_trips,
            private_key_import_round_trips,
            aes_key_import,
            hmac_keys,
            public_only_key_refuses_private_operations,
            non_exportable_key_refuses_export,
            names_list_get_destroy,
            bad_input_is_typed_error,
        );
        $crate::conformance_tests!(@each_lifecycle $make;
            versions_survive_two_rotations,
            disabled_version_refuses,
            update_attributes,
            soft_delete_recover_purge,
            purge_protection,
            rotation_policy,
            import_new_version,
            concurrent_rotations,
            keyed_audit_log,
        );
        $crate::conformance_tests!(@each_envelope $make;
            envelope_round_trips,
            envelope_after_rotations_and_rewrap,
            envelope_refusals,
            envelope_frozen_vectors,
        );
        $crate::conformance_tests!(@each_secrets $make;
            secret_versions_and_namespaces,
            secret_attributes_and_limits,
            secret_delete_recover_purge,
            secret_purge_protection,
            secret_values_are_bound_to_name_and_version,
            secret_rotation_due,
            secret_audit_records,
            concurrent_secret_writers,
        );
        #[test]
        fn backup_and_restore() {
            $crate::secrets::backup_and_restore(&$make);
        }
        $crate::conformance_tests!(@each_x509 $make;
            x509_requests_and_self_signed_every_algorithm,
            x509_chain_verifies_with_openssl_and_pyca,
            x509_refusals,
        );
        $crate::conformance_tests!(@each_certificates $make;
            cert_self_signed_versions,
            cert_unknown_issuer_merge,
            cert_renewal_due,
            cert_import_pkcs12_and_pem,
            cert_delete_recover_purge,
            cert_refusals,
        );
        $crate::conformance_tests!(@each_wycheproof $make;
            wycheproof_rsa_oaep,
            wycheproof_rsa_pkcs1_verify,
            wycheproof_rsa_pss_verify,
            wycheproof_ecdsa_verify,
            wycheproof_ed25519_verify,
            wycheproof_hmac,
            wycheproof_aes_kw,
            wycheproof_aes_kwp,
            wycheproof_aes_gcm,
            wycheproof_crypto_provider,
        );
        #[test]
        fn eight_threads_mixed_operations() {
            let store = ($make)();
            $crate::load::eight_threads_mixed_operations_n(&store, $ops);
        }
        $crate::conformance_tests!(@each_interop $make;
            openssl_verifies_hsmkit_signatures,
            hsmkit_decrypts_openssl_oaep,
            hsmkit_imports_openssl_keys,
            openssl_and_hsmkit_ed25519,
            openssl_mac_matches_hsmkit_hmac,
        );
        $crate::conformance_tests!(@each_prop $make;
            prop_sign_verify,
            prop_oaep_round_trip,
            prop_wrap_round_trip,
        );
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let store = ($make)();
                $crate::checks::$name(&store);
            }
        )*
    };
    (@each_lifecycle $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let store = ($make)();
                $crate::lifecycle::$name(&store);
            }
        )*
    };
    (@each_envelope $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let store = ($make)();
                $crate::envelope::$name(&store);
            }
        )*
    };
    (@each_secrets $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let store = ($make)();
                $crate::secrets::$name(&store);
            }
        )*
    };
    (@each_x509 $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let store = ($make)();
                $crate::x509::$name(&store);
            }
        )*
    };
    (@each_certificates $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let store = ($make)();
                $crate::certificates::$name(&store);
            }
        )*
    };
    (@each_wycheproof $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let store = ($make)();
                $crate::wycheproof_sets::$name(&store);
            }
        )*
    };
    (@each_interop $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let store = ($make)();
                $crate::interop::$name(&store);
            }
        )*
    };
    (@each_prop $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let store = ($make)();
                $crate::props::$name(&store);
            }
        )*
    };
}

/// A fresh store on the encrypted on-disk keystore, in a temporary directory removed
/// with the store. (Unlocked by a random raw key: Argon2id is tested on its own.)
pub fn temp_file_store() -> hsmkit::Store {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut key = hsmkit::Zeroizing::new([0u8; 32]);
    key.iter_mut().enumerate().for_each(|(i, b)| *b = u8::try_from(i).unwrap_or(0) ^ 0x5a);
    let storage = hsmkit_soft::FileStorage::create(
        dir.path(),
        &hsmkit_soft::StoreKey::Key(key),
        hsmkit_soft::KdfParams::default(),
    )
    .expect("keystore");
    hsmkit::Store::new(hsmkit_soft::SoftBackend::with_storage(TempStorage { storage, _dir: dir }))
}

/// A [`hsmkit_soft::FileStorage`] that owns its temporary directory.
#[derive(Debug)]
struct TempStorage {
    storage: hsmkit_soft::FileStorage,
    _dir: tempfile::TempDir,
}

impl hsmkit_soft::Storage for TempStorage {
    fn read(&self, name: &str) -> hsmkit::Result<Option<hsmkit_soft::KeyDoc>> {
        self.storage.read(name)
    }
    fn names(&self) -> hsmkit::Result<Vec<String>> {
        self.storage.names()
    }
    fn modify(&self, name: &str, edit: hsmkit_soft::DocEdit<'_>) -> hsmkit::Result<()> {
        self.storage.modify(name, edit)
    }
    fn settings(&self) -> hsmkit::Result<hsmkit::StoreSettings> {
        self.storage.settings()
    }
    fn modify_settings(&self, edit: hsmkit::SettingsEdit<'_>) -> hsmkit::Result<hsmkit::StoreSettings> {
        self.storage.modify_settings(edit)
    }
    fn read_record(
        &self,
        kind: hsmkit::metadata::RecordKind,
        name: &str,
    ) -> hsmkit::Result<Option<serde_json::Value>> {
        self.storage.read_record(kind, name)
    }
    fn record_names(&self, kind: hsmkit::metadata::RecordKind) -> hsmkit::Result<Vec<String>> {
        self.storage.record_names(kind)
    }
    fn modify_record(
        &self,
        kind: hsmkit::metadata::RecordKind,
        name: &str,
        edit: hsmkit::metadata::RecordEdit<'_>,
    ) -> hsmkit::Result<()> {
        self.storage.modify_record(kind, name, edit)
    }
}

/// Every answer a store's [`hsmkit::Store::capabilities`] predicts to be `Unsupported`,
/// over everything hsmkit's enums name, one line each: `generate <spec>`, `sign <alg>`,
/// `decrypt <alg>`, `wrap <alg>`, `unwrap <alg>`, `import`, `oaep_label`, `export`;
/// then `metadata <kind>` (where the key metadata lives). A backend's test asserts this
/// equals a literal list, so any change in what a token is said to do shows.
pub fn unsupported_answers(store: &hsmkit::Store) -> Vec<String> {
    use hsmkit::{EncryptionAlgorithm, KeySpec, KeyWrapAlgorithm, SignatureAlgorithm};
    let caps = store.capabilities();
    let mut out = Vec::new();
    out.extend(
        KeySpec::GENERATABLE.iter().filter(|s| !caps.generate.contains(s)).map(|s| format!("generate {s}")),
    );
    out.extend(
        SignatureAlgorithm::ALL.iter().filter(|a| !caps.sign.contains(a)).map(|a| format!("sign {a}")),
    );
    out.extend(
        EncryptionAlgorithm::ALL.iter().filter(|a| !caps.decrypt.contains(a)).map(|a| format!("decrypt {a}")),
    );
    out.extend(KeyWrapAlgorithm::ALL.iter().filter(|a| !caps.wrap.contains(a)).map(|a| format!("wrap {a}")));
    out.extend(
        KeyWrapAlgorithm::ALL.iter().filter(|a| !caps.unwrap.contains(a)).map(|a| format!("unwrap {a}")),
    );
    for (ok, what) in [(caps.import, "import"), (caps.oaep_label, "oaep_label"), (caps.export, "export")] {
        if !ok {
            out.push(what.to_owned());
        }
    }
    out.push(format!("metadata {}", caps.metadata));
    out
}
