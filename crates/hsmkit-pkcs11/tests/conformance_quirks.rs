//! The conformance suite on SoftHSM2 behind the PKCS#11 shim in each quirk mode (see
//! tests/pkcs11-shim/shim.c and quirks.rs): a token that behaves like another real token
//! must pass the same checks. One module per quirk, one fresh token per test; the shim
//! is built once per quirk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod shim;

macro_rules! under_quirk {
    ($($module:ident => $quirk:literal),* $(,)?) => {
        $(
            mod $module {
                fn fresh_store() -> hsmkit::Store {
                    super::shim::quirk_store(&[$quirk])
                }
                hsmkit_conformance::conformance_tests!(fresh_store);
            }
        )*
    };
}

under_quirk! {
    data_not_persisted => "data-not-persisted",
    no_token_data => "no-token-data",
    op_active_after_error => "op-active-after-error",
    bad_token_info => "bad-token-info",
    wrap_untruncated => "wrap-untruncated",
    strict_templates => "strict-templates",
    no_rsa_unwrap => "no-rsa-unwrap",
    no_session_objects => "no-session-objects",
}
