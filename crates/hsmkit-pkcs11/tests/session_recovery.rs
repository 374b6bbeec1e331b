//! Sessions and login lost behind hsmkit's back. Its own test binary, because it
//! finalises and re-initialises the library for the whole process.
#![allow(clippy::unwrap_used)]

use hsmkit::{KeyAttributes, KeySpec, SignatureAlgorithm};
use hsmkit_pkcs11::cryptoki::context::{CInitializeArgs, CInitializeFlags};
use hsmkit_pkcs11::testing::SoftHsmToken;

#[test]
fn operations_recover_from_lost_sessions_and_logout() {
    let token = SoftHsmToken::new().unwrap();
    let store = token.store().unwrap();
    let key = store.create_key("k", KeySpec::P256, KeyAttributes::default()).unwrap();
    let sign = || key.sign(SignatureAlgorithm::Es256, b"m").unwrap();
    key.verify(SignatureAlgorithm::Es256, b"m", &sign()).unwrap();

    // Another part of the process logs the application out of the token.
    let raw = token.raw_session().unwrap();
    raw.logout().unwrap();
    drop(raw);
    key.verify(SignatureAlgorithm::Es256, b"m", &sign()).unwrap();

    // The library is finalised and initialised again: every session handle hsmkit holds
    // is now invalid and nobody is logged in.
    let ctx = token.context().unwrap();
    ctx.clone().finalize().unwrap();
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).unwrap();
    key.verify(SignatureAlgorithm::Es256, b"m", &sign()).unwrap();
    // And lifecycle calls work too.
    store.create_key("k2", KeySpec::AES_128, KeyAttributes::default()).unwrap();
    assert_eq!(store.list_keys().unwrap().len(), 2);
}
