//! PKCS#11 backend for hsmkit: keys are generated and kept on the token.
#![forbid(unsafe_code)]

pub mod uri;

pub use uri::{PinSource, Pkcs11Uri};
