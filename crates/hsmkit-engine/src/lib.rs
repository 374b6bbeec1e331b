//! hsmkit's crypto engines: the RustCrypto and aws-lc implementations of every algorithm
//! family hsmkit has, behind one choice ([`Engine`]).
//!
//! The core (`hsmkit`) has the types and the rules; backends hold keys. This crate is the
//! cryptography between them, as rustls' provider crates are: the software backend runs
//! every operation here, a PKCS#11 backend runs its public operations here
//! ([`public_key_ops`]) and validates imported material with it ([`normalize`]).
#![forbid(unsafe_code)]
// A new algorithm, key type or operation must be handled everywhere (see hsmkit::algorithm).
#![warn(clippy::wildcard_enum_match_arm)]

#[cfg(feature = "aws-lc")]
mod aws;
mod encrypt;
mod export;
mod generate;
mod import;
mod key;
mod provider;
mod sign;
mod wrap;

use std::sync::Arc;

use hsmkit::{BackendKey, KeyInfo, KeyMaterial, KeySpec, PublicKey, Result};

#[cfg(feature = "aws-lc")]
pub use aws::{AWS_LC, AwsLcProvider};
pub use key::{EngineKey, Loaded};
pub use provider::{RUSTCRYPTO, RustCryptoProvider};

/// The name engine errors carry as their backend (see [`hsmkit::Error::Backend`]).
pub(crate) const KIND: &str = "engine";

/// A private operation on a key the engine holds only the public part of. [`EngineKey`]
/// refuses those first as [`hsmkit::Denied::PublicOnly`] with the key's name; this is what
/// the engine itself says when called without one.
pub(crate) fn public_only() -> hsmkit::Error {
    hsmkit::Error::unsupported(
        hsmkit::UnsupportedReason::Operation,
        "a private-key operation on a public key (the engine holds no private part)",
    )
}

/// Which library does the cryptography. The default is [`Engine::fastest`]: AWS-LC when
/// the `aws-lc` feature is on. RSA decryption on the RustCrypto engine runs the `rsa`
/// crate's private operation, which RUSTSEC-2023-0071 (Marvin) concerns: choose it only
/// where that is acceptable (SECURITY.md).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// RustCrypto (`rsa`, `p256`/`p384`/`p521`, `aes-kw`): pure Rust, portable.
    RustCrypto,
    /// AWS-LC through `aws-lc-rs` (feature `aws-lc`): C and assembly, about OpenSSL's
    /// speed; FIPS-validated builds of AWS-LC exist.
    #[cfg(feature = "aws-lc")]
    AwsLc,
}

impl Default for Engine {
    fn default() -> Self {
        Self::fastest()
    }
}

impl Engine {
    /// This engine's crypto provider: what a store on it computes with in host memory
    /// (envelopes, the audit MAC, fingerprints, random ids).
    pub fn provider(self) -> &'static dyn hsmkit::CryptoProvider {
        match self {
            Engine::RustCrypto => &RUSTCRYPTO,
            #[cfg(feature = "aws-lc")]
            Engine::AwsLc => &AWS_LC,
        }
    }

    /// The fastest engine this build has.
    pub fn fastest() -> Self {
        #[cfg(feature = "aws-lc")]
        return Engine::AwsLc;
        #[cfg(not(feature = "aws-lc"))]
        Engine::RustCrypto
    }

    /// The name [`hsmkit::Capabilities::engine`] reports: `"rustcrypto"` or `"aws-lc"`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::RustCrypto => "rustcrypto",
            #[cfg(feature = "aws-lc")]
            Engine::AwsLc => "aws-lc",
        }
    }

    /// Generates a key of `spec` from OS randomness: its material (for storage) and its
    /// loaded form.
    pub fn generate(self, spec: KeySpec) -> Result<(KeyMaterial, Loaded)> {
        let (material, rc) = generate::generate(spec)?;
        let loaded = Loaded::new(rc, &material, self)?;
        Ok((material, loaded))
    }

    /// Validates `material` with every check the engines offer and loads it: its spec,
    /// its normalised form (see [`normalize`]) and its loaded form.
    pub fn import(self, material: &KeyMaterial) -> Result<(KeySpec, KeyMaterial, Loaded)> {
        let (spec, rc) = import::import(material)?;
        // The normalised form (RSA CRT values, EC public point), so that an exported key
        // is complete even if it was imported from, say, a JWK without dp/dq/qi.
        let normalized = export::normalized(&rc, material)?;
        let loaded = Loaded::new(rc, &normalized, self)?;
        Ok((spec, normalized, loaded))
    }
}

/// A key that does the public operations (verify, encrypt, RSA-OAEP wrap) of `public` on
/// the fastest engine. Backends whose devices hold only private keys use it for public
/// operations.
pub fn public_key_ops(info: KeyInfo, public: &PublicKey) -> Result<Box<dyn BackendKey>> {
    let material = Arc::new(KeyMaterial::Public(public.clone()));
    let loaded = Arc::new(Loaded::load(&material, Engine::fastest())?);
    Ok(Box::new(EngineKey::new(info, loaded, material)))
}

/// Hazmat: the HMAC (HS256/HS384/HS512) of `message` under a raw `key`, on the RustCrypto
/// engine; for known-answer tests of other implementations (a token's `CKM_SHA256_HMAC`).
pub fn hmac(alg: hsmkit::SignatureAlgorithm, key: &[u8], message: &[u8]) -> Result<Vec<u8>> {
    let key = key::RcKey::Hmac(hsmkit::Zeroizing::new(key.to_vec()));
    sign::sign(&key, alg, message)
}

/// The public key of private key material, derived from its private part (the engines'
/// import checks it first). Public material is its own public key; AES and HMAC keys
/// have none ([`hsmkit::Error::InvalidInput`]).
pub(crate) fn public_key_of(material: &KeyMaterial) -> Result<hsmkit::PublicKey> {
    match normalize(material)? {
        KeyMaterial::RsaPrivate(k) => Ok(hsmkit::PublicKey::Rsa(k.public()?)),
        KeyMaterial::EcPrivate(k) => {
            let point = k.public_point.as_deref().ok_or_else(|| {
                hsmkit::Error::backend(KIND, "public_key_of", "the EC key came back without its point")
            })?;
            Ok(hsmkit::PublicKey::Ec(hsmkit::EcPublicKey::new(k.curve, point)?))
        }
        KeyMaterial::Ed25519Private(k) => k.public.clone().map(hsmkit::PublicKey::Ed25519).ok_or_else(|| {
            hsmkit::Error::backend(KIND, "public_key_of", "the Ed25519 key came back without its public key")
        }),
        KeyMaterial::Public(p) => Ok(p),
        KeyMaterial::Aes(_) | KeyMaterial::Hmac(_) => Err(hsmkit::Error::invalid(
            hsmkit::InvalidReason::KeyMismatch,
            "an AES or HMAC key has no public key",
        )),
    }
}

/// Validates key material with the engines and returns it normalised: RSA private keys
/// with their CRT values, EC private keys with their public point, EC public points
/// uncompressed. Invalid keys are [`hsmkit::Error::InvalidInput`].
pub fn normalize(material: &KeyMaterial) -> Result<KeyMaterial> {
    let (_, engine) = import::import(material)?;
    export::normalized(&engine, material)
}
