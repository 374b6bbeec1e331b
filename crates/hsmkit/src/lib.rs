//! hsmkit: keys live behind a backend — an HSM over PKCS#11 or a software keystore — and
//! never leave it. Applications sign, verify, encrypt, decrypt, wrap and unwrap by key name,
//! with JOSE / key-vault algorithm names.
//!
//! This crate is the core: types, the backend traits, attribute enforcement, encodings,
//! audit events and envelope encryption ([`envelope`]). It knows no backend; `hsmkit-soft`
//! and `hsmkit-pkcs11` are backends.
//!
//! ```
//! # fn main() -> hsmkit::Result<()> {
//! use hsmkit::{KeyAttributes, KeySpec, SignatureAlgorithm, Store};
//!
//! let store = Store::new(hsmkit_soft::SoftBackend::new());
//! let key = store.create_key("signer", KeySpec::P256, KeyAttributes::default())?;
//! let sig = key.sign(SignatureAlgorithm::Es256, b"hello")?;
//! key.verify(SignatureAlgorithm::Es256, b"hello", &sig)?;
//! assert!(key.verify(SignatureAlgorithm::Es256, b"other", &sig).is_err());
//! println!("{}", key.public_key_pem()?);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
// A new algorithm, key type or operation must be handled everywhere (see hsmkit::algorithm).
#![warn(clippy::wildcard_enum_match_arm)]

mod algorithm;
mod attributes;
pub mod audit;
mod backend;
pub mod backup;
pub mod certificates;
pub mod crypto;
pub mod ecdsa_sig;
pub mod envelope;
mod error;
pub mod jose;
mod key;
mod lifecycle;
mod material;
pub mod metadata;
pub mod pkcs12;
mod public;
pub mod report;
mod secret;
mod secret_cache;
pub mod secrets;
mod spec;
mod store;
#[cfg(feature = "rustls")]
pub mod tls;
pub mod x509;

pub use algorithm::{
    Algorithm, EncryptionAlgorithm, HashAlg, KeyWrapAlgorithm, SignatureAlgorithm, SignatureFormat,
    SignatureScheme, WrapScheme,
};
pub use attributes::{KeyAttributes, KeyOp, KeyOps};
pub use audit::{AuditLog, Clock};
pub use backend::{Backend, BackendKey, Capabilities, KeyBinding, KeyInfo, NewKey, SettingsEdit};
pub use crypto::CryptoProvider;
pub use error::{BackendError, Denied, Error, ErrorKind, InvalidReason, Result, Source, UnsupportedReason};
pub use key::{Key, SignInput};
pub use lifecycle::{
    Deletion, KeyDescription, KeyState, KeyUpdate, RotationPolicy, StoreSettings, format_iso_duration,
    parse_iso_duration,
};
pub use material::{EcPrivateComponents, Ed25519PrivateComponents, KeyMaterial, RsaPrivateComponents};
pub use metadata::{DescriptionEdit, MemoryMetadata, MetadataStore};
pub use public::{EcPublicKey, Ed25519PublicKey, PublicKey, RsaPublicKey};
pub use secret::SecretVec;
pub use secrets::{Secret, SecretAttributes, SecretDescription, SecretDue, SecretProperties, SecretUpdate};
pub use spec::{
    AesSize, EcCurve, HMAC_GENERATE_BITS, HMAC_MAX_BITS, HMAC_MIN_BITS, KeySpec, KeyType, RSA_GENERATE_BITS,
    RSA_MAX_BITS, RSA_MIN_BITS,
};
pub use store::{MAX_NAME_LEN, MAX_RETENTION, MIN_RETENTION, Rotation, Store, validate_name};
pub use zeroize::Zeroizing;
